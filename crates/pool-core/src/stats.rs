//! The stats snapshot and the counters behind it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

pub(crate) use crate::events::CloseReason;

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
    /// Time spent waiting by the `get()`s that waited (`count` =
    /// `acquired_waited`).
    pub wait_time: Timing,
    /// Time connections were held, from checkout to return: counted only
    /// while an observer is installed (it needs a timestamp per checkout;
    /// coarse clock, see [`Event`](crate::Event)).
    pub use_time: Timing,
    /// Time of the successful connect attempts (`count` = `created`).
    pub create_time: Timing,
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
    /// Sub-pools (or this pool) whose circuit breaker is open now: `get()`
    /// fails at once instead of connecting.
    pub circuits_open: usize,
}

impl Stats {
    /// The closes by reason, for exporters (a pool's own closing, when the
    /// pool is closed, is not counted).
    pub fn closed_by_reason(&self) -> [(CloseReason, u64); 5] {
        [
            (CloseReason::Broken, self.closed_broken),
            (CloseReason::Idle, self.closed_idle),
            (CloseReason::Lifetime, self.closed_lifetime),
            (CloseReason::CheckFailed, self.closed_check_failed),
            (CloseReason::Evicted, self.closed_evicted),
        ]
    }

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
        self.wait_time.merge(&o.wait_time);
        self.use_time.merge(&o.use_time);
        self.create_time.merge(&o.create_time);
        self.created += o.created;
        self.create_failures += o.create_failures;
        self.closed_broken += o.closed_broken;
        self.closed_idle += o.closed_idle;
        self.closed_lifetime += o.closed_lifetime;
        self.closed_check_failed += o.closed_check_failed;
        self.closed_evicted += o.closed_evicted;
        self.circuits_open += o.circuits_open;
        self.reused += o.reused;
        self.reuse_rate = ratio(self.reused, self.acquired_total);
    }
}

/// Totals of one kind of duration: how many, their sum and the largest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timing {
    /// How many durations were recorded.
    pub count: u64,
    /// Their sum.
    pub total: Duration,
    /// The largest.
    pub max: Duration,
}

impl Timing {
    /// `total / count` (zero when nothing was recorded).
    pub fn mean(&self) -> Duration {
        match u32::try_from(self.count) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.total / n,
            Err(_) => Duration::from_secs_f64(self.total.as_secs_f64() / self.count as f64),
        }
    }

    /// Adds another set of totals to these.
    pub fn merge(&mut self, o: &Timing) {
        self.count += o.count;
        self.total += o.total;
        self.max = self.max.max(o.max);
    }
}

/// The counters behind a [`Timing`]: nanoseconds.
#[derive(Default)]
pub(crate) struct TimeTotals {
    count: AtomicU64,
    nanos: AtomicU64,
    max: AtomicU64,
}

impl TimeTotals {
    /// Records one duration (any thread).
    pub(crate) fn record(&self, nanos: u64) {
        self.count.fetch_add(1, Relaxed);
        self.nanos.fetch_add(nanos, Relaxed);
        self.max.fetch_max(nanos, Relaxed);
    }

    /// Records `count` durations summing to `nanos`, the longest `max`,
    /// where only one owner ever writes (a slot's holder): loads and stores,
    /// no read-modify-write.
    pub(crate) fn record_many_owned(&self, count: u64, nanos: u64, max: u64) {
        if count == 0 {
            return;
        }
        self.count.store(self.count.load(Relaxed) + count, Relaxed);
        self.nanos
            .store(self.nanos.load(Relaxed).wrapping_add(nanos), Relaxed);
        if max > self.max.load(Relaxed) {
            self.max.store(max, Relaxed);
        }
    }

    /// Moves these totals into `to` (when the owner's slot empties).
    pub(crate) fn drain_into(&self, to: &TimeTotals) {
        let count = self.count.swap(0, Relaxed);
        if count == 0 {
            return;
        }
        to.count.fetch_add(count, Relaxed);
        to.nanos.fetch_add(self.nanos.swap(0, Relaxed), Relaxed);
        to.max.fetch_max(self.max.swap(0, Relaxed), Relaxed);
    }

    pub(crate) fn read(&self) -> Timing {
        Timing {
            count: self.count.load(Relaxed),
            total: Duration::from_nanos(self.nanos.load(Relaxed)),
            max: Duration::from_nanos(self.max.load(Relaxed)),
        }
    }
}

pub(crate) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The counters of one pool; none is touched on the fast path (checkouts are
/// counted per slot, `Slots::count_handout`).
pub(crate) struct Counters {
    /// Handouts of a connection never handed out before; `reused` is derived.
    pub(crate) fresh_handouts: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) wait: TimeTotals,
    pub(crate) create: TimeTotals,
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
            fresh_handouts: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            wait: TimeTotals::default(),
            create: TimeTotals::default(),
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
            CloseReason::PoolClosed => return,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Fills the counter half of a snapshot; `handouts` are the checkouts the
    /// slots counted.
    pub(crate) fn fill(&self, s: &mut Stats, handouts: u64) {
        s.wait_time = self.wait.read();
        s.acquired_waited = s.wait_time.count;
        s.acquired_total = handouts.max(s.acquired_waited);
        s.acquired_fast = s.acquired_total - s.acquired_waited;
        s.timeouts = self.timeouts.load(Relaxed);
        s.create_time = self.create.read();
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
