//! `ZmqPool`: sockets pooled per `SocketConfig` on one shared context.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use pool_core::{BoxFuture, Health, HealthStatus, KeyedPool, Pool, PooledConnection, Stats};
use tokio::sync::mpsc;

use crate::config::{SocketConfig, SocketKind, ZmqConfig};
use crate::error::ZmqError;
use crate::manager::ZmqManager;
use crate::monitor::Connectivity;
use crate::socket::Multipart;

/// A leased socket: derefs to [`ZmqSocket`](crate::ZmqSocket), returned on
/// drop (closed instead if it failed or a REQ exchange is open).
pub type ZmqLease = PooledConnection<'static, ZmqManager>;

/// ZeroMQ sockets pooled per [`SocketConfig`] under a per-config and a total
/// limit, on one shared `zmq::Context`. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), pool_zmq::ZmqError> {
/// use pool_zmq::{SocketConfig, SocketKind, ZmqConfig, ZmqPool};
///
/// let pool = ZmqPool::new(ZmqConfig::default())?;
/// let rpc = SocketConfig::connect(SocketKind::Req, "tcp://127.0.0.1:5555");
/// let reply = pool.request(&rpc, [b"hello".to_vec()]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ZmqPool {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    keyed: KeyedPool<SocketConfig, ZmqManager>,
    config: ZmqConfig,
    dropped: Arc<AtomicU64>,
    connectivity: Arc<Connectivity>,
    context: Option<zmq::Context>,
}

impl Drop for Inner {
    /// `zmq_ctx_term` waits for every socket and for `linger`: never on a
    /// runtime thread.
    fn drop(&mut self) {
        if let Some(ctx) = self.context.take() {
            let _ = std::thread::Builder::new()
                .name("zmq-ctx-term".into())
                .spawn(move || drop(ctx));
        }
    }
}

impl fmt::Debug for ZmqPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZmqPool")
            .field("name", &self.inner.name)
            .field("sockets", &self.inner.keyed.total_size())
            .finish_non_exhaustive()
    }
}

/// A snapshot of a ZeroMQ pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ZmqStats {
    /// The engine's figures over all configurations (`closed_broken` counts
    /// REQ sockets closed mid-exchange and failed ones).
    pub pool: Stats,
    /// Socket configurations with a sub-pool.
    pub configs: usize,
    /// Messages that arrived on an idle socket and were dropped.
    pub dropped_messages: u64,
    /// Open sockets that connect (not bind), each watched by libzmq's socket
    /// monitor.
    pub connecting_sockets: usize,
    /// Of which the peer is connected (ZMTP handshake done, no disconnect
    /// since).
    pub connected_sockets: usize,
}

impl ZmqPool {
    /// A pool named `zmq`. Call it inside a tokio runtime.
    ///
    /// # Errors
    /// [`ZmqError::Config`] naming the knob.
    pub fn new(config: ZmqConfig) -> Result<Self, ZmqError> {
        Self::named("zmq", config)
    }

