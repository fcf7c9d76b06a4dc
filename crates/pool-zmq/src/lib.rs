//! # pool-zmq
//!
//! ZeroMQ sockets pooled per socket configuration (kind, endpoint, bind or
//! connect, options) on one shared context, on pool-core's `KeyedPool` and
//! `zmq` 0.10. Sends and receives are awaited on the socket's descriptor,
//! never on a blocking call; a REQ socket left mid-exchange is closed, never
//! reused; closing never blocks a runtime thread. See `docs/zmq.md`.

mod config;
mod error;
mod manager;
mod monitor;
mod pool;
mod socket;

pub use config::{SocketConfig, SocketKind, SocketOptions, ZmqConfig};
pub use error::ZmqError;
pub use manager::ZmqManager;
pub use pool::{ZmqEndpoint, ZmqLease, ZmqPool, ZmqStats, ZmqSubscription};
pub use socket::{Multipart, ZmqSocket};

/// The `zmq` crate, re-exported for its message and error types.
pub use zmq;
