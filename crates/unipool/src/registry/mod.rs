//! `Registry`: every pool of a service from one configuration (TOML and the
//! environment), handed out by name, prewarmed, reported on and closed
//! together. See `docs/configuration.md` for the keys.

// The parsing helpers serve every protocol kind; a build with only some of the
// protocol features leaves the others' helpers unused.
#![cfg_attr(
    not(all(
        feature = "postgres",
        feature = "sqlite",
        feature = "redis",
        feature = "http"
    )),
    allow(dead_code, unused_variables, unreachable_code)
)]

mod budget;
mod config;
mod entry;
mod error;
mod keys;
mod kind;
#[cfg(feature = "redis")]
mod lazy_redis;
mod report;
mod spec;
// Read only by the exporters.
#[cfg_attr(not(any(feature = "prometheus", feature = "otel")), allow(dead_code))]
pub(crate) mod timings;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_core::{HealthStatus, Pool};

pub use budget::{Allowed, ServerBudget};
pub use config::RegistryConfig;
use entry::Entry;
pub use error::{Origin, RegistryError};
pub use kind::Kind;
pub use report::{CloseReport, PoolHealth, PoolStats, PrewarmReport, Prewarmed, RegistryHealth};

/// Named pools of every kind, built once from a [`RegistryConfig`]. Cheap to
/// clone (one `Arc`); every clone sees the same pools.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use unipool::{Registry, RegistryConfig, SqlitePoolExt};
///
/// let registry = RegistryConfig::new()
///     .vars([("UNIPOOL_NOTES_URL", "sqlite::memory:notes"), ("UNIPOOL_NOTES_MIN_IDLE", "2")])?
///     .build()?;
/// assert!(registry.prewarm().await.is_ok());
/// let notes = registry.sqlite("notes")?;
/// notes.execute("CREATE TABLE t (x)", Vec::<i64>::new()).await?;
/// println!("{}", registry.health());
/// assert!(registry.close_all(Duration::from_secs(1)).await.all_closed());
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    entries: Vec<Arc<Entry>>,
    /// Processes of the service, for the fleet budget.
    replicas: usize,
    /// The fleet budget as the last `prewarm` read it.
    budget: std::sync::Mutex<Vec<ServerBudget>>,
    #[cfg(feature = "http")]
    default_http: DefaultHttp,
    closed: AtomicBool,
}

/// The shared client of `http_for` for hosts no HTTP pool is declared for.
#[cfg(feature = "http")]
struct DefaultHttp {
    config: pool_http::HttpConfig,
    pool: std::sync::Mutex<Option<pool_http::HttpPool>>,
}

/// The name of the shared HTTP client of [`Registry::http_for`].
pub const DEFAULT_HTTP_NAME: &str = "default";

impl RegistryConfig {
    /// Builds every pool. Nothing connects yet: SQL pools connect on demand
    /// (and open `min_idle` in the background), Redis on first use, HTTP on
    /// the first request; [`Registry::prewarm`] opens them all now. Call it
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`RegistryError::Config`] naming the file and key or the variable, and
    /// the bad value; [`RegistryError::Unsupported`] for a kind this build
    /// cannot make; [`RegistryError::Pool`] when a protocol crate refuses its
    /// URL or no runtime is running.
    pub fn build(self) -> Result<Registry, RegistryError> {
        let mut specs = self.specs()?;
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let entries = specs
            .iter()
            .map(|s| Entry::build(s).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        #[cfg(feature = "http")]
        let default_http = {
            let spec = spec::PoolSpec {
                name: DEFAULT_HTTP_NAME.into(),
                kind: Kind::Http,
                url: String::new(),
                settings: self.default_settings(Kind::Http),
            };
            DefaultHttp {
                config: entry::http_config(&spec, pool_http::HttpConfig::default())?,
                pool: std::sync::Mutex::new(None),
            }
        };
        Ok(Registry {
            inner: Arc::new(Inner {
                entries,
                replicas: self.replicas.as_ref().map_or(1, |(n, _)| *n),
                budget: std::sync::Mutex::new(Vec::new()),
                #[cfg(feature = "http")]
                default_http,
                closed: AtomicBool::new(false),
            }),
        })
    }
}

