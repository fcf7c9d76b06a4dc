//! `RedisPool`: both lanes behind one handle.

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pool_core::{BoxFuture, ConnectionPool, Health, HealthStatus, Pool, Stats};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline};

use crate::config::RedisConfig;
use crate::error::RedisPoolError;
use crate::lease::Lease;
use crate::manager::RedisManager;
use crate::shared::{Counters, Lane, SharedConnection, SharedStats};

/// Both lanes of one Redis server. Cloning is cheap.
#[derive(Clone)]
pub struct RedisPool {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    lane: Lane,
    /// How the shared lane's connections are made (again, by `evict_all`).
    lane_config: ConnectionManagerConfig,
    exclusive: ConnectionPool<RedisManager>,
}

/// A snapshot of both lanes.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisStats {
    /// The shared lane.
    pub shared: SharedStats,
    /// The exclusive lane (the engine's stats).
    pub exclusive: Stats,
}

impl RedisPool {
    /// Opens the shared lane (so that a wrong password or an unreachable server
    /// fails here, at once) and prepares the exclusive lane (opened on demand).
    ///
    /// # Errors
    /// [`RedisPoolError::Redis`] with redis's error (e.g. `AuthenticationFailed`),
    /// [`RedisPoolError::Config`] for a bad URL or configuration.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Self, RedisPoolError> {
        Self::connect_named("redis", url, config).await
    }

    /// Like [`connect`](Self::connect), with a name for stats and health.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_named(
        name: &str,
        url: &str,
        config: RedisConfig,
    ) -> Result<Self, RedisPoolError> {
        if config.shared_connections == 0 {
            return Err(RedisPoolError::Config(
                "shared_connections must be at least 1".into(),
            ));
        }
        config.pool.validate()?;
        let mut manager = RedisManager::new(
            url,
            config.pool.connect_timeout,
            config.command_timeout,
            config.root_certificate_pem.as_deref(),
        )
        .map_err(|e| {
            RedisPoolError::Config(format!("{}: {e}", pool_core::util::redact_url(url)))
        })?;
        if let Some(source) = config.password_provider {
            manager = manager.password_source(source);
        }
        let lane_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.pool.connect_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_number_of_retries(6)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        let exclusive = pool_core::Builder::from_config(config.pool)
            .observer_opt(config.observer.as_ref())
            .name(format!("{name}.exclusive"))
            .build(manager)?;
        // One lease first, through the engine: it returns the connect error at
        // once (the lane's ConnectionManager would retry even a wrong password
        // with backoff), and its connection stays idle for the next lease.
        drop(exclusive.get().await?);
        let conns = open_lane(exclusive.manager(), config.shared_connections, &lane_config).await?;
        Ok(RedisPool {
            inner: Arc::new(Inner {
                name: name.to_string(),
                lane: Lane {
                    conns: RwLock::new(conns),
                    next: AtomicUsize::new(0),
                    counters: Arc::new(Counters::default()),
                },
                lane_config,
                exclusive,
            }),
        })
    }

    /// Retires every connection of both lanes, for a credential rotation
    /// without a restart: the shared lane's connections are opened again
    /// (with the password source's password of the moment) and replace the
    /// old ones, then the exclusive lane's are retired by
    /// [`ConnectionPool::evict_all`]. Once it returns, no command, lease or
    /// [`shared`](Self::shared) handle taken afterwards uses a connection
    /// authenticated before it; handles taken before keep theirs until
    /// dropped. Recipe: change what the password source returns (and the
    /// server's password), then call this (docs/redis.md).
    ///
    /// # Errors
    /// [`RedisPoolError::Redis`] when the new shared connections cannot be
    /// opened (e.g. the new password is refused): the old ones stay in
    /// service, and the exclusive lane is not retired.
    pub async fn evict_all(&self) -> Result<(), RedisPoolError> {
        let inner = &self.inner;
        let n = inner.lane.len();
        let fresh = open_lane(inner.exclusive.manager(), n, &inner.lane_config).await?;
        inner.lane.replace(fresh);
        inner.exclusive.evict_all();
        Ok(())
    }

    /// A clone of the next shared connection (round-robin). Cheap; use it for
    /// ordinary commands, many at once.
    pub fn shared(&self) -> SharedConnection {
        self.inner.lane.pick()
    }

    /// Runs one command on the shared lane.
    ///
    /// # Errors
    /// redis's error.
    pub async fn cmd<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisPoolError> {
        let mut c = self.shared();
        Ok(cmd.query_async(&mut c).await?)
    }

    /// Runs a pipeline (or a `MULTI`/`EXEC` one with `.atomic()`) on the shared
    /// lane.
    ///
    /// # Errors
    /// redis's error.
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, RedisPoolError> {
        let mut c = self.shared();
        Ok(pipe.query_async(&mut c).await?)
    }

    /// Leases a dedicated connection for blocking commands and
    /// `WATCH`/`MULTI`/`EXEC`; it is reset before the next lease.
    ///
    /// # Errors
    /// [`RedisPoolError::Pool`]: timeout, closed, or the connect error at once.
    pub async fn lease(&self) -> Result<Lease, RedisPoolError> {
        Ok(Lease {
            conn: self.inner.exclusive.get_owned().await?,
        })
    }

    /// A dedicated pub/sub connection. Subscriptions are long-lived and change the
    /// connection's protocol state, so they are not pooled: the connection closes
    /// when the returned value is dropped.
    ///
    /// # Errors
    /// redis's error.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, RedisPoolError> {
        Ok(self
            .inner
            .exclusive
            .manager()
            .client()?
            .get_async_pubsub()
            .await?)
    }

    /// The exclusive lane's engine pool.
    pub fn exclusive(&self) -> &ConnectionPool<RedisManager> {
        &self.inner.exclusive
    }

    /// Both lanes' figures.
    pub fn lane_stats(&self) -> RedisStats {
        RedisStats {
            shared: self.inner.lane.stats(),
            exclusive: self.inner.exclusive.stats(),
        }
    }
}

impl fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPool")
            .field("name", &self.inner.name)
            .field("url", &self.inner.exclusive.manager().url())
            .field("shared_connections", &self.inner.lane.len())
            .finish()
    }
}

impl Pool for RedisPool {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &str {
        "redis"
    }

    /// The exclusive lane's stats, with the shared connections counted in
    /// `size` and `max_size` and the shared lane's in-flight commands in `in_use`.
    fn stats(&self) -> Stats {
        let mut s = self.inner.exclusive.stats();
        let shared = self.inner.lane.stats();
        s.size += shared.connections;
        s.max_size += shared.connections;
        s.in_use += shared.in_flight;
        s
    }

    fn flush_events(&self) {
        self.inner.exclusive.flush_events();
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(self.inner.exclusive.close(timeout))
    }

    fn last_error(&self) -> Option<String> {
        Pool::last_error(&self.inner.exclusive)
    }
}

impl Health for RedisPool {
    fn health(&self) -> HealthStatus {
        self.inner.exclusive.health()
    }

    fn probe(&self, timeout: Duration) -> BoxFuture<'_, HealthStatus> {
        Health::probe(&self.inner.exclusive, timeout)
    }
}

/// `n` shared connections, made with the manager's credentials of the moment.
async fn open_lane(
    manager: &RedisManager,
    n: usize,
    config: &ConnectionManagerConfig,
) -> Result<Vec<ConnectionManager>, RedisPoolError> {
    let client = manager.client()?;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(ConnectionManager::new_with_config(client.clone(), config.clone()).await?);
    }
    Ok(conns)
}
