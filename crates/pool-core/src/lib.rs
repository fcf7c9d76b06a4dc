//! # pool-core
//!
//! The engine of unipool: one connection pool for every protocol.
//!
//! - [`Manager`] teaches the engine one kind of connection (connect, check,
//!   is_broken, reset);
//! - [`ConnectionPool`] is the pool: a lock-free idle fast path, bounded fairness,
//!   cancellation-safe `get()`, fail-fast connect errors, a reaper;
//! - [`KeyedPool`] holds one pool per key under a per-key and a total limit;
//! - [`Pool`] and [`Health`] are what registries see of any pool.
//!
//! The guarantees and the data structures behind them are described in
//! `docs/architecture.md` of the repository.

mod acquire;
#[cfg(feature = "bb8")]
mod bb8_compat;
mod breaker;
mod builder;
mod chain;
mod clock;
mod config;
mod connect;
mod deadlines;
mod dyn_pool;
mod error;
mod event_log;
mod events;
mod guard;
mod health;
mod hooks;
mod inner;
mod jitter;
mod keyed;
mod knobs;
mod limit;
mod lock;
mod manager;
#[cfg(all(test, shuttle))]
mod model;
mod padded;
mod pool;
mod reaper;
mod redact;
mod report;
mod resize;
mod slots;
mod stats;
mod striped;
mod sync;
mod timeout;
mod waiters;

#[cfg(feature = "bb8")]
pub use bb8_compat::{Bb8Error, Bb8Manager};
pub use builder::Builder;
pub use config::{ConfigError, PoolConfig, QueueMode, MAX_POOL_SIZE, MIN_REAP_INTERVAL};
pub use dyn_pool::Pool;
pub use error::{LastError, PoolError};
pub use event_log::EventBatch;
pub use events::{CloseReason, Event, FailureKind, Observer, SharedObserver};
pub use guard::PooledConnection;
pub use health::{BoxFuture, Health, HealthStatus};
pub use keyed::KeyedPool;
pub use manager::Manager;
pub use pool::ConnectionPool;
pub use stats::{Stats, Timing};

/// Helpers the protocol crates share (one implementation each); not pool
/// vocabulary.
pub mod util {
    pub use crate::chain::ErrorChain;
    pub use crate::config::{parse_duration, parse_opt_duration};
    pub use crate::jitter::{backoff, unit_random};
    pub use crate::lock::{lock, read, write};
    pub use crate::redact::{clip, redact_any_url, redact_url};
    pub use crate::report::{health_verdict, HEALTH_WINDOW};

    /// How many of the engine's locks (every `Mutex` and `RwLock` of
    /// pool-core) the calling thread has taken so far: for tests that pin
    /// the lock-free fast path.
    #[doc(hidden)]
    pub use crate::lock::taken_on_this_thread as locks_taken_on_this_thread;
    pub use crate::striped::{StripedCounter, StripedCounters};

    /// Where a manager reads its password on each connect, for rotating it
    /// without a restart (pool-sql's `PgManager::password_provider`,
    /// pool-redis's `RedisConfig::password_provider`): change what it
    /// returns, then call `evict_all()`.
    pub type PasswordProvider = std::sync::Arc<dyn Fn() -> String + Send + Sync>;
}
