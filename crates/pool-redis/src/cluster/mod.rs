//! `ClusterPool`: a Redis Cluster behind one handle. The shared lane is
//! redis-rs's multiplexed cluster connection (MOVED/ASK redirections and
//! topology refresh are its job); leases are dedicated connections to the
//! primary that owns a key's slot, from one engine pool per node.

mod seeds;
mod slots;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use pool_core::util::{lock, read, write, HEALTH_WINDOW};
use pool_core::{BoxFuture, ConnectionPool, Health, HealthStatus, Pool, PoolError, Stats};
use redis::aio::ConnectionLike;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Value};

use crate::config::RedisConfig;
use crate::error::RedisPoolError;
use crate::lease::Lease;
use crate::manager::RedisManager;
use crate::shared::{Counters, InFlight, SharedStats};
use seeds::ClusterUrl;
use slots::SlotMap;

/// A Redis Cluster pool, from `redis+cluster://host:port,host:port`. Cloning
/// is cheap.
///
/// - [`cmd`](Self::cmd) / [`pipe`](Self::pipe) / [`shared`](Self::shared): the
///   shared lane, `shared_connections` multiplexed cluster connections
///   (each holds one connection per node), round-robin. Keys may live on any
///   node; a pipeline's keys must share a slot (use `{hash tags}`).
/// - [`lease(key)`](Self::lease): a dedicated connection to the primary owning
///   `key`'s slot, for `WATCH`/`MULTI`/`EXEC` and blocking commands on that
///   slot; reset before reuse as [`RedisPool::lease`](crate::RedisPool::lease)'s.
///
/// Every shared-lane call returns within `command_timeout`, also while a
/// failover is under way (redis-rs retries redirections and reconnects inside
/// that bound).
#[derive(Clone)]
pub struct ClusterPool {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    url: ClusterUrl,
    config: RedisConfig,
    lane: Vec<ClusterConnection>,
    next: AtomicUsize,
    counters: Arc<Counters>,
    slots: RwLock<SlotMap>,
    /// One exclusive-lane engine per primary, made on its first lease.
    nodes: Mutex<BTreeMap<String, ConnectionPool<RedisManager>>>,
    /// The shared lane's last failure, unless a call succeeded since.
    last_error: Mutex<Option<(Instant, String)>>,
    /// `last_error` holds a failure: a success then clears it.
    failing: AtomicBool,
}

