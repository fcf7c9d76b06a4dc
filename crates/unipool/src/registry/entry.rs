//! `Entry`: one built pool of a registry, whatever its kind, and how each kind
//! is built from its `PoolSpec`.

use std::sync::Arc;
use std::time::Duration;

use pool_core::{HealthStatus, Pool, Stats};

use super::error::RegistryError;
use super::kind::Kind;
use super::spec::PoolSpec;
use super::timings::{PoolTimings, Recorder};

/// A built pool.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) handle: Handle,
    /// The pool's time distributions, when an exporter is built in (every
    /// kind but HTTP, whose connections are reqwest's).
    pub(crate) timings: Option<Arc<PoolTimings>>,
    /// Where the pool connects, its password redacted (for reports).
    pub(crate) target: String,
    /// Its share of the fleet budget (PostgreSQL and Redis pools).
    pub(crate) budget: Option<super::budget::Slot>,
}

/// The pool itself, by kind. One per pool, built once: the size of the
/// largest variant does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Handle {
    #[cfg(feature = "postgres")]
    Postgres(pool_sql::PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(pool_sql::SqlitePool),
    #[cfg(feature = "redis")]
    Redis(Arc<super::lazy_redis::LazyRedis>),
    /// `redis+cluster://`.
    #[cfg(feature = "redis")]
    RedisCluster(Arc<super::lazy_redis::LazyRedis<pool_redis::ClusterPool>>),
    #[cfg(feature = "http")]
    Http(pool_http::HttpPool),
    #[cfg(feature = "ws")]
    Ws(pool_ws::WsEndpoint),
    #[cfg(feature = "zmq")]
    Zmq(pool_zmq::ZmqEndpoint),
    #[cfg(feature = "mongo")]
    Mongo(pool_mongo::MongoPool),
    /// Keeps the enum inhabited-by-type when no protocol feature is on.
    #[allow(dead_code)]
    None(std::convert::Infallible),
}

impl Entry {
    /// Builds the pool of `spec`. Nothing connects here: SQL pools open
    /// connections on demand (and `min_idle` in the background), Redis on first
    /// use or `prewarm`, HTTP on the first request.
    ///
    /// # Errors
    /// [`RegistryError::Config`] for a protocol key's bad value,
    /// [`RegistryError::Pool`] when the protocol crate refuses the URL.
    pub(crate) fn build(spec: &PoolSpec) -> Result<Entry, RegistryError> {
        let engine = spec.engine()?;
        // HTTP pools are reqwest's, not the engine's: no events.
        let timings = (cfg!(any(feature = "prometheus", feature = "otel"))
            && spec.kind != Kind::Http)
            .then(|| Arc::new(PoolTimings::default()));
        let observer = timings
            .clone()
            .map(|t| Arc::new(Recorder(t)) as Arc<dyn pool_core::Observer>);
        let handle = match spec.kind {
            #[cfg(feature = "postgres")]
            Kind::Postgres => Handle::Postgres(build_postgres(spec, engine, observer)?),
            #[cfg(feature = "sqlite")]
            Kind::Sqlite => Handle::Sqlite(build_sqlite(spec, engine, observer)?),
            #[cfg(feature = "redis")]
            Kind::Redis => {
                let config = pool_redis::RedisConfig {
                    observer: observer.map(pool_core::SharedObserver),
                    ..redis_config(spec, engine)?
                };
                if is_cluster(&spec.url) {
                    pool_redis::ClusterPool::check_url(&spec.url)
                        .map_err(|e| pool_error(spec, e))?;
                    Handle::RedisCluster(Arc::new(super::lazy_redis::LazyRedis::new(spec, config)))
                } else {
                    Handle::Redis(Arc::new(super::lazy_redis::LazyRedis::new(spec, config)))
                }
            }
            #[cfg(feature = "http")]
            Kind::Http => Handle::Http(build_http(spec)?),
            #[cfg(feature = "ws")]
            Kind::Ws => Handle::Ws(build_ws(spec, observer)?),
            #[cfg(feature = "zmq")]
            Kind::Zmq => Handle::Zmq(build_zmq(spec, observer)?),
            #[cfg(feature = "mongo")]
            Kind::Mongo => Handle::Mongo(build_mongo(spec, observer)?),
            // Reached only when a protocol feature is off.
            #[allow(unreachable_patterns)]
            kind => {
                // `specs()` refuses kinds this build cannot make.
                return Err(RegistryError::Unsupported {
                    name: spec.name.clone(),
                    origin: super::error::Origin::Default { key: "kind".into() },
                    kind,
                    hint: kind.unsupported().unwrap_or("not supported"),
                });
            }
        };
        Ok(Entry {
            name: spec.name.clone(),
            kind: spec.kind,
            handle,
            timings,
            target: super::error::redact_any_url(&spec.url),
            budget: budget_slot(spec)?,
        })
    }

