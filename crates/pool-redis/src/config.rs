//! `RedisConfig`: the shared lane's size and timeouts, and the engine's knobs for
//! the exclusive lane.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pool_core::util::PasswordProvider;
use pool_core::PoolConfig;

/// Configuration of a [`RedisPool`](crate::RedisPool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Multiplexed connections of the shared lane. Default: one per core
    /// (`std::thread::available_parallelism`), at least 1.
    pub shared_connections: usize,
    /// Longest a command on either lane waits for its reply, except blocking
    /// commands on a lease, which carry their own timeout. Default 10 s.
    pub command_timeout: Duration,
    /// Trusted root certificates (PEM) for `rediss://`, instead of the system's
    /// (a private CA, a self-signed test server). Default none.
    pub root_certificate_pem: Option<Vec<u8>>,
    /// Where every connect of both lanes reads the password, instead of the
    /// URL: to rotate it, change what it returns and call
    /// [`RedisPool::evict_all`](crate::RedisPool::evict_all). Default none.
    pub password_provider: Option<PasswordSource>,
    /// The exclusive lane's engine configuration (`max_size`, `acquire_timeout`,
    /// …); its `connect_timeout` also bounds the shared lane's connects.
    pub pool: PoolConfig,
    /// Told of the exclusive lane's events (pool-core's `Observer`).
    /// Default none.
    pub observer: Option<pool_core::SharedObserver>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            shared_connections: std::thread::available_parallelism().map_or(1, |n| n.get()),
            command_timeout: Duration::from_secs(10),
            root_certificate_pem: None,
            password_provider: None,
            pool: PoolConfig::default(),
            observer: None,
        }
    }
}

/// A password read on each connect (see [`RedisConfig::password_provider`]).
/// Two are equal when they are the same provider; `Debug` never shows the
/// password.
#[derive(Clone)]
pub struct PasswordSource(pub(crate) PasswordProvider);

impl PasswordSource {
    /// A source that calls `provider` on each connect.
    pub fn new(provider: impl Fn() -> String + Send + Sync + 'static) -> Self {
        PasswordSource(Arc::new(provider))
    }
}

impl PartialEq for PasswordSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PasswordSource {}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordSource(<redacted>)")
    }
}