impl Registry {
    /// [`RegistryConfig::from_env`], built.
    ///
    /// # Errors
    /// As [`RegistryConfig::from_env`] and [`RegistryConfig::build`].
    pub fn from_env() -> Result<Registry, RegistryError> {
        RegistryConfig::from_env()?.build()
    }

    /// The pools' names, in name order.
    pub fn names(&self) -> Vec<&str> {
        self.inner.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// The kind of pool `name`.
    ///
    /// # Errors
    /// [`RegistryError::UnknownPool`].
    pub fn kind(&self, name: &str) -> Result<Kind, RegistryError> {
        self.entry(name).map(|e| e.kind)
    }

    fn entry(&self, name: &str) -> Result<&Entry, RegistryError> {
        self.inner
            .entries
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
            .map(|e| &**e)
            .ok_or_else(|| RegistryError::UnknownPool {
                name: name.into(),
                declared: self.names().join(", "),
            })
    }

    fn wrong_kind(entry: &Entry, asked: Kind) -> RegistryError {
        RegistryError::WrongKind {
            name: entry.name.clone(),
            kind: entry.kind,
            asked,
        }
    }

    /// The PostgreSQL pool `name` (name matched case-insensitively); the same
    /// pool on every call.
    ///
    /// # Errors
    /// [`RegistryError::UnknownPool`] or [`RegistryError::WrongKind`].
    #[cfg(feature = "postgres")]
    pub fn postgres(&self, name: &str) -> Result<pool_sql::PgPool, RegistryError> {
        match &self.entry(name)?.handle {
            entry::Handle::Postgres(p) => Ok(p.clone()),
            _ => Err(Self::wrong_kind(self.entry(name)?, Kind::Postgres)),
        }
    }

    /// The SQLite pool `name`; the same pool on every call.
    ///
    /// # Errors
    /// [`RegistryError::UnknownPool`] or [`RegistryError::WrongKind`].
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&self, name: &str) -> Result<pool_sql::SqlitePool, RegistryError> {
        match &self.entry(name)?.handle {
            entry::Handle::Sqlite(p) => Ok(p.clone()),
            _ => Err(Self::wrong_kind(self.entry(name)?, Kind::Sqlite)),
        }
    }

    /// The HTTP service `name`; the same client on every call.
    ///
    /// # Errors
    /// [`RegistryError::UnknownPool`] or [`RegistryError::WrongKind`].
    #[cfg(feature = "http")]
    pub fn http(&self, name: &str) -> Result<pool_http::HttpPool, RegistryError> {
        match &self.entry(name)?.handle {
            entry::Handle::Http(p) => Ok(p.clone()),
            _ => Err(Self::wrong_kind(self.entry(name)?, Kind::Http)),
        }
    }

    /// The WebSocket service `name`: its URL on a pool of its own (the
    /// registry's knobs for it: `max_size` per URL, `max_total`, pings, …);
    /// the same pool on every call.
    ///
    /// # Errors
    /// [`RegistryError::UnknownPool`] or [`RegistryError::WrongKind`].
    #[cfg(feature = "ws")]
    pub fn ws(&self, name: &str) -> Result<pool_ws::WsEndpoint, RegistryError> {
        match &self.entry(name)?.handle {
            entry::Handle::Ws(e) => Ok(e.clone()),
            _ => Err(Self::wrong_kind(self.entry(name)?, Kind::Ws)),
        }
    }

