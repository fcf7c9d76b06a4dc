//! `SocketConfig` (what a pooled socket is: the pool's key) and `ZmqConfig`
//! (the pool's limits and timeouts).

use std::fmt;
use std::time::Duration;

use pool_core::PoolConfig;

/// The socket patterns the pool serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketKind {
    /// REQ: strict send → receive; interrupted exchanges break the socket.
    Req,
    /// REP.
    Rep,
    /// DEALER.
    Dealer,
    /// ROUTER.
    Router,
    /// PUB.
    Pub,
    /// SUB (subscribes to `SocketOptions::subscribe`).
    Sub,
    /// PUSH.
    Push,
    /// PULL.
    Pull,
}

impl SocketKind {
    pub(crate) fn raw(self) -> zmq::SocketType {
        match self {
            SocketKind::Req => zmq::REQ,
            SocketKind::Rep => zmq::REP,
            SocketKind::Dealer => zmq::DEALER,
            SocketKind::Router => zmq::ROUTER,
            SocketKind::Pub => zmq::PUB,
            SocketKind::Sub => zmq::SUB,
            SocketKind::Push => zmq::PUSH,
            SocketKind::Pull => zmq::PULL,
        }
    }

    /// From its name (`req`, `rep`, `dealer`, …; case-insensitive).
    pub fn parse(text: &str) -> Option<SocketKind> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "req" => SocketKind::Req,
            "rep" => SocketKind::Rep,
            "dealer" => SocketKind::Dealer,
            "router" => SocketKind::Router,
            "pub" => SocketKind::Pub,
            "sub" => SocketKind::Sub,
            "push" => SocketKind::Push,
            "pull" => SocketKind::Pull,
            _ => return None,
        })
    }
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            SocketKind::Req => "REQ",
            SocketKind::Rep => "REP",
            SocketKind::Dealer => "DEALER",
            SocketKind::Router => "ROUTER",
            SocketKind::Pub => "PUB",
            SocketKind::Sub => "SUB",
            SocketKind::Push => "PUSH",
            SocketKind::Pull => "PULL",
        })
    }
}

/// Socket options applied before bind/connect. `None` keeps libzmq's default,
/// except `linger`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SocketOptions {
    /// `ZMQ_LINGER`: how long unsent messages are kept after close. Default
    /// 100 ms (libzmq's is infinite, which makes closing block).
    pub linger: Duration,
    /// `ZMQ_SNDHWM`. Default libzmq's (1000).
    pub send_hwm: Option<i32>,
    /// `ZMQ_RCVHWM`. Default libzmq's (1000).
    pub recv_hwm: Option<i32>,
    /// `ZMQ_ROUTING_ID`. Default none (with a pool of several sockets per
    /// config, a fixed identity would be shared: use it with `max_size` 1).
    pub identity: Option<Vec<u8>>,
    /// SUB: the prefixes subscribed to. Default none (nothing is received).
    pub subscribe: Vec<Vec<u8>>,
    /// `ZMQ_RECONNECT_IVL`. Default libzmq's (100 ms).
    pub reconnect_interval: Option<Duration>,
    /// `ZMQ_HEARTBEAT_IVL` (ZMTP heartbeats). Default off.
    pub heartbeat_interval: Option<Duration>,
    /// `ZMQ_HEARTBEAT_TIMEOUT`. Default libzmq's (the interval).
    pub heartbeat_timeout: Option<Duration>,
    /// Watch connecting sockets with libzmq's socket monitor (one inproc
    /// PAIR socket and one task per socket) so that health knows whether they
    /// have a peer. Default on.
    pub monitor: bool,
    /// How long `send` waits for room on these sockets. Default the pool's
    /// `send_timeout`.
    pub send_timeout: Option<Duration>,
    /// How long `recv` waits on these sockets. Default the pool's
    /// `recv_timeout`.
    pub recv_timeout: Option<Duration>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            linger: Duration::from_millis(100),
            send_hwm: None,
            recv_hwm: None,
            identity: None,
            subscribe: Vec::new(),
            reconnect_interval: None,
            heartbeat_interval: None,
            heartbeat_timeout: None,
            monitor: true,
            send_timeout: None,
            recv_timeout: None,
        }
    }
}

/// What a pooled socket is: its kind, endpoint, whether it binds or
/// connects, and its options. Sockets are pooled per `SocketConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketConfig {
    /// The pattern.
    pub kind: SocketKind,
    /// `tcp://host:port`, `ipc://path`, `inproc://name`.
    pub endpoint: String,
    /// Bind instead of connect (one socket only can bind an endpoint: use
    /// `max_size` 1 for it).
    pub bind: bool,
    /// Options.
    pub options: SocketOptions,
}

impl SocketConfig {
    /// A socket of `kind` that connects to `endpoint`, default options.
    pub fn connect(kind: SocketKind, endpoint: impl Into<String>) -> Self {
        SocketConfig {
            kind,
            endpoint: endpoint.into(),
            bind: false,
            options: SocketOptions::default(),
        }
    }

    /// A socket of `kind` bound to `endpoint`, default options.
    pub fn bind(kind: SocketKind, endpoint: impl Into<String>) -> Self {
        SocketConfig {
            bind: true,
            ..Self::connect(kind, endpoint)
        }
    }

    /// With these SUB prefixes.
    pub fn subscribe(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.options.subscribe.push(prefix.into());
        self
    }
}

impl fmt::Display for SocketConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.bind { "bound to" } else { "to" };
        // ZeroMQ endpoints carry no credentials, but one pasted from a URL
        // might: its password is not shown.
        if self.endpoint.contains('@') {
            let shown = pool_core::util::redact_url(&self.endpoint);
            return write!(f, "{} {verb} {shown}", self.kind);
        }
        write!(f, "{} {verb} {}", self.kind, self.endpoint)
    }
}

/// Configuration of a [`ZmqPool`](crate::ZmqPool). Every field states its
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZmqConfig {
    /// The engine's knobs, per socket configuration: `max_size` default 4
    /// (the seed kept 50 sockets in all), `keepalive_interval` off (a ZeroMQ
    /// socket has no generic ping: connectivity comes from libzmq's
    /// reconnects and ZMTP heartbeats), `validate_after` off.
    pub pool: PoolConfig,
    /// Sockets over all configurations. Default 50.
    pub max_total: usize,
    /// Told of every sub-pool's events (pool-core's `Observer`; the
    /// sub-pools are named `name[key]`). Default none.
    pub observer: Option<pool_core::SharedObserver>,
    /// Longest `send` waits for room (high-water mark). Default 5 s.
    pub send_timeout: Duration,
    /// Longest `recv` waits for a message. Default 30 s.
    pub recv_timeout: Duration,
    /// Longest `request` waits for the reply. Default 30 s.
    pub request_timeout: Duration,
}

impl Default for ZmqConfig {
    fn default() -> Self {
        ZmqConfig {
            pool: PoolConfig {
                max_size: 4,
                keepalive_interval: None,
                validate_after: Duration::from_secs(3600),
                ..PoolConfig::default()
            },
            max_total: 50,
            observer: None,
            send_timeout: Duration::from_secs(5),
            recv_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}