    /// The pool as the `Pool` trait sees it; `None` for a Redis pool not
    /// connected yet.
    pub(crate) fn pool(&self) -> Option<Arc<dyn Pool>> {
        match &self.handle {
            #[cfg(feature = "postgres")]
            Handle::Postgres(p) => Some(Arc::new(p.clone())),
            #[cfg(feature = "sqlite")]
            Handle::Sqlite(p) => Some(Arc::new(p.clone())),
            #[cfg(feature = "redis")]
            Handle::Redis(r) => r.connected().map(|p| Arc::new(p) as Arc<dyn Pool>),
            #[cfg(feature = "redis")]
            Handle::RedisCluster(r) => r.connected().map(|p| Arc::new(p) as Arc<dyn Pool>),
            #[cfg(feature = "http")]
            Handle::Http(p) => Some(Arc::new(p.clone())),
            #[cfg(feature = "ws")]
            Handle::Ws(e) => Some(Arc::new(e.pool().clone())),
            #[cfg(feature = "zmq")]
            Handle::Zmq(e) => Some(Arc::new(e.pool().clone())),
            #[cfg(feature = "mongo")]
            Handle::Mongo(p) => Some(Arc::new(p.clone())),
            Handle::None(never) => match *never {},
        }
    }

    /// Health when there is no pool to ask (Redis not connected yet).
    pub(crate) fn unbuilt_health(&self) -> HealthStatus {
        match &self.handle {
            #[cfg(feature = "redis")]
            Handle::Redis(r) => r.health(),
            #[cfg(feature = "redis")]
            Handle::RedisCluster(r) => r.health(),
            _ => HealthStatus::Unhealthy {
                reason: "not built".into(),
            },
        }
    }

    /// The last error when there is no pool to ask.
    pub(crate) fn unbuilt_error(&self) -> Option<String> {
        match &self.handle {
            #[cfg(feature = "redis")]
            Handle::Redis(r) => r.last_error(),
            #[cfg(feature = "redis")]
            Handle::RedisCluster(r) => r.last_error(),
            _ => None,
        }
    }

    /// Opens `min_idle` connections, at least one (Redis: connects first). HTTP opens nothing:
    /// reqwest connects on a request, and a request may have effects.
    ///
    /// # Errors
    /// The first failure, as text naming the cause.
    pub(crate) async fn prewarm(&self) -> Result<usize, String> {
        match &self.handle {
            #[cfg(feature = "postgres")]
            Handle::Postgres(p) => warm_up(p).await,
            #[cfg(feature = "sqlite")]
            Handle::Sqlite(p) => warm_up(p).await,
            #[cfg(feature = "redis")]
            Handle::Redis(r) => {
                let pool = r.get(&self.name).await.map_err(|e| e.to_string())?;
                warm_up(pool.exclusive()).await
            }
            // Connecting opens the shared lane to every node and reads the
            // slot map; leases open per node on demand.
            #[cfg(feature = "redis")]
            Handle::RedisCluster(r) => {
                let pool = r.get(&self.name).await.map_err(|e| e.to_string())?;
                Ok(pool.shared_stats().connections)
            }
            #[cfg(feature = "http")]
            Handle::Http(_) => Ok(0),
            #[cfg(feature = "ws")]
            Handle::Ws(e) => warm_up_ws(e).await,
            // Making a socket does not reach its peer (libzmq connects in the
            // background): one is made, so that a bad endpoint shows.
            #[cfg(feature = "zmq")]
            Handle::Zmq(e) => e.get().await.map(|_| 1).map_err(|e| e.to_string()),
            #[cfg(feature = "mongo")]
            Handle::Mongo(p) => p.prewarm().await.map_err(|e| e.to_string()),
            Handle::None(never) => match *never {},
        }
    }