    /// The ZeroMQ service `name` (`kind = "zmq"`): its socket configuration
    /// on a pool of its own; the same pool on every call.
    ///
    /// # Errors
    /// [`RegistryError::UnknownPool`] or [`RegistryError::WrongKind`].
    #[cfg(feature = "zmq")]
    pub fn zmq(&self, name: &str) -> Result<pool_zmq::ZmqEndpoint, RegistryError> {
        match &self.entry(name)?.handle {
            entry::Handle::Zmq(e) => Ok(e.clone()),
            _ => Err(Self::wrong_kind(self.entry(name)?, Kind::Zmq)),
        }
    }

    /// The MongoDB pool `name` (`mongodb://`, `mongodb+srv://`): one shared
    /// driver client, built on its first use; the same pool on every call.
    ///
    /// # Errors
    /// [`RegistryError::UnknownPool`] or [`RegistryError::WrongKind`].
    #[cfg(feature = "mongo")]
    pub fn mongo(&self, name: &str) -> Result<pool_mongo::MongoPool, RegistryError> {
        match &self.entry(name)?.handle {
            entry::Handle::Mongo(p) => Ok(p.clone()),
            _ => Err(Self::wrong_kind(self.entry(name)?, Kind::Mongo)),
        }
    }

    /// The Redis pool `name`, connected on the first call (a failed connect
    /// is retried by the next call); the same pool afterwards.
    ///
    /// # Errors
    /// [`RegistryError::UnknownPool`], [`RegistryError::WrongKind`],
    /// [`RegistryError::Pool`] with the connect error, or
    /// [`RegistryError::Closed`] after [`close_all`](Self::close_all).
    #[cfg(feature = "redis")]
    pub async fn redis(&self, name: &str) -> Result<pool_redis::RedisPool, RegistryError> {
        let entry = self.entry(name)?;
        match &entry.handle {
            entry::Handle::Redis(r) => r.get(&entry.name).await,
            entry::Handle::RedisCluster(_) => Err(RegistryError::RedisTopology {
                name: entry.name.clone(),
                actual: "a Redis Cluster pool",
                accessor: "redis_cluster",
            }),
            _ => Err(Self::wrong_kind(entry, Kind::Redis)),
        }
    }

    /// The Redis Cluster pool `name` (a `redis+cluster://` URL), connected on
    /// the first call (a failed connect is retried by the next call); the
    /// same pool afterwards. It takes the Redis keys (`shared_connections`,
    /// `command_timeout`) and the engine's knobs for each node's leases.
    ///
    /// # Errors
    /// As [`redis`](Self::redis); [`RegistryError::RedisTopology`] for a
    /// single-node Redis pool.
    #[cfg(feature = "redis")]
    pub async fn redis_cluster(
        &self,
        name: &str,
    ) -> Result<pool_redis::ClusterPool, RegistryError> {
        let entry = self.entry(name)?;
        match &entry.handle {
            entry::Handle::RedisCluster(r) => r.get(&entry.name).await,
            entry::Handle::Redis(_) => Err(RegistryError::RedisTopology {
                name: entry.name.clone(),
                actual: "a single-node Redis pool",
                accessor: "redis",
            }),
            _ => Err(Self::wrong_kind(entry, Kind::Redis)),
        }
    }