    /// Like [`new`](Self::new), with a name for stats and health.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn named(name: &str, config: ZmqConfig) -> Result<Self, ZmqError> {
        let context = zmq::Context::new();
        let dropped = Arc::new(AtomicU64::new(0));
        let connectivity = Arc::new(Connectivity::default());
        let (ctx, counter, links) = (context.clone(), dropped.clone(), connectivity.clone());
        let timeouts = (config.send_timeout, config.recv_timeout);
        let keyed = KeyedPool::from_builder(
            name,
            pool_core::Builder::from_config(config.pool.clone())
                .observer_opt(config.observer.as_ref()),
            config.max_total,
            move |c: &SocketConfig| {
                ZmqManager::new(
                    c.clone(),
                    ctx.clone(),
                    timeouts,
                    counter.clone(),
                    links.clone(),
                )
            },
        )?;
        Ok(ZmqPool {
            inner: Arc::new(Inner {
                name: name.to_string(),
                keyed,
                config,
                dropped,
                connectivity,
                context: Some(context),
            }),
        })
    }

    /// Leases a socket of `config`: an idle one (what arrived on it while idle
    /// is dropped first), else a new one if the limits allow, else the first
    /// one returned — within `acquire_timeout`.
    ///
    /// # Errors
    /// [`ZmqError::Zmq`] when libzmq refuses the socket (a bad endpoint, an
    /// address in use); [`ZmqError::Pool`] for a timeout or a closed pool.
    pub async fn get(&self, config: &SocketConfig) -> Result<ZmqLease, ZmqError> {
        let pool = match self.inner.keyed.existing(config) {
            Some(pool) => pool,
            None => self.inner.keyed.pool(config)?,
        };
        Ok(pool.get_owned().await?)
    }

    /// Sends `msg` on a REQ or DEALER socket of `config` and returns the reply,
    /// within `request_timeout`. A socket whose reply did not come (timeout,
    /// or this future dropped) is closed, never reused.
    ///
    /// # Errors
    /// [`ZmqError::Usage`] for another kind; [`ZmqError::Timeout`]; as
    /// [`get`](Self::get) and [`ZmqSocket::send`](crate::ZmqSocket::send).
    pub async fn request<I, T>(&self, config: &SocketConfig, msg: I) -> Result<Multipart, ZmqError>
    where
        I: IntoIterator<Item = T>,
        T: Into<zmq::Message>,
    {
        if !matches!(config.kind, SocketKind::Req | SocketKind::Dealer) {
            return Err(ZmqError::Usage {
                socket: config.to_string(),
                reason: "request needs a REQ or DEALER socket".into(),
            });
        }
        let mut lease = self.get(config).await?;
        let mut exchange = Exchange(&mut lease, false);
        exchange.0.send(msg).await?;
        let timeout = self.inner.config.request_timeout;
        let reply = match exchange.0.recv_timeout(timeout).await {
            Err(ZmqError::Timeout { socket, .. }) => {
                return Err(ZmqError::Timeout {
                    socket,
                    what: "reply",
                    waited: timeout,
                })
            }
            other => other?,
        };
        exchange.1 = true;
        Ok(reply)
    }

    /// Sends `msg` on a socket of `config` (PUSH, PUB, DEALER, …).
    ///
    /// # Errors
    /// As [`get`](Self::get) and [`ZmqSocket::send`](crate::ZmqSocket::send).
    pub async fn send<I, T>(&self, config: &SocketConfig, msg: I) -> Result<(), ZmqError>
    where
        I: IntoIterator<Item = T>,
        T: Into<zmq::Message>,
    {
        self.get(config).await?.send(msg).await
    }

    /// Receives one message on a socket of `config` (PULL, SUB, …), within
    /// `recv_timeout`.
    ///
    /// # Errors
    /// As [`get`](Self::get) and [`ZmqSocket::recv`](crate::ZmqSocket::recv).
    pub async fn recv(&self, config: &SocketConfig) -> Result<Multipart, ZmqError> {
        self.get(config).await?.recv().await
    }

    /// A stream of the messages of a SUB (or PULL) socket of `config`. The
    /// socket is leased for the subscription's life and closed, not returned,
    /// when it is dropped.
    ///
    /// # Errors
    /// As [`get`](Self::get); [`ZmqError::Usage`] for a socket that cannot
    /// receive.
    pub async fn subscribe(&self, config: &SocketConfig) -> Result<ZmqSubscription, ZmqError> {
        if matches!(config.kind, SocketKind::Pub | SocketKind::Push) {
            return Err(ZmqError::Usage {
                socket: config.to_string(),
                reason: format!("a {} socket cannot receive", config.kind),
            });
        }
        let mut lease = self.get(config).await?;
        lease.retire();
        let (tx, rx) = mpsc::channel(256);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    msg = lease.recv_forever() => {
                        let failed = msg.is_err();
                        if tx.send(msg).await.is_err() || failed {
                            return;
                        }
                    }
                }
            }
        });
        Ok(ZmqSubscription { rx, task })
    }

    /// Counters of the pool.
    pub fn stats(&self) -> ZmqStats {
        ZmqStats {
            pool: Pool::stats(&self.inner.keyed),
            configs: self.inner.keyed.keys().len(),
            dropped_messages: self.inner.dropped.load(Relaxed),
            connecting_sockets: self.inner.connectivity.open.load(Relaxed),
            connected_sockets: self.inner.connectivity.connected.load(Relaxed),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ZmqConfig {
        &self.inner.config
    }

    /// Open sockets over all configurations.
    pub fn total_size(&self) -> usize {
        self.inner.keyed.total_size()
    }

    /// Closes every socket (idle ones now, leased ones when returned), off the
    /// runtime's threads; `true` once all are closed, `false` if `timeout`
    /// passed first. Unsent messages are kept at most `linger`.
    pub async fn close(&self, timeout: Duration) -> bool {
        Pool::close(&self.inner.keyed, timeout).await
    }
}

/// Closes the lease's socket unless the exchange completed.
struct Exchange<'a>(&'a mut ZmqLease, bool);

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.retire();
        }
    }
}

