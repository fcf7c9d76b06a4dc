//! The pool's clocks: exact readings for deadlines and fairness (slow paths),
//! and a coarse one for the bookkeeping of every checkout and return.
//!
//! A checkout and a return each needed the time: when the connection was
//! last used (for `validate_after`, `idle_timeout`, `keepalive_interval`) and
//! whether it outlived `max_lifetime`. Two clock reads and their arithmetic
//! were the largest part of a get()+drop (docs/benchmarks.md). Those knobs
//! need milliseconds, not nanoseconds, so the fast path reads a time stored
//! in an atomic instead, refreshed every `validate_after / 4` (10–250 ms) by a task (and by
//! every exact reading). The task holds the clock weakly and ends with it.
//!
//! All times are nanoseconds since the clock's epoch, on tokio's clock, so
//! paused-time tests move them too.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

/// Longest refresh period: the coarse time lags the real one by at most this.
const MAX_PERIOD: Duration = Duration::from_millis(250);
/// Shortest refresh period, whatever `validate_after` asks for.
const MIN_PERIOD: Duration = Duration::from_millis(10);
/// The period while an observer is installed: use times are read from the
/// coarse clock, and tokio's timers tick in milliseconds.
const OBSERVED_PERIOD: Duration = Duration::from_millis(1);

pub(crate) struct Clock {
    epoch: Instant,
    /// A recent reading (nanoseconds since `epoch`); never goes back.
    coarse: AtomicU64,
}

impl Clock {
    /// A clock whose coarse time is precise enough for `validate_after` (a
    /// quarter of it, between 10 ms and 250 ms), or to a millisecond when
    /// `observed`, with its refresh task started on `handle`.
    pub(crate) fn start(validate_after: Duration, observed: bool, handle: &Handle) -> Arc<Self> {
        let period = if observed {
            OBSERVED_PERIOD
        } else if validate_after.is_zero() {
            MAX_PERIOD
        } else {
            (validate_after / 4).clamp(MIN_PERIOD, MAX_PERIOD)
        };
        let clock = Arc::new(Clock {
            epoch: Instant::now(),
            coarse: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&clock);
        handle.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(clock) = weak.upgrade() else { return };
                clock.exact();
            }
        });
        clock
    }

    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The coarse time: no clock read, at most one refresh period behind.
    #[inline]
    pub(crate) fn coarse(&self) -> u64 {
        self.coarse.load(Relaxed)
    }

    /// Reads the clock, and refreshes the coarse time with it.
    pub(crate) fn exact(&self) -> u64 {
        let now = self.nanos(Instant::now());
        self.coarse.fetch_max(now, Relaxed);
        now
    }

    /// `t` in nanoseconds since the epoch.
    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

/// A duration in the clock's nanoseconds, saturating.
pub(crate) fn nanos_of(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