    /// The HTTP client for `url`, for code that has a URL and no service name:
    /// the declared HTTP pool whose base URL is the longest prefix of `url`
    /// (same scheme, host and port; the path starting with the base's), else
    /// one shared client for every other host ([`DEFAULT_HTTP_NAME`]), created
    /// on first use with the `[defaults]` that apply to HTTP. The same client
    /// every time for the same host.
    ///
    /// # Errors
    /// [`RegistryError::BadUrl`] when `url` is not an absolute http(s) URL;
    /// [`RegistryError::Closed`] when the shared client would be created after
    /// [`close_all`](Self::close_all).
    #[cfg(feature = "http")]
    pub fn http_for(&self, url: &str) -> Result<pool_http::HttpPool, RegistryError> {
        let bad = |reason: String| RegistryError::BadUrl {
            url: error::redact_any_url(url),
            reason,
        };
        let target = url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e})")))?;
        if !matches!(target.scheme(), "http" | "https") {
            return Err(bad("not an http or https URL".into()));
        }
        let mut best: Option<(&pool_http::HttpPool, usize)> = None;
        for e in &self.inner.entries {
            let entry::Handle::Http(pool) = &e.handle else {
                continue;
            };
            let Some(base) = &pool.config().base_url else {
                continue;
            };
            if let Some(len) = base_match(base, &target) {
                if best.is_none_or(|(_, l)| len > l) {
                    best = Some((pool, len));
                }
            }
        }
        if let Some((pool, _)) = best {
            return Ok(pool.clone());
        }
        let shared = &self.inner.default_http;
        let mut slot = pool_core::util::lock(&shared.pool);
        if let Some(pool) = &*slot {
            return Ok(pool.clone());
        }
        if self.inner.closed.load(SeqCst) {
            return Err(RegistryError::Closed {
                name: DEFAULT_HTTP_NAME.into(),
            });
        }
        let pool =
            pool_http::HttpPool::new(DEFAULT_HTTP_NAME, shared.config.clone()).map_err(|e| {
                RegistryError::Pool {
                    name: DEFAULT_HTTP_NAME.into(),
                    kind: Kind::Http,
                    source: Box::new(e),
                }
            })?;
        *slot = Some(pool.clone());
        Ok(pool)
    }

    /// Every pool that exists now, as the `Pool` trait sees it (for exporters):
    /// a Redis pool not connected yet and a shared HTTP client not created yet
    /// are left out.
    pub fn pools(&self) -> Vec<Arc<dyn Pool>> {
        let mut pools: Vec<Arc<dyn Pool>> =
            self.inner.entries.iter().filter_map(|e| e.pool()).collect();
        pools.extend(self.shared_http());
        pools
    }

    /// The shared client of `http_for`, if created.
    fn shared_http(&self) -> Option<Arc<dyn Pool>> {
        #[cfg(feature = "http")]
        if let Some(p) = &*pool_core::util::lock(&self.inner.default_http.pool) {
            return Some(Arc::new(p.clone()));
        }
        None
    }

    /// Every HTTP pool with its name (the shared client of `http_for` last,
    /// if created), for per-host figures.
    #[cfg(feature = "http")]
    pub(crate) fn http_pools(&self) -> Vec<(String, pool_http::HttpPool)> {
        let mut out: Vec<(String, pool_http::HttpPool)> = self
            .inner
            .entries
            .iter()
            .filter_map(|e| match &e.handle {
                entry::Handle::Http(p) => Some((e.name.clone(), p.clone())),
                _ => None,
            })
            .collect();
        if let Some(p) = &*pool_core::util::lock(&self.inner.default_http.pool) {
            out.push((DEFAULT_HTTP_NAME.to_string(), p.clone()));
        }
        out
    }

    /// The observer the registry installs on its pools (feature
    /// `prometheus` or `otel`), on fresh timings: for `bench core`.
    #[doc(hidden)]
    pub fn bench_observer() -> Arc<dyn pool_core::Observer> {
        Arc::new(timings::Recorder(Arc::default()))
    }

    /// Where pool `name` connects, its password redacted.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn target(&self, name: &str) -> Option<&str> {
        self.inner
            .entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.target.as_str())
    }

    /// The time distributions of pool `name`, if the registry records them.
    #[cfg_attr(not(any(feature = "prometheus", feature = "otel")), allow(dead_code))]
    pub(crate) fn timings(&self, name: &str) -> Option<Arc<timings::PoolTimings>> {
        self.inner
            .entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.timings.clone())
    }

    /// The health of every pool, and the worst verdict. Cheap: counters only,
    /// no I/O.
    pub fn health(&self) -> RegistryHealth {
        let mut pools: Vec<PoolHealth> = self
            .inner
            .entries
            .iter()
            .map(|e| match e.pool() {
                Some(p) => PoolHealth::new(&e.name, e.kind, p.health(), &p.stats(), p.last_error()),
                None => PoolHealth::new(
                    &e.name,
                    e.kind,
                    e.unbuilt_health(),
                    &pool_core::Stats::default(),
                    e.unbuilt_error(),
                ),
            })
            .collect();
        for b in pool_core::util::lock(&self.inner.budget).iter() {
            if b.excess().is_none() {
                continue;
            }
            for p in pools
                .iter_mut()
                .filter(|p| b.pools.iter().any(|(name, _)| *name == p.name))
            {
                let over = HealthStatus::Degraded {
                    reason: format!("fleet budget exceeded: {b}"),
                };
                p.status = std::mem::replace(&mut p.status, HealthStatus::Healthy).worst(over);
            }
        }
        if let Some(p) = self.shared_http() {
            pools.push(PoolHealth::new(
                DEFAULT_HTTP_NAME,
                Kind::Http,
                p.health(),
                &p.stats(),
                None,
            ));
        }
        RegistryHealth::new(pools)
    }

    /// Every pool's stats, in name order (then the shared HTTP client).
    pub fn stats(&self) -> Vec<PoolStats> {
        let mut out: Vec<PoolStats> = self
            .inner
            .entries
            .iter()
            .map(|e| PoolStats {
                name: e.name.clone(),
                kind: e.kind,
                stats: e.stats(),
            })
            .collect();
        out.extend(self.shared_http().map(|p| PoolStats {
            name: DEFAULT_HTTP_NAME.into(),
            kind: Kind::Http,
            stats: p.stats(),
        }));
        out
    }

    /// Opens `min_idle` connections (at least one, so that every pool is known
    /// to reach its server) in every pool at once — Redis pools connect here —
    /// and reports per pool what is open or what failed. HTTP pools open
    /// nothing: a request may have effects, and reqwest connects on the first.
    /// Each pool waits at most its `acquire_timeout`.
    pub async fn prewarm(&self) -> PrewarmReport {
        let results = self
            .on_every_entry(|e| async move { e.prewarm().await })
            .await;
        let budget = self.read_budget().await;
        *pool_core::util::lock(&self.inner.budget) = budget.clone();
        PrewarmReport {
            budget,
            pools: self
                .inner
                .entries
                .iter()
                .zip(results)
                .map(|(e, r)| Prewarmed {
                    name: e.name.clone(),
                    kind: e.kind,
                    result: r.unwrap_or_else(|| Err("prewarm task panicked".into())),
                })
                .collect(),
        }
    }

    /// The fleet budget per server, as the last [`prewarm`](Self::prewarm)
    /// read it (empty before): replicas × the connections each replica's
    /// PostgreSQL and Redis pools may open there, against what the server
    /// allows. `docs/scaling.md` has the arithmetic.
    pub fn budget(&self) -> Vec<ServerBudget> {
        pool_core::util::lock(&self.inner.budget).clone()
    }

    /// Groups the pools by server and reads each server's limit (through
    /// the first pool that targets it), unless one is configured.
    async fn read_budget(&self) -> Vec<ServerBudget> {
        let slots = self
            .inner
            .entries
            .iter()
            .flat_map(|e| {
                e.budget_slots()
                    .into_iter()
                    .map(|s| (e.name.clone(), e.kind, s))
            })
            .collect();
        let mut out = Vec::new();
        for (mut b, configured) in budget::group(slots, self.inner.replicas) {
            b.allowed = match configured {
                Some(n) => Ok(Allowed {
                    connections: n,
                    source: "server_limit (configured)".into(),
                }),
                None => {
                    let first = self.inner.entries.iter().find(|e| {
                        e.kind == b.kind && e.budget_slots().iter().any(|s| s.server == b.server)
                    });
                    match first {
                        Some(e) => entry::read_limit(e, &b.server).await,
                        None => Err("no pool to read it through".into()),
                    }
                }
            };
            out.push(b);
        }
        out
    }

    /// Runs `f` on every entry at once (a task each); the results in
    /// declaration order, `None` for a task that panicked.
    async fn on_every_entry<T, F>(&self, f: impl Fn(Arc<Entry>) -> F) -> Vec<Option<T>>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let mut set = tokio::task::JoinSet::new();
        for (i, e) in self.inner.entries.iter().enumerate() {
            let run = f(e.clone());
            set.spawn(async move { (i, run.await) });
        }
        let mut results: Vec<Option<T>> = (0..self.inner.entries.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                results[i] = Some(r);
            }
        }
        results
    }

    /// Closes every pool at once: new `get()`s fail with `Closed` at once,
    /// idle connections close now, connections in use close when returned.
    /// Returns by `deadline`, with each pool marked closed or not (some
    /// connection still in use).
    pub async fn close_all(&self, deadline: Duration) -> CloseReport {
        let start = Instant::now();
        self.inner.closed.store(true, SeqCst);
        let closed = self
            .on_every_entry(|e| async move {
                let closed = tokio::time::timeout(deadline, e.close(deadline)).await;
                closed.unwrap_or(false)
            })
            .await;
        let mut pools: Vec<(String, bool)> = self
            .inner
            .entries
            .iter()
            .zip(closed)
            .map(|(e, ok)| (e.name.clone(), ok.unwrap_or(false)))
            .collect();
        if let Some(p) = self.shared_http() {
            let left = deadline.saturating_sub(start.elapsed());
            pools.push((DEFAULT_HTTP_NAME.into(), p.close(left).await));
        }
        tracing::info!(pools = pools.len(), elapsed = ?start.elapsed(), "registry closed");
        CloseReport {
            pools,
            elapsed: start.elapsed(),
        }
    }

    /// Waits for SIGTERM or SIGINT (ctrl-c), then [`close_all`](Self::close_all)
    /// with `deadline`, and resolves with its report. The signal handlers are
    /// installed before this returns, so a signal sent after it is never lost;
    /// the runtime needs its I/O driver (`enable_all`).
    ///
    /// ```no_run
    /// # async fn serve(registry: unipool::Registry) -> std::io::Result<()> {
    /// let shutdown = registry.shutdown_on_signal(std::time::Duration::from_secs(10))?;
    /// let report = shutdown.await; // the service runs meanwhile
    /// eprintln!("closed: {}", report.all_closed());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The I/O error of installing a signal handler.
    pub fn shutdown_on_signal(
        &self,
        deadline: Duration,
    ) -> std::io::Result<impl Future<Output = CloseReport> + Send + 'static> {
        #[cfg(unix)]
        let (mut term, mut int) = {
            use tokio::signal::unix::{signal, SignalKind};
            (
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            )
        };
        let registry = self.clone();
        Ok(async move {
            #[cfg(unix)]
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: closing every pool"),
                _ = int.recv() => tracing::info!("SIGINT: closing every pool"),
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            registry.close_all(deadline).await
        })
    }
}

/// How much of `target` the base URL covers (its path length), if it is a
/// prefix: same scheme, host and port, and the path starts with the base's
/// path at a segment boundary.
#[cfg(feature = "http")]
fn base_match(base: &url::Url, target: &url::Url) -> Option<usize> {
    if base.scheme() != target.scheme()
        || base.host_str() != target.host_str()
        || base.port_or_known_default() != target.port_or_known_default()
    {
        return None;
    }
    let prefix = base.path().trim_end_matches('/');
    let path = target.path();
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for e in &self.inner.entries {
            map.entry(&e.name, &e.kind);
        }
        map.finish()
    }
}