impl ClusterPool {
    /// Opens the shared lane through the seed nodes and reads the slot map,
    /// so that an unreachable cluster or a wrong password fails here.
    ///
    /// `config`: `shared_connections` (default one per core),
    /// `command_timeout` (default 10 s, every shared-lane call and each lease
    /// command), `pool` (each node's exclusive lane: `max_size` per node,
    /// `acquire_timeout`, `connect_timeout` — also the shared lane's connect
    /// bound), `password_provider` (read when the lane and each node
    /// connection is opened). `root_certificate_pem` does not apply:
    /// `rediss+cluster://` is refused.
    ///
    /// # Errors
    /// [`RedisPoolError::Config`] for a bad URL (naming what is wrong, without
    /// the password) or knob; [`RedisPoolError::Redis`] when no seed node
    /// answers, or with the server's refusal.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Self, RedisPoolError> {
        Self::connect_named("redis-cluster", url, config).await
    }

    /// Checks a `redis+cluster://` URL without connecting (what
    /// [`connect`](Self::connect) would refuse before any I/O).
    ///
    /// # Errors
    /// [`RedisPoolError::Config`] naming what is wrong, without the password.
    pub fn check_url(url: &str) -> Result<(), RedisPoolError> {
        ClusterUrl::parse(url).map(drop)
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
        let url = ClusterUrl::parse(url)?;
        if config.shared_connections == 0 {
            return Err(RedisPoolError::Config(
                "shared_connections must be at least 1".into(),
            ));
        }
        config.pool.validate()?;
        let mut builder = ClusterClientBuilder::new(
            url.seeds
                .iter()
                .map(|(h, p)| url.node_url(h, *p))
                .collect::<Vec<_>>(),
        )
        .connection_timeout(config.pool.connect_timeout)
        .response_timeout(config.command_timeout)
        .retries(16)
        .min_retry_wait(10)
        .max_retry_wait(500);
        if let Some(source) = &config.password_provider {
            builder = builder.password((source.0)());
        }
        let client = builder.build()?;
        let mut lane = Vec::with_capacity(config.shared_connections);
        for _ in 0..config.shared_connections {
            let conn =
                tokio::time::timeout(config.pool.connect_timeout, client.get_async_connection())
                    .await
                    .map_err(|_| {
                        timed_out("connecting to the cluster", config.pool.connect_timeout)
                    })??;
            lane.push(conn);
        }
        let pool = ClusterPool {
            inner: Arc::new(Inner {
                name: name.to_string(),
                url,
                config,
                lane,
                next: AtomicUsize::new(0),
                counters: Arc::new(Counters::default()),
                slots: RwLock::new(SlotMap::default()),
                nodes: Mutex::new(BTreeMap::new()),
                last_error: Mutex::new(None),
                failing: AtomicBool::new(false),
            }),
        };
        pool.refresh_slots().await?;
        Ok(pool)
    }

    /// A clone of the next shared cluster connection (round-robin), bounded by
    /// `command_timeout` per call.
    pub fn shared(&self) -> SharedClusterConnection {
        let i = self.inner.next.fetch_add(1, Relaxed) % self.inner.lane.len();
        SharedClusterConnection {
            conn: self.inner.lane[i].clone(),
            pool: self.inner.clone(),
        }
    }

    /// Runs one command on the shared lane, on whichever node owns its key.
    ///
    /// # Errors
    /// redis's error (a timeout after `command_timeout`).
    pub async fn cmd<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisPoolError> {
        Ok(cmd.query_async(&mut self.shared()).await?)
    }

    /// Runs a pipeline on the shared lane; its keys must share a slot.
    ///
    /// # Errors
    /// redis's error (`CROSSSLOT` when the keys do not share a slot).
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, RedisPoolError> {
        Ok(pipe.query_async(&mut self.shared()).await?)
    }

    /// Leases a dedicated connection to the primary that owns `key`'s slot.
    /// When that node cannot be reached (a failover), the slot map is read
    /// again and the new owner tried once.
    ///
    /// # Errors
    /// [`RedisPoolError::Pool`]: the node's lane timed out or could not
    /// connect (the error names the node); [`RedisPoolError::Redis`] when the
    /// slot map cannot be read.
    pub async fn lease(&self, key: impl AsRef<[u8]>) -> Result<Lease, RedisPoolError> {
        let slot = slots::key_slot(key.as_ref());
        let mut refreshed = false;
        loop {
            let owner = read(&self.inner.slots)
                .primary(slot)
                .map(|(h, p)| (h.to_string(), p));
            let Some((host, port)) = owner else {
                if refreshed {
                    return Err(RedisPoolError::Config(format!(
                        "no primary serves slot {slot} (is the cluster complete?)"
                    )));
                }
                self.refresh_slots().await?;
                refreshed = true;
                continue;
            };
            let node = self.node_pool(&host, port)?;
            match node.get_owned().await {
                Ok(conn) => return Ok(Lease { conn }),
                Err(PoolError::Backend(e)) if !refreshed => {
                    tracing::debug!(node = %format!("{host}:{port}"), error = %e, "lease: node unreachable, reading the slot map again");
                    self.refresh_slots().await?;
                    refreshed = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A dedicated pub/sub connection to the primary that owns `channel`'s
    /// slot: classic `SUBSCRIBE` works on any node of a cluster (messages are
    /// broadcast), sharded `SSUBSCRIBE` only on the channel's owner, so this
    /// serves both. Not pooled (subscriptions change the connection's
    /// protocol state); closed when dropped.
    ///
    /// # Errors
    /// redis's error; [`RedisPoolError::Config`] when no primary serves the
    /// channel's slot.
    pub async fn pubsub(
        &self,
        channel: impl AsRef<[u8]>,
    ) -> Result<redis::aio::PubSub, RedisPoolError> {
        let slot = slots::key_slot(channel.as_ref());
        let owner = || {
            read(&self.inner.slots)
                .primary(slot)
                .map(|(h, p)| (h.to_string(), p))
        };
        let (host, port) = match owner() {
            Some(o) => o,
            None => {
                self.refresh_slots().await?;
                owner().ok_or_else(|| {
                    RedisPoolError::Config(format!(
                        "no primary serves slot {slot} (is the cluster complete?)"
                    ))
                })?
            }
        };
        let node = self.node_pool(&host, port)?;
        Ok(node.manager().client()?.get_async_pubsub().await?)
    }

    /// Reads the slot map again (`CLUSTER SLOTS` through the shared lane).
    /// [`lease`](Self::lease) does it when a node cannot be reached; call it
    /// after a resharding, when a lease answered `MOVED`.
    ///
    /// # Errors
    /// redis's error, or a reply that is not a slot map.
    pub async fn refresh_slots(&self) -> Result<(), RedisPoolError> {
        let reply: Value = self
            .shared()
            .route(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let map = SlotMap::from_reply(&reply).map_err(RedisPoolError::Config)?;
        *write(&self.inner.slots) = map;
        Ok(())
    }

    /// The exclusive-lane engine of one node, made on first use.
    fn node_pool(
        &self,
        host: &str,
        port: u16,
    ) -> Result<ConnectionPool<RedisManager>, RedisPoolError> {
        let key = format!("{host}:{port}");
        let mut nodes = lock(&self.inner.nodes);
        if let Some(p) = nodes.get(&key) {
            return Ok(p.clone());
        }
        let config = &self.inner.config;
        let mut manager = RedisManager::new(
            &self.inner.url.node_url(host, port),
            config.pool.connect_timeout,
            config.command_timeout,
            None,
        )?;
        if let Some(source) = &config.password_provider {
            manager = manager.password_source(source.clone());
        }
        let pool = pool_core::Builder::from_config(config.pool.clone())
            .observer_opt(config.observer.as_ref())
            .name(format!("{}.{key}", self.inner.name))
            .build(manager)?;
        nodes.insert(key, pool.clone());
        Ok(pool)
    }

    /// The primaries of the last slot map read, as `host:port`.
    pub fn primaries(&self) -> Vec<String> {
        read(&self.inner.slots)
            .primaries()
            .into_iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect()
    }

    /// Each node's exclusive lane (`host:port` → its engine's stats), for
    /// nodes leased from so far.
    pub fn node_stats(&self) -> Vec<(String, Stats)> {
        lock(&self.inner.nodes)
            .iter()
            .map(|(k, p)| (k.clone(), p.stats()))
            .collect()
    }

    /// The shared lane's counters.
    pub fn shared_stats(&self) -> SharedStats {
        SharedStats {
            connections: self.inner.lane.len(),
            in_flight: self.inner.counters.in_flight.load(Relaxed),
            requests: self.inner.counters.requests.load(Relaxed),
            errors: self.inner.counters.errors.load(Relaxed),
        }
    }

    /// The URL with its password redacted.
    pub fn url(&self) -> &str {
        &self.inner.url.display
    }

    fn nodes(&self) -> Vec<(String, ConnectionPool<RedisManager>)> {
        lock(&self.inner.nodes)
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }
}

fn timed_out(what: &str, after: Duration) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no answer within {after:?}"),
    ))
}

/// A clone of one of the shared lane's cluster connections. Every call
/// returns within the pool's `command_timeout`.
#[derive(Clone)]
pub struct SharedClusterConnection {
    conn: ClusterConnection,
    pool: Arc<Inner>,
}

impl SharedClusterConnection {
    /// Runs `cmd` on the node `routing` names (e.g. every primary).
    ///
    /// # Errors
    /// redis's error (a timeout after `command_timeout`).
    pub async fn route(&mut self, cmd: Cmd, routing: RoutingInfo) -> redis::RedisResult<Value> {
        let conn = &mut self.conn;
        self.pool
            .bounded(async move { conn.route_command(cmd, routing).await })
            .await
    }
}

impl Inner {
    /// Runs a shared-lane call under `command_timeout`, counting it (a call
    /// its caller drops stops counting as in flight, as on a single node).
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> redis::RedisResult<T> {
        let in_flight = InFlight::start(&self.counters);
        let limit = self.config.command_timeout;
        let r = match tokio::time::timeout(limit, call).await {
            Ok(r) => r,
            Err(_) => Err(timed_out("redis cluster command", limit)),
        };
        drop(in_flight);
        match &r {
            // The lock only when a failure is on record: not per command.
            Ok(_) => {
                if self.failing.load(Relaxed) && self.failing.swap(false, Relaxed) {
                    *lock(&self.last_error) = None;
                }
            }
            Err(e) => {
                self.counters.errors.fetch_add(1, Relaxed);
                *lock(&self.last_error) = Some((Instant::now(), e.to_string()));
                self.failing.store(true, Relaxed);
            }
        }
        r
    }
}

impl ConnectionLike for SharedClusterConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let conn = &mut self.conn;
        Box::pin(self.pool.bounded(conn.req_packed_command(cmd)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let conn = &mut self.conn;
        Box::pin(
            self.pool
                .bounded(conn.req_packed_commands(pipeline, offset, count)),
        )
    }

    fn get_db(&self) -> i64 {
        0
    }
}

impl fmt::Debug for SharedClusterConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedClusterConnection")
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ClusterPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterPool")
            .field("name", &self.inner.name)
            .field("url", &self.inner.url.display)
            .field("shared_connections", &self.inner.lane.len())
            .field("primaries", &self.primaries())
            .finish()
    }
}