    /// Closes the pool; `true` once every connection is closed, `false` if
    /// `timeout` passed first.
    pub(crate) async fn close(&self, timeout: Duration) -> bool {
        #[cfg(feature = "redis")]
        match &self.handle {
            Handle::Redis(r) => return r.close(timeout).await,
            Handle::RedisCluster(r) => return r.close(timeout).await,
            _ => {}
        }
        match self.pool() {
            Some(p) => p.close(timeout).await,
            None => true,
        }
    }

    /// The pool's stats (empty ones for a pool not connected yet), after
    /// handing its observer what idle connections logged last
    /// (`Pool::flush_events`), so that the timings an exporter reads next to
    /// them are as current.
    pub(crate) fn stats(&self) -> Stats {
        self.pool()
            .map(|p| {
                p.flush_events();
                p.stats()
            })
            .unwrap_or_default()
    }
}

/// Where a PostgreSQL or Redis pool connects and how many connections one
/// replica's pool may hold there (Redis: both lanes).
fn budget_slot(spec: &PoolSpec) -> Result<Option<super::budget::Slot>, RegistryError> {
    use super::spec::parse;
    let engine = spec.engine()?;
    #[cfg(feature = "redis")]
    if is_cluster(&spec.url) {
        // Per primary, once connected (`Entry::budget_slots`): the shared
        // lane holds a connection to each, and leases go to each.
        return Ok(Some(super::budget::Slot {
            server: String::new(),
            connections: redis_config(spec, engine.clone())?.shared_connections + engine.max_size,
            limit: spec.parsed("server_limit", parse::positive)?,
        }));
    }
    let (port, connections) = match spec.kind {
        Kind::Postgres => (5432, engine.max_size),
        #[cfg(feature = "redis")]
        Kind::Redis => (
            6379,
            redis_config(spec, engine.clone())?.shared_connections + engine.max_size,
        ),
        _ => return Ok(None),
    };
    let Some(server) = super::budget::server_of(&spec.url, port) else {
        return Ok(None);
    };
    Ok(Some(super::budget::Slot {
        server,
        connections,
        limit: spec.parsed("server_limit", parse::positive)?,
    }))
}

/// The limit in a `CONFIG GET maxclients` reply (`["maxclients", "10000"]`).
#[cfg(feature = "redis")]
fn maxclients(reply: &[String]) -> Result<super::budget::Allowed, String> {
    let max = reply
        .get(1)
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| format!("CONFIG GET maxclients gave {reply:?}"))?;
    Ok(super::budget::Allowed {
        connections: max,
        source: format!("maxclients {max}"),
    })
}

/// Whether `url` names a Redis Cluster (`redis+cluster://`).
pub(crate) fn is_cluster(url: &str) -> bool {
    url.get(..16)
        .is_some_and(|s| s.eq_ignore_ascii_case("redis+cluster://"))
}

