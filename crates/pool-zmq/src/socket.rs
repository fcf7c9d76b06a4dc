//! `ZmqSocket`: a libzmq socket awaited on its file descriptor, never on a
//! blocking call. libzmq's `ZMQ_FD` only says "`ZMQ_EVENTS` may have
//! changed", edge-triggered: every wait reads `ZMQ_EVENTS` first, and the
//! readiness is cleared only after `ZMQ_EVENTS` was read and said no (reading
//! it re-arms the descriptor), so no edge is lost between the two.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::config::SocketKind;
use crate::error::ZmqError;

/// A multipart message: its frames in order.
pub type Multipart = Vec<Vec<u8>>;

pub(crate) struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A pooled ZeroMQ socket. Use it through a lease
/// ([`ZmqLease`](crate::ZmqLease)): [`send`](Self::send) and
/// [`recv`](Self::recv) await readiness without blocking a runtime thread.
pub struct ZmqSocket {
    /// Dropped before `socket` (the descriptor belongs to libzmq).
    fd: Option<AsyncFd<Fd>>,
    socket: Option<zmq::Socket>,
    name: Arc<str>,
    kind: SocketKind,
    /// REQ: a request went out and its reply has not been read.
    pub(crate) awaiting_reply: bool,
    /// An operation failed: never handed out again.
    pub(crate) failed: bool,
    /// Usable, but not to be handed out again (see `retire`).
    pub(crate) retired: bool,
    send_timeout: Duration,
    recv_timeout: Duration,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for ZmqSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqSocket")
            .field("socket", &self.name)
            .field("awaiting_reply", &self.awaiting_reply)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl ZmqSocket {
    pub(crate) fn new(
        socket: zmq::Socket,
        name: Arc<str>,
        kind: SocketKind,
        (send_timeout, recv_timeout): (Duration, Duration),
        dropped: Arc<AtomicU64>,
    ) -> Result<Self, ZmqError> {
        // SAFETY: `Drop` drops this `AsyncFd` before the socket.
        let fd = unsafe { watch(&socket) }.map_err(|e| ZmqError::Usage {
            socket: name.to_string(),
            reason: format!("cannot watch the socket's descriptor: {e}"),
        })?;
        Ok(ZmqSocket {
            fd: Some(fd),
            socket: Some(socket),
            name,
            kind,
            awaiting_reply: false,
            failed: false,
            retired: false,
            send_timeout,
            recv_timeout,
            dropped,
        })
    }

    /// The socket, e.g. `REQ to tcp://127.0.0.1:5555`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pattern.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// Marks the socket as not to be reused: it stays usable for this lease
    /// and is closed when the lease ends.
    pub fn retire(&mut self) {
        self.retired = true;
    }

    fn raw(&self) -> &zmq::Socket {
        self.socket
            .as_ref()
            .expect("a ZmqSocket holds its socket until dropped")
    }

    fn zmq_error(&mut self, what: &'static str, source: zmq::Error) -> ZmqError {
        self.failed = true;
        ZmqError::Zmq {
            socket: self.name.to_string(),
            what,
            source,
        }
    }

    /// Waits until `ZMQ_EVENTS` has `want`.
    async fn ready(&mut self, want: zmq::PollEvents) -> Result<(), ZmqError> {
        let fd = self
            .fd
            .as_ref()
            .expect("a ZmqSocket holds its descriptor until dropped");
        let socket = self
            .socket
            .as_mut()
            .expect("a ZmqSocket holds its socket until dropped");
        match wait_for(fd, socket, want).await {
            Ok(()) => Ok(()),
            Err(Wait::Zmq(e)) => Err(self.zmq_error("ZMQ_EVENTS", e)),
            Err(Wait::Io(e)) => {
                self.failed = true;
                Err(ZmqError::Usage {
                    socket: self.name.to_string(),
                    reason: format!("waiting on the descriptor: {e}"),
                })
            }
        }
    }

    /// Sends a multipart message, waiting up to the pool's `send_timeout` for
    /// room (the high-water mark).
    ///
    /// # Errors
    /// [`ZmqError::Timeout`]; [`ZmqError::Usage`] for a socket that cannot
    /// send (SUB, PULL) or a REQ that awaits its reply; [`ZmqError::Zmq`].
    pub async fn send<I, T>(&mut self, parts: I) -> Result<(), ZmqError>
    where
        I: IntoIterator<Item = T>,
        T: Into<zmq::Message>,
    {
        let timeout = self.send_timeout;
        self.send_timeout(parts, timeout).await
    }

    /// Like [`send`](Self::send), with its own deadline.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_timeout<I, T>(&mut self, parts: I, timeout: Duration) -> Result<(), ZmqError>
    where
        I: IntoIterator<Item = T>,
        T: Into<zmq::Message>,
    {
        if matches!(self.kind, SocketKind::Sub | SocketKind::Pull) {
            return Err(self.usage(format!("a {} socket cannot send", self.kind)));
        }
        if self.kind == SocketKind::Req && self.awaiting_reply {
            return Err(self.usage("this REQ socket must receive its reply before sending".into()));
        }
        let parts: Vec<zmq::Message> = parts.into_iter().map(Into::into).collect();
        let r = tokio::time::timeout(timeout, async {
            loop {
                self.ready(zmq::POLLOUT).await?;
                // Only the first frame can meet the high-water mark: a
                // multipart message goes whole or not at all.
                match self
                    .raw()
                    .send_multipart(parts.iter().map(|p| &p[..]), zmq::DONTWAIT)
                {
                    Ok(()) => return Ok(()),
                    Err(zmq::Error::EAGAIN) => continue,
                    Err(e) => return Err(self.zmq_error("send", e)),
                }
            }
        })
        .await;
        match r {
            Ok(Ok(())) => {
                if self.kind == SocketKind::Req {
                    self.awaiting_reply = true;
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ZmqError::Timeout {
                socket: self.name.to_string(),
                what: "room to send",
                waited: timeout,
            }),
        }
    }

    /// Receives a multipart message, waiting up to the pool's `recv_timeout`.
    /// A REQ socket whose receive times out (or is cancelled) still awaits its
    /// reply: it is closed on return, never reused.
    ///
    /// # Errors
    /// [`ZmqError::Timeout`]; [`ZmqError::Usage`] for a socket that cannot
    /// receive (PUB, PUSH); [`ZmqError::Zmq`].
    pub async fn recv(&mut self) -> Result<Multipart, ZmqError> {
        let timeout = self.recv_timeout;
        self.recv_timeout(timeout).await
    }

    /// Like [`recv`](Self::recv), with its own deadline.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Multipart, ZmqError> {
        if matches!(self.kind, SocketKind::Pub | SocketKind::Push) {
            return Err(self.usage(format!("a {} socket cannot receive", self.kind)));
        }
        match tokio::time::timeout(timeout, self.recv_forever()).await {
            Ok(r) => r,
            Err(_) => Err(ZmqError::Timeout {
                socket: self.name.to_string(),
                what: "message",
                waited: timeout,
            }),
        }
    }

    pub(crate) async fn recv_forever(&mut self) -> Result<Multipart, ZmqError> {
        loop {
            self.ready(zmq::POLLIN).await?;
            match self.raw().recv_multipart(zmq::DONTWAIT) {
                Ok(parts) => {
                    self.awaiting_reply = false;
                    return Ok(parts);
                }
                Err(zmq::Error::EAGAIN) => continue,
                Err(e) => return Err(self.zmq_error("recv", e)),
            }
        }
    }

    /// Drops what arrived while the socket was idle, without waiting: on a
    /// DEALER the late reply of an abandoned exchange, on a SUB what was
    /// published to nobody. Sockets that serve or take work (REP, ROUTER,
    /// PULL) keep theirs: those are requests and jobs, not leftovers; a REQ
    /// socket with an open exchange never comes back.
    pub(crate) fn drain(&mut self) -> Result<(), ZmqError> {
        if !matches!(self.kind, SocketKind::Dealer | SocketKind::Sub) {
            return Ok(());
        }
        loop {
            match self.raw().recv_multipart(zmq::DONTWAIT) {
                Ok(_) => {
                    self.dropped.fetch_add(1, Relaxed);
                }
                Err(zmq::Error::EAGAIN) => return Ok(()),
                Err(e) => return Err(self.zmq_error("recv", e)),
            }
        }
    }

    fn usage(&self, reason: String) -> ZmqError {
        ZmqError::Usage {
            socket: self.name.to_string(),
            reason,
        }
    }
}

/// Why a wait for readiness failed.
pub(crate) enum Wait {
    Zmq(zmq::Error),
    Io(std::io::Error),
}

/// Registers `socket`'s `ZMQ_FD` with the runtime.
///
/// # Safety
/// The returned `AsyncFd` must be dropped before `socket` is closed.
pub(crate) unsafe fn watch(socket: &zmq::Socket) -> Result<AsyncFd<Fd>, String> {
    let raw = socket.get_fd().map_err(|e| e.to_string())?;
    // SAFETY: `raw` is libzmq's signalling descriptor of `socket`, open until
    // the socket is closed, which the caller does only after dropping this
    // `AsyncFd` (which deregisters it); `Fd` always returns `raw`.
    unsafe { AsyncFd::register_with_interest(Fd(raw), Interest::READABLE) }
        .map_err(|e| e.into_parts().1.to_string())
}

/// Waits until `socket`'s `ZMQ_EVENTS` has `want`: read it first; await the
/// descriptor; read it again, and clear the readiness only if it still says
/// no (that read re-armed the descriptor, so the next change signals).
/// (`&mut`: a `zmq::Socket` is `Send` but not `Sync`, so only an exclusive
/// borrow can be held across the await of a task that may move threads.)
pub(crate) async fn wait_for(
    fd: &AsyncFd<Fd>,
    socket: &mut zmq::Socket,
    want: zmq::PollEvents,
) -> Result<(), Wait> {
    loop {
        if socket.get_events().map_err(Wait::Zmq)?.contains(want) {
            return Ok(());
        }
        let mut guard = fd.readable().await.map_err(Wait::Io)?;
        if socket.get_events().map_err(Wait::Zmq)?.contains(want) {
            return Ok(());
        }
        guard.clear_ready();
    }
}

impl Drop for ZmqSocket {
    /// Closes off the runtime's threads: with the last socket of a dropped
    /// pool goes the context, whose termination waits for `linger`.
    fn drop(&mut self) {
        drop(self.fd.take());
        let Some(socket) = self.socket.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || drop(socket));
            }
            Err(_) => drop(socket),
        }
    }
}
