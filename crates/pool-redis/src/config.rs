//! `RedisConfig`: the shared lane's size and timeouts, and the engine's knobs for
//! the exclusive lane.

use std::time::Duration;

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
    /// The exclusive lane's engine configuration (`max_size`, `acquire_timeout`,
    /// …); its `connect_timeout` also bounds the shared lane's connects.
    pub pool: PoolConfig,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            shared_connections: std::thread::available_parallelism().map_or(1, |n| n.get()),
            command_timeout: Duration::from_secs(10),
            root_certificate_pem: None,
            pool: PoolConfig::default(),
        }
    }
}
