//! `KeyedPool`: one sub-pool per key under a per-key and a total limit.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::builder::Builder;
use crate::clock::Clock;
use crate::config::{ConfigError, PoolConfig};
use crate::dyn_pool::Pool;
use crate::error::PoolError;
use crate::guard::PooledConnection;
use crate::health::{BoxFuture, Health, HealthStatus};
use crate::hooks::Hooks;
use crate::limit::TotalLimit;
use crate::lock::{read, write};
use crate::manager::Manager;
use crate::pool::ConnectionPool;
use crate::stats::Stats;

type MakeManager<K, M> = dyn Fn(&K) -> M + Send + Sync;

/// One [`ConnectionPool`] per key (a URL, a host, a socket configuration), each
/// limited to `config.max_size` connections, all together to `max_total`. When the
/// total is reached and another key holds idle connections, the oldest idle one is
/// closed to make room; otherwise the caller waits (up to `acquire_timeout`) for
/// any key to give one back.
///
/// Sub-pools are created on first use by `make_manager(&key)` and share the
/// configuration; `remove` closes one. A key whose sub-pool has no connection
/// left and is not in use is forgotten at the next `reap_interval`, so a
/// stream of distinct keys (URLs, peers) does not grow the map for ever.
pub struct KeyedPool<K, M: Manager> {
    inner: Arc<KeyedInner<K, M>>,
}

struct KeyedInner<K, M: Manager> {
    name: String,
    config: PoolConfig,
    /// The per-key `max_size` and `min_idle` now (`set_max_size`,
    /// `set_min_idle`), for every sub-pool and the ones to come.
    per_key: AtomicUsize,
    min_idle: AtomicUsize,
    /// Given to every sub-pool.
    hooks: Hooks<M>,
    make_manager: Box<MakeManager<K, M>>,
    /// The sub-pools; written only when a key is first seen or removed.
    pools: RwLock<HashMap<K, ConnectionPool<M>>>,
    total: Arc<TotalLimit>,
    /// One clock for every sub-pool (one refresh task, not one per key).
    clock: Arc<Clock>,
    /// The runtime the keyed pool was built on; its sub-pools run there.
    handle: tokio::runtime::Handle,
    /// The counters of forgotten sub-pools, so that totals never go back.
    retired: std::sync::Mutex<Stats>,
}

