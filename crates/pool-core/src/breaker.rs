//! The circuit breaker (opt-in, `breaker_threshold` > 0): after that many
//! connects in a row failed, the pool stops trying for `breaker_open` — a
//! `get()` that finds no idle connection fails at once with the last cause
//! instead of queueing to `acquire_timeout` behind connects doomed to fail —
//! then lets one probe connect through; its success closes the breaker, its
//! failure opens it again. Every method runs on the slow path (connect
//! results, a `get()` about to wait); the hot path never touches it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{LastError, PoolError};
use crate::lock::lock;

/// Why a `get()` is refused: what the breaker says.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    pub(crate) failures: u32,
    pub(crate) last_error: Option<LastError>,
    pub(crate) retry_in: Duration,
}

impl Open {
    /// The error of a `get()` it refuses.
    pub(crate) fn error<E>(&self) -> PoolError<E> {
        PoolError::CircuitOpen {
            failures: self.failures,
            last_error: self.last_error.clone(),
            retry_in: self.retry_in,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Connects that failed in a row (each with its retries).
    failures: u32,
    /// Open until then; `None` when closed.
    open_until: Option<Instant>,
    /// The probe connect is in flight.
    probing: bool,
    last_error: Option<LastError>,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Breaker {
            threshold,
            open_for,
            state: Mutex::new(State::default()),
        }
    }

    /// A connect failed; `Some` when the breaker is open now (what callers
    /// are to be told).
    pub(crate) fn failed(&self, error: LastError) -> Option<Open> {
        if self.threshold == 0 {
            return None;
        }
        let mut s = lock(&self.state);
        s.failures = s.failures.saturating_add(1);
        s.last_error = Some(error);
        s.probing = false;
        if s.failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.open_for);
            tracing::warn!(failures = s.failures, open_for = ?self.open_for, "circuit breaker open");
        }
        s.open_until.map(|until| Open {
            failures: s.failures,
            last_error: s.last_error.clone(),
            retry_in: until.saturating_duration_since(Instant::now()),
        })
    }

    /// A connect succeeded: the breaker closes.
    pub(crate) fn succeeded(&self) {
        if self.threshold == 0 {
            return;
        }
        let mut s = lock(&self.state);
        if s.open_until.is_some() {
            tracing::info!("circuit breaker closed: the probe connect succeeded");
        }
        *s = State::default();
    }

    /// Whether a connect may start: always while closed; while open, only
    /// once `breaker_open` has passed and no probe is in flight (this one
    /// becomes the probe).
    pub(crate) fn admits_connect(&self) -> bool {
        if self.threshold == 0 {
            return true;
        }
        let mut s = lock(&self.state);
        match s.open_until {
            None => true,
            Some(until) if Instant::now() >= until && !s.probing => {
                s.probing = true;
                true
            }
            Some(_) => false,
        }
    }

    /// `Some` when a `get()` that would wait for a connect must fail at once:
    /// the breaker is open and it is not time for a probe, or the probe is in
    /// flight.
    pub(crate) fn refuses(&self) -> Option<Open> {
        if self.threshold == 0 {
            return None;
        }
        let s = lock(&self.state);
        let until = s.open_until?;
        let now = Instant::now();
        if now >= until && !s.probing {
            return None;
        }
        Some(Open {
            failures: s.failures,
            last_error: s.last_error.clone(),
            retry_in: until.saturating_duration_since(now),
        })
    }
}