impl Pool for ClusterPool {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &str {
        "redis"
    }

    /// Every node's exclusive lane added up, with the shared lane's
    /// connections in `size` and `max_size` and its in-flight calls in `in_use`.
    fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for (_, node) in self.node_stats() {
            s.merge(&node);
        }
        let shared = self.shared_stats();
        s.size += shared.connections;
        s.max_size += shared.connections;
        s.in_use += shared.in_flight;
        s
    }

    fn flush_events(&self) {
        for (_, node) in self.nodes() {
            node.flush_events();
        }
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let mut all = true;
            for (_, node) in self.nodes() {
                all &= node.close(timeout).await;
            }
            all
        })
    }

    fn last_error(&self) -> Option<String> {
        if let Some((_, e)) = &*lock(&self.inner.last_error) {
            return Some(format!("shared lane: {e}"));
        }
        self.nodes()
            .iter()
            .find_map(|(k, p)| Pool::last_error(p).map(|e| format!("{k}: {e}")))
    }
}

impl Health for ClusterPool {
    /// The worst of: the shared lane (Degraded while its last call, within
    /// the health window, failed) and each node's exclusive lane.
    fn health(&self) -> HealthStatus {
        let mut verdict = HealthStatus::Healthy;
        if let Some((at, e)) = &*lock(&self.inner.last_error) {
            if at.elapsed() < HEALTH_WINDOW {
                verdict = HealthStatus::Degraded {
                    reason: format!("shared lane: last call failed: {e}"),
                };
            }
        }
        for (key, node) in self.nodes() {
            let v = match node.health() {
                HealthStatus::Healthy => HealthStatus::Healthy,
                HealthStatus::Degraded { reason } => HealthStatus::Degraded {
                    reason: format!("{key}: {reason}"),
                },
                HealthStatus::Unhealthy { reason } => HealthStatus::Degraded {
                    // One node down is a cluster in failover, not one that
                    // stopped serving: the shared lane says whether it did.
                    reason: format!("{key}: {reason}"),
                },
            };
            verdict = verdict.worst(v);
        }
        verdict
    }

    /// `CLUSTER INFO` on a node: `cluster_state:ok` is healthy, `fail`
    /// (slots without a primary) unhealthy.
    fn probe(&self, timeout: Duration) -> BoxFuture<'_, HealthStatus> {
        Box::pin(async move {
            let info = tokio::time::timeout(
                timeout,
                self.shared().route(
                    redis::cmd("CLUSTER").arg("INFO").clone(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                ),
            )
            .await;
            match info {
                Err(_) => HealthStatus::Unhealthy {
                    reason: format!("CLUSTER INFO: no answer within {timeout:?}"),
                },
                Ok(Err(e)) => HealthStatus::Unhealthy {
                    reason: format!("CLUSTER INFO: {e}"),
                },
                Ok(Ok(v)) => {
                    let text = String::from_redis_value(v).unwrap_or_default();
                    if text.contains("cluster_state:ok") {
                        self.health()
                    } else {
                        HealthStatus::Unhealthy {
                            reason: "cluster_state is not ok (slots without a primary)".into(),
                        }
                    }
                }
            }
        })
    }
}
