//! `LazyRedis`: a Redis pool that connects on first use. `RedisPool::connect`
//! opens its shared lane at once (so that a wrong password fails there); a
//! registry must build while Redis is down and report it, so the connect waits
//! for the first `Registry::redis` or `prewarm`, and a failed one is retried by
//! the next call. The same for a Redis Cluster (`ClusterPool`).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

use pool_core::{HealthStatus, Pool};
use pool_redis::{ClusterPool, RedisConfig, RedisPool, RedisPoolError};
use tokio::sync::OnceCell;

use super::error::RegistryError;
use super::kind::Kind;
use super::spec::PoolSpec;

/// A pool-redis pool that a registry connects on first use.
pub(crate) trait Connect: Pool + Clone + Sized + 'static {
    fn connect(
        name: &str,
        url: &str,
        config: RedisConfig,
    ) -> impl std::future::Future<Output = Result<Self, RedisPoolError>> + Send;
}

impl Connect for RedisPool {
    async fn connect(name: &str, url: &str, config: RedisConfig) -> Result<Self, RedisPoolError> {
        RedisPool::connect_named(name, url, config).await
    }
}

impl Connect for ClusterPool {
    async fn connect(name: &str, url: &str, config: RedisConfig) -> Result<Self, RedisPoolError> {
        ClusterPool::connect_named(name, url, config).await
    }
}

pub(crate) struct LazyRedis<P = RedisPool> {
    /// May hold a password: never printed.
    url: String,
    config: RedisConfig,
    pool: OnceCell<P>,
    last_error: Mutex<Option<String>>,
    closed: AtomicBool,
}

impl<P> std::fmt::Debug for LazyRedis<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyRedis")
            .field("url", &pool_core::util::redact_any_url(&self.url))
            .field("connected", &self.pool.initialized())
            .finish_non_exhaustive()
    }
}

impl<P: Connect> LazyRedis<P> {
    pub(crate) fn new(spec: &PoolSpec, config: RedisConfig) -> Self {
        LazyRedis {
            url: spec.url.clone(),
            config,
            pool: OnceCell::new(),
            last_error: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// The pool, connecting it if this is the first call (or the last connect
    /// failed).
    ///
    /// # Errors
    /// [`RegistryError::Closed`] after `close`; [`RegistryError::Pool`] with
    /// the connect error.
    pub(crate) async fn get(&self, name: &str) -> Result<P, RegistryError> {
        if self.closed.load(SeqCst) {
            return Err(RegistryError::Closed { name: name.into() });
        }
        let pool = self
            .pool
            .get_or_try_init(|| P::connect(name, &self.url, self.config.clone()))
            .await
            .map_err(|e| {
                *pool_core::util::lock(&self.last_error) = Some(e.to_string());
                RegistryError::Pool {
                    name: name.into(),
                    kind: Kind::Redis,
                    source: Box::new(e),
                }
            })?;
        if self.closed.load(SeqCst) {
            // Closed while connecting: `close` did not see this pool.
            pool.close(Duration::ZERO).await;
            return Err(RegistryError::Closed { name: name.into() });
        }
        Ok(pool.clone())
    }

    /// The pool if connected.
    pub(crate) fn connected(&self) -> Option<P> {
        self.pool.get().cloned()
    }

    /// Health while not connected.
    pub(crate) fn health(&self) -> HealthStatus {
        if self.closed.load(SeqCst) {
            return HealthStatus::Unhealthy {
                reason: "pool is closed".into(),
            };
        }
        match self.last_error() {
            Some(e) => HealthStatus::Unhealthy {
                reason: format!("not connected: {e}"),
            },
            None => HealthStatus::Degraded {
                reason: "not connected yet (connects on first use or prewarm)".into(),
            },
        }
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        pool_core::util::lock(&self.last_error).clone()
    }

    pub(crate) async fn close(&self, timeout: Duration) -> bool {
        self.closed.store(true, SeqCst);
        match self.pool.get() {
            Some(p) => p.close(timeout).await,
            None => true,
        }
    }
}