impl Entry {
    /// The servers this pool counts against: its own; for a Redis Cluster,
    /// every primary it knows of once connected (none before).
    pub(crate) fn budget_slots(&self) -> Vec<super::budget::Slot> {
        let Some(slot) = &self.budget else {
            return Vec::new();
        };
        #[cfg(feature = "redis")]
        if let Handle::RedisCluster(r) = &self.handle {
            return r
                .connected()
                .map(|pool| {
                    pool.primaries()
                        .into_iter()
                        .map(|server| super::budget::Slot {
                            server,
                            ..slot.clone()
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        vec![slot.clone()]
    }
}

/// What `server` allows, read through `entry`'s pool (one that targets it).
pub(crate) async fn read_limit(
    entry: &Entry,
    server: &str,
) -> Result<super::budget::Allowed, String> {
    #[cfg(not(feature = "redis"))]
    let _ = server;
    match &entry.handle {
        #[cfg(feature = "postgres")]
        Handle::Postgres(p) => {
            use pool_sql::PgPoolExt;
            if p.manager().is_pgbouncer() {
                // SHOW would answer for the PostgreSQL behind it; the limit that
                // counts here is PgBouncer's own, which only its admin console has.
                return Err(
                    "behind PgBouncer, its max_client_conn is the limit: set `server_limit`".into(),
                );
            }
            let show = |name: &'static str| async move {
                let rows = p
                    .query(&format!("SHOW {name}"), &[])
                    .await
                    .map_err(|e| format!("SHOW {name}: {e}"))?;
                let text: String = rows
                    .first()
                    .ok_or_else(|| format!("SHOW {name} returned no row"))?
                    .get(0);
                text.parse::<usize>()
                    .map_err(|_| format!("SHOW {name} gave {text:?}"))
            };
            let max = show("max_connections").await?;
            let reserved = show("superuser_reserved_connections").await?;
            Ok(super::budget::Allowed {
                connections: max.saturating_sub(reserved),
                source: format!(
                    "max_connections {max} − superuser_reserved_connections {reserved}"
                ),
            })
        }
        #[cfg(feature = "redis")]
        Handle::Redis(r) => {
            let pool = r.get(&entry.name).await.map_err(|e| e.to_string())?;
            let reply: Vec<String> = pool
                .cmd(
                    pool_redis::redis::cmd("CONFIG")
                        .arg("GET")
                        .arg("maxclients"),
                )
                .await
                .map_err(|e| format!("CONFIG GET maxclients: {e}"))?;
            maxclients(&reply)
        }
        #[cfg(feature = "redis")]
        Handle::RedisCluster(r) => {
            use pool_redis::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
            let pool = r.get(&entry.name).await.map_err(|e| e.to_string())?;
            let (host, port) = server
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| format!("{server:?} is not host:port"))?;
            let reply = pool
                .shared()
                .route(
                    pool_redis::redis::cmd("CONFIG")
                        .arg("GET")
                        .arg("maxclients")
                        .clone(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }),
                )
                .await
                .map_err(|e| format!("CONFIG GET maxclients: {e}"))?;
            let reply: Vec<String> = pool_redis::redis::FromRedisValue::from_redis_value(reply)
                .map_err(|e| format!("CONFIG GET maxclients: {e}"))?;
            maxclients(&reply)
        }
        _ => Err("no limit to read for this kind".into()),
    }
}

/// Checks out `min_idle` connections (at least one) at once, then returns
/// them: they stay idle.
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
async fn warm_up<M: pool_core::Manager>(
    pool: &pool_core::ConnectionPool<M>,
) -> Result<usize, String> {
    let pool = pool.clone();
    hold_at_once(pool.config().min_idle.max(1), move || {
        let pool = pool.clone();
        async move { pool.get_owned().await.map_err(|e| e.to_string()) }
    })
    .await
}

/// Runs `n` checkouts at once and holds what they give until all are done
/// (so that `n` connections are open), then lets them go back: how many were
/// had, or the first failure.
async fn hold_at_once<T, F>(n: usize, get: impl Fn() -> F) -> Result<usize, String>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(get());
    }
    let mut held = Vec::with_capacity(n);
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(conn) => held.push(conn),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(held.len()),
    }
}

/// `builder` with `observer` installed, if any.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn observed<M: pool_core::Manager>(
    builder: pool_core::Builder<M>,
    observer: Option<Arc<dyn pool_core::Observer>>,
) -> pool_core::Builder<M> {
    match observer {
        Some(o) => builder.observer(o),
        None => builder,
    }
}

