//! `ZmqManager`: makes, checks and resets the sockets of one `SocketConfig`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use pool_core::Manager;

use crate::config::{SocketConfig, SocketKind};
use crate::error::ZmqError;
use crate::monitor::Connectivity;
use crate::socket::ZmqSocket;

/// Makes the sockets of one configuration on the pool's shared context.
#[derive(Clone)]
pub struct ZmqManager {
    config: SocketConfig,
    context: zmq::Context,
    name: Arc<str>,
    timeouts: (Duration, Duration),
    dropped: Arc<AtomicU64>,
    connectivity: Arc<Connectivity>,
}

impl std::fmt::Debug for ZmqManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqManager")
            .field("socket", &self.name)
            .finish_non_exhaustive()
    }
}

impl ZmqManager {
    pub(crate) fn new(
        config: SocketConfig,
        context: zmq::Context,
        timeouts: (Duration, Duration),
        dropped: Arc<AtomicU64>,
        connectivity: Arc<Connectivity>,
    ) -> Self {
        let name: Arc<str> = config.to_string().into();
        let timeouts = (
            config.options.send_timeout.unwrap_or(timeouts.0),
            config.options.recv_timeout.unwrap_or(timeouts.1),
        );
        ZmqManager {
            config,
            context,
            name,
            timeouts,
            dropped,
            connectivity,
        }
    }

    /// A socket of the configured kind with its options set, not yet bound
    /// or connected (`attach`).
    fn open(&self) -> Result<zmq::Socket, (&'static str, zmq::Error)> {
        let o = &self.config.options;
        let s = self
            .context
            .socket(self.config.kind.raw())
            .map_err(|e| ("socket", e))?;
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        s.set_linger(ms(o.linger)).map_err(|e| ("ZMQ_LINGER", e))?;
        if let Some(n) = o.send_hwm {
            s.set_sndhwm(n).map_err(|e| ("ZMQ_SNDHWM", e))?;
        }
        if let Some(n) = o.recv_hwm {
            s.set_rcvhwm(n).map_err(|e| ("ZMQ_RCVHWM", e))?;
        }
        if let Some(id) = &o.identity {
            s.set_identity(id).map_err(|e| ("ZMQ_ROUTING_ID", e))?;
        }
        if let Some(d) = o.reconnect_interval {
            s.set_reconnect_ivl(ms(d))
                .map_err(|e| ("ZMQ_RECONNECT_IVL", e))?;
        }
        if let Some(d) = o.heartbeat_interval {
            s.set_heartbeat_ivl(ms(d))
                .map_err(|e| ("ZMQ_HEARTBEAT_IVL", e))?;
        }
        if let Some(d) = o.heartbeat_timeout {
            s.set_heartbeat_timeout(ms(d))
                .map_err(|e| ("ZMQ_HEARTBEAT_TIMEOUT", e))?;
        }
        if self.config.kind == SocketKind::Sub {
            for prefix in &o.subscribe {
                s.set_subscribe(prefix).map_err(|e| ("ZMQ_SUBSCRIBE", e))?;
            }
        }
        Ok(s)
    }

    /// Binds or connects the socket.
    fn attach(&self, s: &zmq::Socket) -> Result<(), (&'static str, zmq::Error)> {
        if self.config.bind {
            s.bind(&self.config.endpoint).map_err(|e| ("bind", e))
        } else {
            s.connect(&self.config.endpoint).map_err(|e| ("connect", e))
        }
    }
}

impl Manager for ZmqManager {
    type Connection = ZmqSocket;
    type Error = ZmqError;

    /// Creating, binding and connecting a socket do not wait for a peer
    /// (libzmq connects in the background and reconnects by itself).
    async fn connect(&self) -> Result<ZmqSocket, ZmqError> {
        let failed = |(what, source)| ZmqError::Zmq {
            socket: self.name.to_string(),
            what,
            source,
        };
        let socket = self.open().map_err(failed)?;
        // The monitor listens before the socket connects: libzmq drops the
        // events of a monitor nobody reads yet, and a handshake on loopback
        // can finish before a monitor started afterwards (health would then
        // say "no peer" for a connected socket).
        if self.config.options.monitor && !self.config.bind {
            crate::monitor::start(&socket, &self.context, &self.name, &self.connectivity);
        }
        self.attach(&socket).map_err(failed)?;
        ZmqSocket::new(
            socket,
            self.name.clone(),
            self.config.kind,
            self.timeouts,
            self.dropped.clone(),
        )
    }

    /// A socket has no generic ping: it is fine unless an operation failed or
    /// a REQ exchange is open.
    async fn check(&self, conn: &mut ZmqSocket) -> Result<(), ZmqError> {
        if conn.failed || conn.awaiting_reply {
            return Err(ZmqError::Usage {
                socket: self.name.to_string(),
                reason: "the socket failed or awaits a reply".into(),
            });
        }
        Ok(())
    }

    /// What arrived while idle is dropped, never given to the next holder.
    async fn reset(&self, conn: &mut ZmqSocket) -> Result<(), ZmqError> {
        conn.drain()
    }

    /// A REQ socket that sent without receiving (timeout, cancellation)
    /// would fail its next send with EFSM, or hand its late reply to the next
    /// holder: closed instead (zguide's "Lazy Pirate").
    fn is_broken(&self, conn: &mut ZmqSocket) -> bool {
        conn.failed || conn.awaiting_reply || conn.retired
    }

    fn kind(&self) -> &'static str {
        "zmq"
    }
}
