//! # unipool
//!
//! One family of connection pools. This umbrella crate re-exports the engine
//! ([`core`], also at the crate root) and, behind features, the protocol pools
//! (`postgres`, `sqlite`, `redis`, `http`, `ws`, `zmq`, `mongo`). Its [`Registry`]
//! builds every pool of a service from one configuration — a TOML file and
//! `UNIPOOL_<NAME>_<KEY>` variables, read by [`RegistryConfig`] — hands them
//! out by name, prewarms them, reports their health and stats, and closes
//! them together (`docs/configuration.md`, `examples/service`).
//!
//! ```
//! use unipool::{ConnectionPool, Manager};
//! use std::convert::Infallible;
//!
//! struct Numbers;
//! impl Manager for Numbers {
//!     type Connection = u64;
//!     type Error = Infallible;
//!     async fn connect(&self) -> Result<u64, Infallible> { Ok(42) }
//!     async fn check(&self, _: &mut u64) -> Result<(), Infallible> { Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = ConnectionPool::builder().max_size(2).build(Numbers)?;
//! assert_eq!(*pool.get().await?, 42);
//! # Ok(()) }
//! ```

#[cfg(feature = "otel")]
pub mod otel;
mod registry;
#[cfg(feature = "prometheus")]
pub mod telemetry;

pub use registry::{
    Allowed, CloseReport, Kind, Origin, PoolHealth, PoolStats, PrewarmReport, Prewarmed, Registry,
    RegistryConfig, RegistryError, RegistryHealth, ServerBudget, DEFAULT_HTTP_NAME,
};

#[doc(inline)]
pub use pool_core::{
    self as core, util, BoxFuture, Builder, ConfigError, ConnectionPool, Health, HealthStatus,
    KeyedPool, LastError, Manager, Pool, PoolConfig, PoolError, PooledConnection, QueueMode, Stats,
    MAX_POOL_SIZE, MIN_REAP_INTERVAL,
};

#[cfg(feature = "bb8")]
#[doc(inline)]
pub use pool_core::{Bb8Error, Bb8Manager};

/// PostgreSQL and SQLite pools (features `postgres`, `sqlite`).
#[cfg(any(feature = "postgres", feature = "sqlite"))]
#[doc(inline)]
pub use pool_sql::{self as sql, DbError, SqlError};

#[cfg(feature = "postgres")]
#[doc(inline)]
pub use pool_sql::{PgManager, PgPool, PgPoolExt, RecyclePolicy};

#[cfg(feature = "sqlite")]
#[doc(inline)]
pub use pool_sql::{SqliteManager, SqlitePool, SqlitePoolExt};

/// Redis: a shared multiplexed lane and exclusive leases (feature `redis`).
#[cfg(feature = "redis")]
#[doc(inline)]
pub use pool_redis::{self as redis, Lease, RedisConfig, RedisPool, RedisPoolError};

/// HTTP: one shared, limited and measured client per service (feature `http`).
#[cfg(feature = "http")]
#[doc(inline)]
pub use pool_http::{self as http, HttpConfig, HttpError, HttpPool, HttpRegistry};

/// WebSocket: a bounded, heartbeated pool keyed by URL (feature `ws`).
#[cfg(feature = "ws")]
#[doc(inline)]
pub use pool_ws::{self as ws, WsConfig, WsEndpoint, WsError, WsPool};

/// ZeroMQ: sockets pooled per socket configuration (feature `zmq`).
#[cfg(feature = "zmq")]
#[doc(inline)]
pub use pool_zmq::{
    self as zmq, SocketConfig, SocketKind, ZmqConfig, ZmqEndpoint, ZmqError, ZmqPool,
};

/// MongoDB: one shared driver client per URI, observed (feature `mongo`).
#[cfg(feature = "mongo")]
#[doc(inline)]
pub use pool_mongo::{self as mongo, MongoClients, MongoConfig, MongoError, MongoPool};

/// Compiles the README's example as a doctest, so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExample;
