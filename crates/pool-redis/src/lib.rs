//! # pool-redis
//!
//! Redis is multiplexed: one connection serves many callers at once, so pooling
//! exclusive connections for ordinary commands wastes it. [`RedisPool`] has two
//! lanes:
//!
//! - the **shared lane** ([`RedisPool::shared`], [`RedisPool::cmd`],
//!   [`RedisPool::pipe`]): N multiplexed connections handed out round-robin as
//!   cheap clones, each reconnecting by itself with backoff;
//! - the **exclusive lane** ([`RedisPool::lease`]): a dedicated connection from the
//!   pool-core engine for blocking commands (`BLPOP`, `XREAD BLOCK`) and
//!   `WATCH`/`MULTI`/`EXEC`, reset (`UNWATCH`, `DISCARD`) before reuse and
//!   discarded when a command was cut short.
//!
//! ```no_run
//! use pool_redis::{RedisConfig, RedisPool};
//!
//! # async fn demo() -> Result<(), pool_redis::RedisPoolError> {
//! let pool = RedisPool::connect("redis://127.0.0.1:6379/0", RedisConfig::default()).await?;
//! pool.cmd::<()>(redis::cmd("SET").arg("k").arg("v")).await?;
//! let v: String = pool.cmd(redis::cmd("GET").arg("k")).await?;
//! let mut lease = pool.lease().await?;
//! let item: Option<(String, String)> = redis::cmd("BLPOP").arg("jobs").arg(1)
//!     .query_async(&mut lease).await?;
//! # Ok(()) }
//! ```

mod cluster;
mod config;
mod error;
mod lease;
mod manager;
mod pool;
mod shared;

pub use cluster::{ClusterPool, SharedClusterConnection};
pub use config::{PasswordSource, RedisConfig};
pub use error::RedisPoolError;
pub use lease::Lease;
pub use manager::RedisManager;
pub use pool::{RedisPool, RedisStats};
pub use shared::{SharedConnection, SharedStats};

pub use pool_core;
pub use redis;
