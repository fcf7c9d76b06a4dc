//! `ZmqError`: which step failed, on which socket, with libzmq's error.

use std::time::Duration;

use pool_core::PoolError;

/// Why a pool-zmq call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZmqError {
    /// libzmq refused: the socket could not be made, bound (address in use)
    /// or connected (bad endpoint), or an operation failed.
    #[error("{socket}: {what}: {source}")]
    Zmq {
        /// The socket, e.g. `REQ to tcp://127.0.0.1:5555`.
        socket: String,
        /// The step: `"bind"`, `"connect"`, `"send"`, `"recv"`, …
        what: &'static str,
        /// libzmq's error (its message and errno name).
        #[source]
        source: zmq::Error,
    },
    /// No room to send, or no message, within the deadline (a peer that is
    /// gone or slow: `connect()` succeeds without one).
    #[error("{socket}: no {what} within {waited:?}")]
    Timeout {
        /// The socket.
        socket: String,
        /// `"room to send"`, `"message"`, `"reply"`.
        what: &'static str,
        /// The deadline.
        waited: Duration,
    },
    /// The call does not fit the socket (a receive on PUB, a send on SUB).
    #[error("{socket}: {reason}")]
    Usage {
        /// The socket.
        socket: String,
        /// Why.
        reason: String,
    },
    /// No socket within `acquire_timeout`, or the pool is closed.
    #[error(transparent)]
    Pool(Box<PoolError<ZmqError>>),
    /// The configuration is invalid (names the knob).
    #[error(transparent)]
    Config(#[from] pool_core::ConfigError),
}

impl From<PoolError<ZmqError>> for ZmqError {
    /// A socket error comes out as itself; timeouts and `Closed` as
    /// [`ZmqError::Pool`].
    fn from(e: PoolError<ZmqError>) -> Self {
        match e {
            PoolError::Backend(e) => e,
            other => ZmqError::Pool(Box::new(other)),
        }
    }
}
