//! `RedisPoolError`: which lane or phase failed, with redis's error as source.

use pool_core::PoolError;

/// Why a pool-redis call failed. Never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum RedisPoolError {
    /// Leasing an exclusive connection failed (timeout, closed, connect error).
    #[error(transparent)]
    Pool(#[from] PoolError<redis::RedisError>),
    /// The command, or opening the shared lane, failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The URL or configuration is invalid.
    #[error("invalid redis configuration: {0}")]
    Config(String),
    /// A pool knob is invalid (names the knob and the value).
    #[error(transparent)]
    PoolConfig(#[from] pool_core::ConfigError),
}

impl RedisPoolError {
    /// redis's error, wherever it sits.
    pub fn redis_error(&self) -> Option<&redis::RedisError> {
        match self {
            RedisPoolError::Redis(e) | RedisPoolError::Pool(PoolError::Backend(e)) => Some(e),
            _ => None,
        }
    }
}
