//! `Manager`: how to open, check and reset one kind of connection.

use std::future::Future;

/// Teaches the engine one kind of connection.
///
/// Methods return `impl Future + Send`, so implementors write plain `async fn` and
/// nothing is boxed on the hot path. Every async method runs under a timeout of the
/// engine (`connect_timeout`), so an implementation need not add its own.
pub trait Manager: Send + Sync + 'static {
    /// The connection handed out by the pool.
    type Connection: Send + 'static;
    /// The backend's error; it becomes `PoolError::Backend` and keeps its source chain.
    /// Its `Display` must not contain credentials.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens one connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Probes a connection (`SELECT 1`, `PING`, a WebSocket ping). Runs on checkout
    /// when the connection was idle longer than `validate_after`, and from the
    /// reaper every `keepalive_interval`. An error closes the connection.
    fn check(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Cheap synchronous test on every return (e.g. "the socket is closed"). A
    /// broken connection is closed instead of being reused. Default: never broken.
    fn is_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Cleans a connection before it is reused (`DISCARD ALL`, `UNWATCH`). Runs on
    /// checkout of every connection that has been used before; an error closes it.
    /// Default: nothing to do.
    fn reset(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = conn;
        std::future::ready(Ok(()))
    }

    /// Whether a caller cancelled while `reset` ran leaves a connection that
    /// may be reused — reset again on its next checkout — rather than one
    /// half reset. Default: `false`, such a connection is closed.
    fn reset_is_cancel_safe(&self, conn: &Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Whether a connect error is worth retrying (refused, reset). Only consulted
    /// when `connect_retries > 0`; a connect timeout always counts as transient.
    /// Default: no error is transient.
    fn is_transient(&self, error: &Self::Error) -> bool {
        let _ = error;
        false
    }

    /// A short name of the protocol for reports (`"postgres"`, `"redis"`, …).
    fn kind(&self) -> &'static str {
        "custom"
    }
}