/// The messages of a subscribed socket (also [`next`](Self::next)); an error
/// ends it.
#[derive(Debug)]
pub struct ZmqSubscription {
    rx: mpsc::Receiver<Result<Multipart, ZmqError>>,
    task: tokio::task::JoinHandle<()>,
}

impl ZmqSubscription {
    /// The next message; `None` after an error was yielded.
    pub async fn next(&mut self) -> Option<Result<Multipart, ZmqError>> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for ZmqSubscription {
    type Item = Result<Multipart, ZmqError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for ZmqSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Pool for ZmqPool {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &str {
        "zmq"
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

impl Health for ZmqPool {
    /// The engine's verdict, and connectivity from the socket monitors:
    /// Unhealthy when no connecting socket has a peer, Degraded when some
    /// lack one (a socket made a moment ago has not finished its handshake
    /// yet).
    fn health(&self) -> HealthStatus {
        let open = self.inner.connectivity.open.load(Relaxed);
        let connected = self.inner.connectivity.connected.load(Relaxed).min(open);
        let peers = if open == 0 || connected == open {
            HealthStatus::Healthy
        } else if connected == 0 {
            HealthStatus::Unhealthy {
                reason: format!("none of the {open} connecting sockets has a peer"),
            }
        } else {
            HealthStatus::Degraded {
                reason: format!(
                    "{} of {open} connecting sockets have no peer",
                    open - connected
                ),
            }
        };
        self.inner.keyed.health().worst(peers)
    }
}

/// One socket configuration of a [`ZmqPool`]: the pool's calls without the
/// configuration argument (what the umbrella's registry hands out for a
/// declared `kind = "zmq"` service).
#[derive(Debug, Clone)]
pub struct ZmqEndpoint {
    pool: ZmqPool,
    config: SocketConfig,
}

impl ZmqPool {
    /// The endpoint for `config`.
    pub fn endpoint(&self, config: SocketConfig) -> ZmqEndpoint {
        ZmqEndpoint {
            pool: self.clone(),
            config,
        }
    }
}

impl ZmqEndpoint {
    /// [`ZmqPool::get`] for this configuration.
    ///
    /// # Errors
    /// As [`ZmqPool::get`].
    pub async fn get(&self) -> Result<ZmqLease, ZmqError> {
        self.pool.get(&self.config).await
    }

    /// [`ZmqPool::request`] on this configuration.
    ///
    /// # Errors
    /// As [`ZmqPool::request`].
    pub async fn request<I, T>(&self, msg: I) -> Result<Multipart, ZmqError>
    where
        I: IntoIterator<Item = T>,
        T: Into<zmq::Message>,
    {
        self.pool.request(&self.config, msg).await
    }

    /// [`ZmqPool::send`] on this configuration.
    ///
    /// # Errors
    /// As [`ZmqPool::send`].
    pub async fn send<I, T>(&self, msg: I) -> Result<(), ZmqError>
    where
        I: IntoIterator<Item = T>,
        T: Into<zmq::Message>,
    {
        self.pool.send(&self.config, msg).await
    }

    /// [`ZmqPool::recv`] on this configuration.
    ///
    /// # Errors
    /// As [`ZmqPool::recv`].
    pub async fn recv(&self) -> Result<Multipart, ZmqError> {
        self.pool.recv(&self.config).await
    }

    /// [`ZmqPool::subscribe`] on this configuration.
    ///
    /// # Errors
    /// As [`ZmqPool::subscribe`].
    pub async fn subscribe(&self) -> Result<ZmqSubscription, ZmqError> {
        self.pool.subscribe(&self.config).await
    }

    /// The pool behind it.
    pub fn pool(&self) -> &ZmqPool {
        &self.pool
    }

    /// The socket configuration.
    pub fn config(&self) -> &SocketConfig {
        &self.config
    }
}