impl<K, M: Manager> Clone for KeyedPool<K, M> {
    fn clone(&self) -> Self {
        KeyedPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, M> KeyedPool<K, M>
where
    K: Hash + Eq + Clone + fmt::Debug + Send + Sync + 'static,
    M: Manager,
{
    /// A keyed pool named `name`: `config.max_size` is the per-key limit,
    /// `max_total` the limit over all keys.
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid `config`, a zero `max_total` or one below
    /// `max_size`; [`ConfigError::NoRuntime`] outside a tokio runtime.
    pub fn new(
        name: impl Into<String>,
        config: PoolConfig,
        max_total: usize,
        make_manager: impl Fn(&K) -> M + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        Self::from_builder(name, Builder::from_config(config), max_total, make_manager)
    }

    /// Like [`new`](Self::new), from a [`Builder`]: its configuration and its
    /// hooks (`after_connect`, `before_checkout`, `after_return`) and its
    /// observer apply to every sub-pool; its name is not used (`name` is).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_builder(
        name: impl Into<String>,
        builder: Builder<M>,
        max_total: usize,
        make_manager: impl Fn(&K) -> M + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        let (config, hooks) = builder.into_parts();
        config.validate()?;
        if max_total == 0 {
            return Err(ConfigError::Invalid {
                knob: "max_total",
                reason: "must be at least 1".into(),
            });
        }
        if max_total < config.max_size {
            return Err(ConfigError::Invalid {
                knob: "max_total",
                reason: format!(
                    "{max_total} is below the per-key max_size ({})",
                    config.max_size
                ),
            });
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Err(ConfigError::NoRuntime);
        };
        let clock = Clock::start(config.validate_after, hooks.observer.is_some(), &handle);
        let pool = KeyedPool {
            inner: Arc::new(KeyedInner {
                name: name.into(),
                per_key: AtomicUsize::new(config.max_size),
                min_idle: AtomicUsize::new(config.min_idle),
                config,
                hooks,
                make_manager: Box::new(make_manager),
                pools: RwLock::new(HashMap::new()),
                total: Arc::new(TotalLimit::new(max_total)),
                clock,
                handle: handle.clone(),
                retired: std::sync::Mutex::new(Stats::default()),
            }),
        };
        // Like a pool's reaper: a weak handle, so it never keeps the pool alive.
        let weak = Arc::downgrade(&pool.inner);
        let period = pool.inner.config.reap_interval;
        handle.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { return };
                let mut forgotten = Stats::default();
                write(&inner.pools).retain(|_, p| {
                    let unused = p.is_unused();
                    if unused {
                        // Its counters stay; its breaker goes with it.
                        forgotten.merge(&Stats {
                            circuits_open: 0,
                            ..p.stats()
                        });
                    }
                    !unused
                });
                crate::lock::lock(&inner.retired).merge(&forgotten);
            }
        });
        Ok(pool)
    }

    /// The sub-pool of `key`, created on first use.
    ///
    /// # Errors
    /// [`PoolError::Closed`] when the keyed pool was closed.
    pub fn pool(&self, key: &K) -> Result<ConnectionPool<M>, PoolError<M::Error>> {
        if let Some(p) = read(&self.inner.pools).get(key) {
            return Ok(p.clone());
        }
        let mut pools = write(&self.inner.pools);
        if let Some(p) = pools.get(key) {
            return Ok(p.clone());
        }
        let manager = (self.inner.make_manager)(key);
        let config = PoolConfig {
            max_size: self.inner.per_key.load(SeqCst),
            min_idle: self.inner.min_idle.load(SeqCst),
            grow_limit: self.inner.config.capacity(),
            ..self.inner.config.clone()
        };
        let pool = Builder::from_parts(config, self.inner.hooks.clone())
            .name(format!("{}[{key:?}]", self.inner.name))
            .start(
                manager,
                self.inner.handle.clone(),
                Some(self.inner.total.clone()),
                self.inner.clock.clone(),
            );
        pools.insert(key.clone(), pool.clone());
        Ok(pool)
    }

    /// Checks out a connection for `key` (see [`ConnectionPool::get`]).
    ///
    /// # Errors
    /// As [`ConnectionPool::get`].
    pub async fn get(&self, key: &K) -> Result<PooledConnection<'static, M>, PoolError<M::Error>> {
        let pool = self.pool(key)?;
        pool.get_owned().await
    }

    /// Connections alive over all keys.
    pub fn total_size(&self) -> usize {
        self.inner.total.used()
    }

    /// The limit over all keys.
    pub fn max_total(&self) -> usize {
        self.inner.total.max()
    }

    /// Sets the per-key limit of every sub-pool, and of those created later
    /// (see [`ConnectionPool::set_max_size`]).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `max_size`: 0, above `grow_limit`,
    /// below `min_idle`, or above `max_total`.
    pub fn set_max_size(&self, n: usize) -> Result<(), ConfigError> {
        crate::resize::check_max_size(
            n,
            self.inner.config.capacity(),
            self.inner.min_idle.load(SeqCst),
        )?;
        if n > self.max_total() {
            return Err(ConfigError::Invalid {
                knob: "max_size",
                reason: format!("{n} is above max_total ({})", self.max_total()),
            });
        }
        self.inner.per_key.store(n, SeqCst);
        self.sub_pools().iter().try_for_each(|p| p.set_max_size(n))
    }

    /// Sets the limit over all keys. Raising it lets waiting keys open
    /// connections at once; lowering it closes idle connections, the one
    /// idle longest first, and surplus ones as they come back.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `max_total`: 0, or below the per-key
    /// `max_size`.
    pub fn set_max_total(&self, n: usize) -> Result<(), ConfigError> {
        let per_key = self.inner.per_key.load(SeqCst);
        if n == 0 || n < per_key {
            return Err(ConfigError::Invalid {
                knob: "max_total",
                reason: format!("{n} is below the per-key max_size ({per_key})"),
            });
        }
        self.inner.total.set_max(n);
        Ok(())
    }

    /// Sets `min_idle` of every sub-pool, and of those created later.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `min_idle` when it is above the
    /// per-key `max_size`.
    pub fn set_min_idle(&self, n: usize) -> Result<(), ConfigError> {
        crate::resize::check_min_idle(n, self.inner.per_key.load(SeqCst))?;
        self.inner.min_idle.store(n, SeqCst);
        self.sub_pools().iter().try_for_each(|p| p.set_min_idle(n))
    }

    /// [`ConnectionPool::flush_events`] on every sub-pool.
    pub fn flush_events(&self) {
        for p in self.sub_pools() {
            p.flush_events();
        }
    }

    /// [`ConnectionPool::evict_all`] on every sub-pool.
    pub fn evict_all(&self) {
        for p in self.sub_pools() {
            p.evict_all();
        }
    }

    /// The sub-pool of `key` if it exists; never creates one (for callers that
    /// validate a key only when it is new). `key` may be any borrowed form of
    /// `K` (a `&str` for a `String` key), so a lookup need not build a key.
    pub fn existing<Q>(&self, key: &Q) -> Option<ConnectionPool<M>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        read(&self.inner.pools).get(key).cloned()
    }

    /// Stats of one key, if it has a sub-pool.
    pub fn key_stats(&self, key: &K) -> Option<Stats> {
        read(&self.inner.pools).get(key).map(ConnectionPool::stats)
    }

    /// The keys that have a sub-pool.
    pub fn keys(&self) -> Vec<K> {
        read(&self.inner.pools).keys().cloned().collect()
    }

    /// Closes and forgets the sub-pool of `key`.
    pub async fn remove(&self, key: &K, timeout: Duration) -> bool {
        let pool = write(&self.inner.pools).remove(key);
        match pool {
            Some(p) => p.close(timeout).await,
            None => true,
        }
    }

    fn sub_pools(&self) -> Vec<ConnectionPool<M>> {
        read(&self.inner.pools).values().cloned().collect()
    }
}

