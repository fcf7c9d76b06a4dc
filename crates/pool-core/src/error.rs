//! The pool's error: which phase failed, with the backend's error as the source.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The last connect failure seen before a timeout, kept for the `Timeout` error.
///
/// It is shared (`Arc`) because several waiters may time out after the same failure.
pub type LastError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why `get()` failed. (Building a pool fails with a
/// [`ConfigError`](crate::ConfigError) instead.)
///
/// Messages never contain credentials: managers of this workspace redact URLs before
/// an error is built, and the engine adds only durations and counts.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PoolError<E> {
    /// No connection became available within `acquire_timeout`. `last_error` is the
    /// last connect failure this pool saw while the caller waited, if any.
    #[error("timed out after {} waiting for a connection{}", fmt_duration(*.waited), fmt_last(.last_error))]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// The connect failure that most likely explains the timeout.
        last_error: Option<LastError>,
    },
    /// One connect attempt ran longer than `connect_timeout`.
    #[error("connect attempt timed out after {}", fmt_duration(*.timeout))]
    ConnectTimeout {
        /// The `connect_timeout` in force.
        timeout: Duration,
    },
    /// Opening a connection failed: a wrong password, TLS failure, connection
    /// refused, … The backend's error says which (and is the `source()`).
    #[error("cannot connect: {0}")]
    Backend(#[source] E),
    /// The pool was closed.
    #[error("the pool is closed")]
    Closed,
    /// The circuit breaker is open (`breaker_threshold` connects failed in a
    /// row): no connect is tried until `retry_in` has passed, and a `get()`
    /// that finds no idle connection fails at once.
    #[error("circuit open after {failures} failed connects in a row{}; next probe in {}", fmt_last(.last_error), fmt_duration(*.retry_in))]
    CircuitOpen {
        /// Connects failed in a row.
        failures: u32,
        /// The last of them.
        last_error: Option<LastError>,
        /// When the next probe connect may run.
        retry_in: Duration,
    },
}

impl<E> PoolError<E> {
    /// The backend error, if this is one.
    pub fn backend(&self) -> Option<&E> {
        match self {
            PoolError::Backend(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the backend error type (used by protocol crates to wrap their errors).
    pub fn map_backend<F>(self, f: impl FnOnce(E) -> F) -> PoolError<F> {
        match self {
            PoolError::Timeout { waited, last_error } => PoolError::Timeout { waited, last_error },
            PoolError::ConnectTimeout { timeout } => PoolError::ConnectTimeout { timeout },
            PoolError::Backend(e) => PoolError::Backend(f(e)),
            PoolError::Closed => PoolError::Closed,
            PoolError::CircuitOpen {
                failures,
                last_error,
                retry_in,
            } => PoolError::CircuitOpen {
                failures,
                last_error,
                retry_in,
            },
        }
    }
}

impl<E: fmt::Display> fmt::Debug for PoolError<E> {
    // Debug delegates to Display so that `unwrap()` on a result prints the same
    // redacted message, never a struct dump of a backend error's internals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Timeout { .. } => write!(f, "Timeout({self})"),
            PoolError::ConnectTimeout { .. } => write!(f, "ConnectTimeout({self})"),
            PoolError::Backend(e) => write!(f, "Backend({e})"),
            PoolError::Closed => f.write_str("Closed"),
            PoolError::CircuitOpen { .. } => write!(f, "CircuitOpen({self})"),
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    // Round to the millisecond: "30.000412817s" helps nobody.
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

fn fmt_last(last: &Option<LastError>) -> String {
    match last {
        Some(e) => format!(" (last connect error: {e})"),
        None => String::new(),
    }
}

/// A connect attempt's failure inside the engine, before it is reported.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectFailure<E> {
    #[error("{0}")]
    Backend(E),
    #[error("connect attempt timed out after {}", fmt_duration(*.0))]
    Timeout(Duration),
}

impl<E> ConnectFailure<E> {
    pub(crate) fn into_pool_error(self) -> PoolError<E> {
        match self {
            ConnectFailure::Backend(e) => PoolError::Backend(e),
            ConnectFailure::Timeout(timeout) => PoolError::ConnectTimeout { timeout },
        }
    }
}
