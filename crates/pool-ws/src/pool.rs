//! `WsPool`: leases of open WebSockets keyed by URL, under a per-URL and a
//! total limit, on pool-core's `KeyedPool`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pool_core::{BoxFuture, Health, HealthStatus, KeyedPool, Pool, PooledConnection, Stats};
use tokio_tungstenite::tungstenite::Message;

use crate::address::parse;
use crate::config::WsConfig;
use crate::error::WsError;
use crate::manager::{Shared, WsManager};
use crate::stats::{Counters, WsStats};

/// A leased WebSocket: derefs to [`WsConnection`](crate::WsConnection),
/// returned to the pool on drop (closed instead if it broke).
pub type WsLease = PooledConnection<'static, WsManager>;

/// A URL as a key: compared as written (parsed and checked once, when its
/// sub-pool is created, not on every lease), shown redacted (sub-pool names
/// and logs never carry a password).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct UrlKey(String);

/// Hashes and compares as its `String`, so the map can be searched by `&str`.
impl std::borrow::Borrow<str> for UrlKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&pool_core::util::redact_url(&self.0))
    }
}

/// WebSockets to any number of URLs: [`get`](Self::get) leases an open one
/// for a URL (opening one if none is idle and the limits allow), idle ones are
/// pinged every `keepalive_interval` and closed (with a Close frame) after
/// `idle_timeout` or `max_lifetime`. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), pool_ws::WsError> {
/// use pool_ws::{Message, WsConfig, WsPool};
///
/// let pool = WsPool::new(WsConfig::default())?;
/// let reply = pool.send_recv("ws://127.0.0.1:9001/echo", Message::text("hi")).await?;
/// let mut lease = pool.get("ws://127.0.0.1:9001/feed").await?;
/// lease.send(Message::text("subscribe")).await?;
/// let first = lease.recv().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WsPool {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    keyed: KeyedPool<UrlKey, WsManager>,
    shared: Arc<Shared>,
}

impl fmt::Debug for WsPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsPool")
            .field("name", &self.inner.name)
            .field("urls", &self.inner.keyed.keys())
            .finish_non_exhaustive()
    }
}

impl WsPool {
    /// A pool named `ws`. Call it inside a tokio runtime.
    ///
    /// # Errors
    /// [`WsError::Config`] naming the knob (a zero `max_total`, one below
    /// `max_size`, …); [`WsError::Tls`] for a root certificate that does not
    /// parse.
    pub fn new(config: WsConfig) -> Result<Self, WsError> {
        Self::named("ws", config)
    }

    /// Like [`new`](Self::new), with a name for stats and health.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn named(name: &str, config: WsConfig) -> Result<Self, WsError> {
        let tls = crate::tls::client_config(&config.root_certificates_pem).map_err(|reason| {
            WsError::Tls {
                url: name.to_string(),
                reason,
            }
        })?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            tls: Some(tls),
            counters: Arc::new(Counters::default()),
            closing: Arc::default(),
        });
        let for_keys = shared.clone();
        let keyed = KeyedPool::from_builder(
            name,
            pool_core::Builder::from_config(config.pool.clone())
                .observer_opt(config.observer.as_ref()),
            config.max_total,
            move |key: &UrlKey| WsManager::new(&key.0, for_keys.clone()),
        )?;
        Ok(WsPool {
            inner: Arc::new(Inner {
                name: name.to_string(),
                keyed,
                shared,
            }),
        })
    }

    /// Leases an open WebSocket to `url`: an idle one (what arrived on it
    /// while idle is dropped first, and one idle longer than `validate_after`
    /// is pinged), else a new one if the limits allow, else the first one
    /// returned — within `acquire_timeout`.
    ///
    /// # Errors
    /// [`WsError::InvalidUrl`] (not a URL, not `ws`/`wss`, no host) at once;
    /// the connect's own error at once (refused: [`WsError::Connect`]; an HTTP
    /// status: [`WsError::Handshake`] with it; TLS: [`WsError::Tls`]), after
    /// `connect_retries` for transient causes; [`WsError::Pool`] for a timeout
    /// or a closed pool.
    pub async fn get(&self, url: &str) -> Result<WsLease, WsError> {
        // Looked up by `&str`: a lease of a known URL allocates no key.
        let pool = match self.inner.keyed.existing(url) {
            Some(pool) => pool,
            None => {
                parse(url)?;
                self.inner.keyed.pool(&UrlKey(url.to_owned()))?
            }
        };
        Ok(pool.get_owned().await?)
    }

    /// Sends `msg` on a leased connection to `url` and returns the first text
    /// or binary message that comes back, within `request_timeout`. A
    /// connection whose reply did not come (timeout, or this future dropped)
    /// is closed, never reused: a late reply cannot reach the next holder.
    ///
    /// # Errors
    /// As [`get`](Self::get); [`WsError::Timeout`]; the connection's error.
    pub async fn send_recv(&self, url: &str, msg: impl Into<Message>) -> Result<Message, WsError> {
        let mut lease = self.get(url).await?;
        let mut exchange = Exchange(&mut lease, false);
        let timeout = self.inner.shared.config.request_timeout;
        // The reply is read next: no need to poll the read half first.
        exchange.0.send_now(msg.into()).await?;
        let reply = exchange.0.recv_within(timeout, "reply").await?;
        exchange.1 = true;
        Ok(reply)
    }

    /// Counters of the pool and of its WebSockets.
    pub fn stats(&self) -> WsStats {
        WsStats::new(
            Pool::stats(&self.inner.keyed),
            self.inner.keyed.keys().len(),
            &self.inner.shared.counters,
        )
    }

    /// The configuration.
    pub fn config(&self) -> &WsConfig {
        &self.inner.shared.config
    }

    /// Open connections over all URLs.
    pub fn total_size(&self) -> usize {
        self.inner.keyed.total_size()
    }

    /// Closes every connection (idle ones now, with a Close frame; leased ones
    /// when returned); `true` once all are closed, `false` if `timeout` passed.
    pub async fn close(&self, timeout: Duration) -> bool {
        Pool::close(&self.inner.keyed, timeout).await
    }
}

/// Discards the lease's connection unless the exchange completed.
struct Exchange<'a>(&'a mut WsLease, bool);

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.retire();
        }
    }
}

impl Pool for WsPool {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &str {
        "ws"
    }

    fn stats(&self) -> Stats {
        Pool::stats(&self.inner.keyed)
    }

    fn flush_events(&self) {
        self.inner.keyed.flush_events();
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Pool::close(&self.inner.keyed, timeout)
    }

    fn last_error(&self) -> Option<String> {
        Pool::last_error(&self.inner.keyed)
    }
}

impl Health for WsPool {
    fn health(&self) -> HealthStatus {
        self.inner.keyed.health()
    }
}