#[cfg(feature = "postgres")]
fn build_postgres(
    spec: &PoolSpec,
    engine: pool_core::PoolConfig,
    observer: Option<Arc<dyn pool_core::Observer>>,
) -> Result<pool_sql::PgPool, RegistryError> {
    use pool_sql::RecyclePolicy;
    let recycle = spec.parsed("recycle", |t| match t.to_ascii_lowercase().as_str() {
        "fast" => Ok(RecyclePolicy::Fast),
        "verified" => Ok(RecyclePolicy::Verified),
        "clean" => Ok(RecyclePolicy::Clean),
        _ => Err("expected `fast`, `verified` or `clean`".to_string()),
    })?;
    let mut manager = pool_sql::PgManager::from_url(&spec.url)
        .map_err(|e| pool_error(spec, e))?
        .recycle_policy(recycle.unwrap_or_default());
    if let Some(on) = spec.parsed("pgbouncer", super::spec::parse::boolean)? {
        manager = manager.pgbouncer(on);
    }
    if manager.is_pgbouncer() && recycle == Some(RecyclePolicy::Clean) {
        return Err(pool_error(
            spec,
            pool_sql::SqlError::Config(
                "`recycle = clean` sends DISCARD ALL, which PgBouncer in transaction mode \
                 (`pgbouncer = true`) runs on another client's server connection: use \
                 `verified`"
                    .into(),
            ),
        ));
    }
    observed(pool_core::Builder::from_config(engine), observer)
        .name(spec.name.clone())
        .build(manager)
        .map_err(|e| pool_error(spec, e))
}

#[cfg(feature = "sqlite")]
fn build_sqlite(
    spec: &PoolSpec,
    engine: pool_core::PoolConfig,
    observer: Option<Arc<dyn pool_core::Observer>>,
) -> Result<pool_sql::SqlitePool, RegistryError> {
    use super::spec::parse;
    let mut manager =
        pool_sql::SqliteManager::from_url(&spec.url).map_err(|e| pool_error(spec, e))?;
    if let Some(t) = spec.parsed("busy_timeout", parse::duration)? {
        manager = manager.busy_timeout(t);
    }
    if let Some(wal) = spec.parsed("wal", parse::boolean)? {
        manager = manager.wal(wal);
    }
    observed(pool_core::Builder::from_config(engine), observer)
        .name(spec.name.clone())
        .build(manager)
        .map_err(|e| pool_error(spec, e))
}

#[cfg(feature = "redis")]
fn redis_config(
    spec: &PoolSpec,
    engine: pool_core::PoolConfig,
) -> Result<pool_redis::RedisConfig, RegistryError> {
    use super::spec::parse;
    let mut config = pool_redis::RedisConfig {
        pool: engine,
        ..Default::default()
    };
    if let Some(n) = spec.parsed("shared_connections", parse::positive)? {
        config.shared_connections = n;
    }
    if let Some(t) = spec.parsed("command_timeout", parse::positive_duration)? {
        config.command_timeout = t;
    }
    Ok(config)
}

/// An `HttpConfig` from the settings of `spec`: the engine knobs HTTP maps
/// (`keys::HTTP_KNOBS`) only where set, since the engine's defaults are not
/// HTTP's (10 connections would be a small in-flight limit).
#[cfg(feature = "http")]
pub(crate) fn http_config(
    spec: &PoolSpec,
    mut config: pool_http::HttpConfig,
) -> Result<pool_http::HttpConfig, RegistryError> {
    use super::spec::parse;
    let engine = spec.engine()?;
    for s in &spec.settings {
        match s.key {
            "max_size" => config.max_in_flight = engine.max_size,
            "acquire_timeout" => config.acquire_timeout = engine.acquire_timeout,
            "connect_timeout" => config.connect_timeout = engine.connect_timeout,
            "idle_timeout" => {
                config.pool_idle_timeout = engine.idle_timeout.ok_or_else(|| {
                    s.error("an http pool needs an idle timeout (`off` is not possible here)")
                })?
            }
            _ => {}
        }
    }
    if let Some(t) = spec.parsed("request_timeout", parse::positive_duration)? {
        config.request_timeout = t;
    }
    if let Some(n) = spec.parsed("max_in_flight_per_host", parse::positive)? {
        config.max_in_flight_per_host = n;
    }
    if let Some(n) = spec.parsed("max_idle_per_host", parse::count)? {
        config.max_idle_per_host = n;
    }
    if let Some(s) = spec.last("headers") {
        config.default_headers = s.pairs()?;
    }
    if let Some(s) = spec.last("bearer_token") {
        config.auth = Some(pool_http::Auth::Bearer(s.text()?.to_string()));
    }
    if let Some(s) = spec.last("user_agent") {
        config.user_agent = s.text()?.to_string();
    }
    if let Some(b) = spec.parsed("http2_prior_knowledge", parse::boolean)? {
        config.http2_prior_knowledge = b;
    }
    if let Some(n) = spec.parsed("retry_attempts", parse::positive)? {
        config.retry.max_attempts = u32::try_from(n).unwrap_or(u32::MAX);
    }
    Ok(config)
}

