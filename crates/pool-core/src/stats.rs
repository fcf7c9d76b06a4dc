//! The stats snapshot and the counters behind it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crate::padded::CachePadded;

/// A cheap, point-in-time snapshot of one pool. Gauges (`size`, `idle`, …) are read
/// one after the other without a lock, so under load they may disagree by one.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The configured `max_size`.
    pub max_size: usize,
    /// Live connections: idle + in use + being opened.
    pub size: usize,
    /// Idle connections.
    pub idle: usize,
    /// Connections handed out and not yet returned.
    pub in_use: usize,
    /// Connect attempts in progress.
    pub opening: usize,
    /// Callers parked in `get()`.
    pub waiting: usize,
    /// Successful `get()`s.
    pub acquired_total: u64,
    /// `get()`s served from an idle connection without waiting.
    pub acquired_fast: u64,
    /// `get()`s that had to wait (for a return or a new connection).
    pub acquired_waited: u64,
    /// `get()`s that ran out of `acquire_timeout`.
    pub timeouts: u64,
    /// Total time spent waiting by the `get()`s that waited.
    pub wait_time_total: Duration,
    /// Connections opened.
    pub created: u64,
    /// Connect attempts that failed (each retry counts).
    pub create_failures: u64,
    /// Closed because `is_broken` said so on return (or the holder discarded it).
    pub closed_broken: u64,
    /// Closed by the reaper after `idle_timeout`, or to make room in a keyed pool.
    pub closed_idle: u64,
    /// Closed after `max_lifetime`.
    pub closed_lifetime: u64,
    /// Closed because `check` or `reset` failed or timed out.
    pub closed_check_failed: u64,
    /// Closed (or discarded when its connect completed) because `evict_all`
    /// retired its generation.
    pub closed_evicted: u64,
    /// `get()`s that reused a connection handed out before.
    pub reused: u64,
    /// `reused / acquired_total` (0 when nothing was acquired).
    pub reuse_rate: f64,
}

impl Stats {
    /// Adds another pool's figures to these (for keyed pools and registries).
    pub fn merge(&mut self, o: &Stats) {
        self.max_size += o.max_size;
        self.size += o.size;
        self.idle += o.idle;
        self.in_use += o.in_use;
        self.opening += o.opening;
        self.waiting += o.waiting;
        self.acquired_total += o.acquired_total;
        self.acquired_fast += o.acquired_fast;
        self.acquired_waited += o.acquired_waited;
        self.timeouts += o.timeouts;
        self.wait_time_total += o.wait_time_total;
        self.created += o.created;
        self.create_failures += o.create_failures;
        self.closed_broken += o.closed_broken;
        self.closed_idle += o.closed_idle;
        self.closed_lifetime += o.closed_lifetime;
        self.closed_check_failed += o.closed_check_failed;
        self.closed_evicted += o.closed_evicted;
        self.reused += o.reused;
        self.reuse_rate = ratio(self.reused, self.acquired_total);
    }
}

pub(crate) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

const STRIPES: usize = 8;

/// A counter bumped on the hot path: one cache line per stripe, a thread always
/// uses the same stripe, so two cores never fight over the line. Reading sums
/// the stripes (1 KiB per counter; meant for a handful of counters per pool).
///
/// ```
/// let requests = pool_core::util::StripedCounter::new();
/// requests.incr();
/// assert_eq!(requests.get(), 1);
/// ```
pub struct StripedCounter {
    stripes: [CachePadded<AtomicU64>; STRIPES],
}

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

fn stripe() -> usize {
    STRIPE.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
        s.set(v);
        v
    })
}

impl Default for StripedCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StripedCounter").field(&self.get()).finish()
    }
}

impl StripedCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        StripedCounter {
            stripes: Default::default(),
        }
    }

    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.stripes[stripe()].fetch_add(1, Relaxed);
    }

    /// The sum over all stripes (a relaxed read: exact once writers are quiet).
    pub fn get(&self) -> u64 {
        self.stripes.iter().map(|s| s.load(Relaxed)).sum()
    }
}

/// Why a connection was closed (which counter it lands in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    Broken,
    Idle,
    Lifetime,
    CheckFailed,
    /// Made before the last `evict_all`.
    Evicted,
    /// Detached by its holder, or closed because the pool is closed: no counter.
    Other,
}

/// The counters of one pool; none is touched on the fast path (checkouts are
/// counted per slot, `Slots::count_handout`).
pub(crate) struct Counters {
    pub(crate) acquired_waited: AtomicU64,
    /// Handouts of a connection never handed out before; `reused` is derived.
    pub(crate) fresh_handouts: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) wait_nanos: AtomicU64,
    pub(crate) created: AtomicU64,
    pub(crate) create_failures: AtomicU64,
    pub(crate) closed_broken: AtomicU64,
    pub(crate) closed_idle: AtomicU64,
    pub(crate) closed_lifetime: AtomicU64,
    pub(crate) closed_check_failed: AtomicU64,
    pub(crate) closed_evicted: AtomicU64,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            acquired_waited: AtomicU64::new(0),
            fresh_handouts: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            wait_nanos: AtomicU64::new(0),
            created: AtomicU64::new(0),
            create_failures: AtomicU64::new(0),
            closed_broken: AtomicU64::new(0),
            closed_idle: AtomicU64::new(0),
            closed_lifetime: AtomicU64::new(0),
            closed_check_failed: AtomicU64::new(0),
            closed_evicted: AtomicU64::new(0),
        }
    }

    /// Counts one close under its reason.
    pub(crate) fn count_close(&self, reason: CloseReason) {
        let counter = match reason {
            CloseReason::Broken => &self.closed_broken,
            CloseReason::Idle => &self.closed_idle,
            CloseReason::Lifetime => &self.closed_lifetime,
            CloseReason::CheckFailed => &self.closed_check_failed,
            CloseReason::Evicted => &self.closed_evicted,
            CloseReason::Other => return,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Fills the counter half of a snapshot; `handouts` are the checkouts the
    /// slots counted.
    pub(crate) fn fill(&self, s: &mut Stats, handouts: u64) {
        s.acquired_waited = self.acquired_waited.load(Relaxed);
        s.acquired_total = handouts.max(s.acquired_waited);
        s.acquired_fast = s.acquired_total - s.acquired_waited;
        s.timeouts = self.timeouts.load(Relaxed);
        s.wait_time_total = Duration::from_nanos(self.wait_nanos.load(Relaxed));
        s.created = self.created.load(Relaxed);
        s.create_failures = self.create_failures.load(Relaxed);
        s.closed_broken = self.closed_broken.load(Relaxed);
        s.closed_idle = self.closed_idle.load(Relaxed);
        s.closed_lifetime = self.closed_lifetime.load(Relaxed);
        s.closed_check_failed = self.closed_check_failed.load(Relaxed);
        s.closed_evicted = self.closed_evicted.load(Relaxed);
        s.reused = s
            .acquired_total
            .saturating_sub(self.fresh_handouts.load(Relaxed));
        s.reuse_rate = ratio(s.reused, s.acquired_total);
    }
}