impl<K, M: Manager> fmt::Debug for KeyedPool<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedPool")
            .field("name", &self.inner.name)
            .field("keys", &read(&self.inner.pools).len())
            .field("total", &self.inner.total.used())
            .field("max_total", &self.inner.total.max())
            .finish()
    }
}

impl<K, M> Pool for KeyedPool<K, M>
where
    K: Hash + Eq + Clone + fmt::Debug + Send + Sync + 'static,
    M: Manager,
{
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &str {
        self.sub_pools()
            .first()
            .map_or("keyed", |p| p.manager().kind())
    }

    fn flush_events(&self) {
        KeyedPool::flush_events(self);
    }

    /// The sub-pools' figures summed; counters include sub-pools already
    /// forgotten (gauges are theirs only: a forgotten sub-pool held nothing).
    fn stats(&self) -> Stats {
        let mut total = crate::lock::lock(&self.inner.retired).clone();
        for p in self.sub_pools() {
            total.merge(&p.stats());
        }
        total.max_size = self.inner.total.max();
        total
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let mut all = true;
            for p in self.sub_pools() {
                all &= p.close(timeout).await;
            }
            all
        })
    }

    fn last_error(&self) -> Option<String> {
        self.sub_pools().iter().find_map(Pool::last_error)
    }
}

impl<K, M> Health for KeyedPool<K, M>
where
    K: Hash + Eq + Clone + fmt::Debug + Send + Sync + 'static,
    M: Manager,
{
    /// The worst verdict of the sub-pools.
    fn health(&self) -> HealthStatus {
        self.sub_pools()
            .iter()
            .map(ConnectionPool::health)
            .fold(HealthStatus::Healthy, HealthStatus::worst)
    }

    /// Probes every sub-pool (one after the other, each within `timeout`);
    /// the worst verdict wins.
    fn probe(&self, timeout: Duration) -> BoxFuture<'_, HealthStatus> {
        Box::pin(async move {
            let mut worst = HealthStatus::Healthy;
            for p in self.sub_pools() {
                worst = worst.worst(Health::probe(&p, timeout).await);
            }
            worst
        })
    }
}