#[cfg(feature = "http")]
fn build_http(spec: &PoolSpec) -> Result<pool_http::HttpPool, RegistryError> {
    let base = pool_http::HttpConfig::with_base_url(&spec.url).map_err(|e| pool_error(spec, e))?;
    let config = http_config(spec, base)?;
    pool_http::HttpPool::new(&spec.name, config).map_err(|e| pool_error(spec, e))
}

/// Opens `min_idle` WebSockets (at least one) to the endpoint's URL at once.
#[cfg(feature = "ws")]
async fn warm_up_ws(endpoint: &pool_ws::WsEndpoint) -> Result<usize, String> {
    let endpoint = endpoint.clone();
    hold_at_once(endpoint.pool().config().pool.min_idle.max(1), move || {
        let endpoint = endpoint.clone();
        async move { endpoint.get().await.map_err(|e| e.to_string()) }
    })
    .await
}

#[cfg(feature = "ws")]
fn build_ws(
    spec: &PoolSpec,
    observer: Option<Arc<dyn pool_core::Observer>>,
) -> Result<pool_ws::WsEndpoint, RegistryError> {
    use super::spec::parse;
    let mut config = pool_ws::WsConfig {
        observer: observer.map(pool_core::SharedObserver),
        ..Default::default()
    };
    config.pool = spec.engine_from(config.pool.clone())?;
    if let Some(n) = spec.parsed("max_total", parse::positive)? {
        config.max_total = n;
    }
    if let Some(s) = spec.last("headers") {
        config.headers = s.pairs()?;
    }
    if let Some(s) = spec.last("bearer_token") {
        config
            .headers
            .push(("Authorization".into(), format!("Bearer {}", s.text()?)));
    }
    if let Some(s) = spec.last("subprotocols") {
        config.subprotocols = s
            .text()?
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
    }
    if let Some(t) = spec.parsed("ping_timeout", parse::positive_duration)? {
        config.ping_timeout = t;
    }
    if let Some(t) = spec.parsed("close_timeout", parse::duration)? {
        config.close_timeout = t;
    }
    if let Some(t) = spec.parsed("request_timeout", parse::positive_duration)? {
        config.request_timeout = t;
    }
    if let Some(n) = spec.parsed("read_buffer_size", parse::count)? {
        config.read_buffer_size = n;
    }
    if let Some(n) = spec.parsed("max_message_size", parse::count)? {
        config.max_message_size = Some(n);
    }
    if let Some(n) = spec.parsed("max_frame_size", parse::count)? {
        config.max_frame_size = Some(n);
    }
    let pool = pool_ws::WsPool::named(&spec.name, config).map_err(|e| match e {
        pool_ws::WsError::Config(c) => spec.config_error(c),
        other => pool_error(spec, other),
    })?;
    pool.endpoint(&spec.url).map_err(|e| pool_error(spec, e))
}

