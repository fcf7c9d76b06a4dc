//! Events: what a pool tells an [`Observer`] installed with
//! [`Builder::observer`](crate::Builder::observer) — connections created,
//! checked out and in, closed; acquires that timed out; connects that failed.
//! For metrics exporters (models: HikariCP's `IMetricsTracker`, the MongoDB
//! driver's CMAP events).
//!
//! Events are plain `Copy` values handed to one method call: nothing is
//! allocated per event. Without an observer the pool pays one predictable
//! branch per checkout and per return.

use std::sync::Arc;
use std::time::Duration;

use crate::event_log::EventBatch;

/// Receives a pool's [`Event`]s, synchronously, on the task that caused them
/// (a `get()`, a guard's drop, the connect or reaper task).
///
/// Checkouts and returns come in batches, per connection and in order,
/// through [`on_events`](Self::on_events): at once on a connection used less
/// than once a millisecond, at most a millisecond late (or 64 events) on a
/// busy one; what a connection buffered in its last millisecond of use
/// arrives with its next use, the reaper's next pass, its close (before its
/// `Closed`), the pool's drop, or
/// [`ConnectionPool::flush_events`](crate::ConnectionPool::flush_events),
/// which an exporter calls before it reads. The other events come one by one.
///
/// It runs on the pool's hot path: keep it short, never block, never call
/// back into the pool. Count into per-thread or striped counters
/// ([`StripedCounter`](crate::util::StripedCounter)) rather than one shared
/// atomic, which every core would fight over.
///
/// ```
/// use std::sync::Arc;
/// use pool_core::{Event, Observer, util::StripedCounter};
///
/// #[derive(Default)]
/// struct Checkouts(StripedCounter);
///
/// impl Observer for Checkouts {
///     fn on_event(&self, _pool: &str, event: Event) {
///         if let Event::CheckedOut { .. } = event {
///             self.0.incr();
///         }
///     }
/// }
/// let observer: Arc<dyn Observer> = Arc::new(Checkouts::default());
/// ```
pub trait Observer: Send + Sync + 'static {
    /// Called once per event; `pool` is the pool's name (a keyed pool's
    /// sub-pools are named `name[key]`).
    fn on_event(&self, pool: &str, event: Event);

    /// Called with a batch of one connection's checkouts and returns, in
    /// order. The default calls [`on_event`](Self::on_event) for each;
    /// override it to count a batch at once ([`EventBatch::checkouts`]).
    fn on_events(&self, pool: &str, batch: EventBatch<'_>) {
        for event in batch.iter() {
            self.on_event(pool, event);
        }
    }
}

/// One thing that happened to a pool.
///
/// Times: `connect_time` and the waits of `get()`s that parked are read from
/// the exact clock. `wait` is zero for a checkout that never read the clock
/// (an idle connection taken at once). `used` is read from the pool's coarse
/// clock, which ticks every millisecond while an observer is installed: a
/// single use is rounded to whole ticks, and sums over many uses are
/// unbiased (docs/architecture.md, "Events").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A connection was opened (including the `after_connect` hook).
    Created {
        /// How long its successful connect attempt took.
        connect_time: Duration,
    },
    /// A `get()` handed out a connection.
    CheckedOut {
        /// How long the `get()` took to get it.
        wait: Duration,
    },
    /// A connection handed out came back (returned, discarded or detached):
    /// every `CheckedOut` is followed by exactly one `CheckedIn`.
    CheckedIn {
        /// How long it was held.
        used: Duration,
    },
    /// A connection was closed.
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// A `get()` ran out of `acquire_timeout`.
    TimedOut {
        /// How long it waited.
        waited: Duration,
    },
    /// One connect attempt failed (each retry is an event of its own).
    ConnectFailed {
        /// Its kind; the message is in `Pool::last_error` and in the error
        /// the waiter gets.
        kind: FailureKind,
    },
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Broken on return (`is_broken`, a dirty guard, a failed `after_return`),
    /// or discarded by its holder.
    Broken,
    /// Idle past `idle_timeout`, or closed to make room in a keyed pool.
    Idle,
    /// Older than `max_lifetime`.
    Lifetime,
    /// Its `reset`, `check` or `before_checkout` failed or timed out.
    CheckFailed,
    /// Made before the last `evict_all` (closed, or discarded when its
    /// connect completed).
    Evicted,
    /// The pool was closed.
    PoolClosed,
}

impl CloseReason {
    /// A short lowercase name, for metric labels: `broken`, `idle`,
    /// `lifetime`, `check_failed`, `evicted`, `pool_closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Broken => "broken",
            CloseReason::Idle => "idle",
            CloseReason::Lifetime => "lifetime",
            CloseReason::CheckFailed => "check_failed",
            CloseReason::Evicted => "evicted",
            CloseReason::PoolClosed => "pool_closed",
        }
    }
}

/// What kind of failure a connect attempt met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// It ran past `connect_timeout`.
    Timeout,
    /// The backend refused or failed in a way the manager calls transient
    /// (refused, reset, the server starting up).
    Transient,
    /// Any other backend error (authentication, TLS, configuration),
    /// including one from the `after_connect` hook.
    Permanent,
}

impl FailureKind {
    /// `timeout`, `transient` or `permanent` (for metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Transient => "transient",
            FailureKind::Permanent => "permanent",
        }
    }
}

/// An observer as a configuration value, for the protocol crates'
/// configurations (`WsConfig`, `ZmqConfig`, `RedisConfig`): two are equal
/// when they are the same observer, and `Debug` shows no internals.
#[derive(Clone)]
pub struct SharedObserver(pub Arc<dyn Observer>);

impl PartialEq for SharedObserver {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedObserver {}

impl std::fmt::Debug for SharedObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedObserver(..)")
    }
}