#[cfg(feature = "zmq")]
fn build_zmq(
    spec: &PoolSpec,
    observer: Option<Arc<dyn pool_core::Observer>>,
) -> Result<pool_zmq::ZmqEndpoint, RegistryError> {
    use super::spec::parse;
    use pool_zmq::{SocketConfig, SocketKind};
    let mut config = pool_zmq::ZmqConfig {
        observer: observer.map(pool_core::SharedObserver),
        ..Default::default()
    };
    config.pool = spec.engine_from(config.pool.clone())?;
    let kind = spec
        .parsed("socket", |t| {
            SocketKind::parse(t).ok_or_else(|| {
                "expected `req`, `rep`, `dealer`, `router`, `pub`, `sub`, `push` or `pull`"
                    .to_string()
            })
        })?
        .ok_or_else(|| RegistryError::Config {
            origin: super::error::Origin::Default { key: "socket".into() },
            reason: format!(
                "pool `{}` is a zmq pool and needs `socket` (req, rep, dealer, router, pub, sub, push, pull)",
                spec.name
            ),
        })?;
    let mut socket = if spec.parsed("bind", parse::boolean)?.unwrap_or(false) {
        SocketConfig::bind(kind, spec.url.clone())
    } else {
        SocketConfig::connect(kind, spec.url.clone())
    };
    if let Some(s) = spec.last("subscribe") {
        for prefix in s
            .text()?
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            socket = socket.subscribe(prefix);
        }
    }
    let o = &mut socket.options;
    if let Some(d) = spec.parsed("linger", parse::duration)? {
        o.linger = d;
    }
    let hwm = |t: &str| t.parse::<i32>().map_err(|_| "not an integer".to_string());
    o.send_hwm = spec.parsed("send_hwm", hwm)?;
    o.recv_hwm = spec.parsed("recv_hwm", hwm)?;
    o.reconnect_interval = spec.parsed("reconnect_interval", parse::duration)?;
    o.heartbeat_interval = spec
        .parsed("heartbeat_interval", |t| {
            pool_core::util::parse_opt_duration("", t)
                .map_err(|_| "not a duration or `off`".to_string())
        })?
        .flatten();
    if let Some(n) = spec.parsed("max_total", parse::positive)? {
        config.max_total = n;
    }
    o.send_timeout = spec.parsed("send_timeout", parse::positive_duration)?;
    o.recv_timeout = spec.parsed("recv_timeout", parse::positive_duration)?;
    if let Some(t) = spec.parsed("request_timeout", parse::positive_duration)? {
        config.request_timeout = t;
    }
    let pool = pool_zmq::ZmqPool::named(&spec.name, config).map_err(|e| match e {
        pool_zmq::ZmqError::Config(c) => spec.config_error(c),
        other => pool_error(spec, other),
    })?;
    Ok(pool.endpoint(socket))
}

#[cfg(feature = "mongo")]
fn build_mongo(
    spec: &PoolSpec,
    observer: Option<Arc<dyn pool_core::Observer>>,
) -> Result<pool_mongo::MongoPool, RegistryError> {
    use super::spec::parse;
    let mut config = pool_mongo::MongoConfig {
        observer: observer.map(pool_core::SharedObserver),
        ..Default::default()
    };
    config.pool = spec.engine_from(config.pool.clone())?;
    if let Some(t) = spec.parsed("ping_timeout", parse::positive_duration)? {
        config.ping_timeout = t;
    }
    config.heartbeat_interval = spec.parsed("heartbeat_interval", parse::positive_duration)?;
    config.max_connecting = spec
        .parsed("max_connecting", parse::positive)?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    if let Some(s) = spec.last("app_name") {
        config.app_name = Some(s.text()?.to_string());
    }
    pool_mongo::MongoPool::named(&spec.name, &spec.url, config).map_err(|e| match e {
        pool_mongo::MongoError::Config(c) => spec.config_error(c),
        other => pool_error(spec, other),
    })
}

fn pool_error(spec: &PoolSpec, e: impl std::error::Error + Send + Sync + 'static) -> RegistryError {
    RegistryError::Pool {
        name: spec.name.clone(),
        kind: spec.kind,
        source: Box::new(e),
    }
}
