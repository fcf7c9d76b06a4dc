//! `WsConnection`: one open WebSocket, with the state the pool needs: whether
//! it may be handed out again, and a graceful close when it is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::closing::Closing;
use crate::error::WsError;
use crate::stats::Counters;
use crate::tracked::Tracked;

pub(crate) type Stream = WebSocketStream<MaybeTlsStream<Tracked>>;

/// How long a holder may send without reading before `send` polls the read
/// half (so that the peer's pings are answered).
pub const READ_POLL: Duration = Duration::from_secs(1);

/// Why a connection may not be handed out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broken {
    /// The peer sent Close (or the stream ended).
    PeerClosed,
    /// An I/O or protocol error: the stream is unusable.
    Error,
}

/// An open WebSocket of the pool. Use it through a lease
/// ([`WsLease`](crate::WsLease)): [`send`](Self::send) and
/// [`recv`](Self::recv) keep the pool informed; a connection that saw an
/// error or a Close is never handed out again.
pub struct WsConnection {
    stream: Option<Stream>,
    pub(crate) broken: Option<Broken>,
    /// Usable, but not to be handed out again (see `retire`).
    pub(crate) retired: bool,
    url: Arc<str>,
    counters: Arc<Counters>,
    closing: Arc<Closing>,
    close_timeout: Duration,
    handle: tokio::runtime::Handle,
    pings: u64,
    /// Messages read while the holder was sending (to answer the peer's
    /// pings), kept for its next `recv`.
    pending: std::collections::VecDeque<Message>,
    /// When the read half was last known polled (see `send`).
    last_read: Instant,
    /// A read happened since `last_read` was set (a flag, not a clock reading,
    /// on the receive path).
    read_since: bool,
    /// Messages taken from the stream, of every kind (see `Tracked::is_quiet`).
    taken: u64,
    /// The timer of `recv_within` (`send_recv`'s reply wait and
    /// [`recv_timeout`](Self::recv_timeout)), kept between calls: moving a
    /// pending timer's deadline later is one atomic update, where a new timer
    /// is registered in (and removed from) tokio's timer wheel under its lock
    /// on every call. Made at the first call.
    timer: Option<Pin<Box<Sleep>>>,
}

impl std::fmt::Debug for WsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConnection")
            .field("url", &self.url)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl WsConnection {
    pub(crate) fn new(
        stream: Stream,
        url: Arc<str>,
        counters: Arc<Counters>,
        closing: Arc<Closing>,
        close_timeout: Duration,
    ) -> Self {
        WsConnection {
            stream: Some(stream),
            broken: None,
            retired: false,
            url,
            counters,
            closing,
            close_timeout,
            handle: tokio::runtime::Handle::current(),
            pings: 0,
            pending: std::collections::VecDeque::new(),
            last_read: Instant::now(),
            read_since: false,
            taken: 0,
            timer: None,
        }
    }

    /// Counts a message taken from the stream.
    fn took(
        &mut self,
        next: Option<Result<Message, tungstenite::Error>>,
    ) -> Option<Result<Message, tungstenite::Error>> {
        self.taken += u64::from(matches!(next, Some(Ok(_))));
        next
    }

    /// Whether nothing can have arrived since the last message taken, so that
    /// a read would find nothing (see `Tracked::is_quiet`).
    fn is_quiet(&self) -> bool {
        match self.stream.as_ref().map(|s| s.get_ref()) {
            Some(MaybeTlsStream::Plain(tcp)) => tcp.is_quiet(self.taken),
            _ => false,
        }
    }

    fn stream(&mut self) -> Result<&mut Stream, WsError> {
        match (&self.broken, self.stream.as_mut()) {
            (None, Some(s)) => Ok(s),
            _ => Err(WsError::Closed {
                url: self.url.to_string(),
                frame: None,
            }),
        }
    }

    /// The URL, redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the connection can still be used.
    pub fn is_open(&self) -> bool {
        self.broken.is_none() && self.stream.is_some()
    }

    /// Sends one message (and flushes it). A holder that only sends still
    /// answers the peer's pings: when the read half has not been polled for
    /// [`READ_POLL`], what arrived is read first without waiting (the pongs go
    /// out with this message) and kept for the next [`recv`](Self::recv).
    ///
    /// # Errors
    /// [`WsError::Closed`] or [`WsError::Protocol`]; the connection is then
    /// broken and will be closed on return.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), WsError> {
        let now = Instant::now();
        if self.read_since {
            self.read_since = false;
            self.last_read = now;
        } else if now.duration_since(self.last_read) >= READ_POLL {
            self.poll_read_half()?;
        }
        self.send_now(msg.into()).await
    }

    /// Sends without polling the read half: for a caller that reads next.
    pub(crate) async fn send_now(&mut self, msg: Message) -> Result<(), WsError> {
        let r = self.stream()?.send(msg).await;
        r.map_err(|e| self.fail(e))
    }

    /// Reads what has arrived, without waiting: data messages are kept for
    /// `recv`, pings answered (by tungstenite, with the next write).
    fn poll_read_half(&mut self) -> Result<(), WsError> {
        self.last_read = Instant::now();
        while let Some(next) = self.stream()?.next().now_or_never() {
            match self.took(next) {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => self.pending.push_back(m),
                Some(Ok(Message::Close(frame))) => return Err(self.peer_closed(frame)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(self.fail(e)),
                None => return Err(self.peer_closed(None)),
            }
        }
        Ok(())
    }

    /// The next text or binary message. The peer's pings are answered on the
    /// way; pongs are skipped.
    ///
    /// # Errors
    /// [`WsError::Closed`] when the peer closes (with its frame), or the
    /// stream's error; the connection is then broken. Cancel-safe: dropping
    /// the future loses no message.
    pub async fn recv(&mut self) -> Result<Message, WsError> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(m);
        }
        loop {
            if let m @ (Message::Text(_) | Message::Binary(_)) = self.next_frame().await? {
                return Ok(m);
            }
        }
    }

    /// The next message of any kind but Close (pings are answered by
    /// tungstenite on the way).
    pub(crate) async fn next_frame(&mut self) -> Result<Message, WsError> {
        let next = self.stream()?.next().await;
        self.read_since = true;
        match self.took(next) {
            Some(Ok(Message::Close(frame))) => Err(self.peer_closed(frame)),
            Some(Ok(m)) => Ok(m),
            Some(Err(e)) => Err(self.fail(e)),
            None => Err(self.peer_closed(None)),
        }
    }

    /// Sends a ping (counted), without waiting for the pong.
    pub(crate) async fn send_ping(&mut self) -> Result<(), WsError> {
        self.pings += 1;
        self.counters
            .pings
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let payload = self.pings.to_be_bytes().to_vec();
        self.send(Message::Ping(payload.into())).await
    }

    /// Marks the connection failed after a ping went unanswered.
    pub(crate) fn ping_timed_out(&mut self, waited: Duration) -> WsError {
        self.counters
            .ping_timeouts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.broken = Some(Broken::Error);
        WsError::Timeout {
            url: self.url.to_string(),
            what: "pong",
            waited,
        }
    }

    /// Like [`recv`](Self::recv), within `timeout`. A timeout leaves the
    /// connection usable (for a stream of messages, silence is normal).
    ///
    /// # Errors
    /// [`WsError::Timeout`], or as [`recv`](Self::recv).
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, WsError> {
        self.recv_within(timeout, "message").await
    }

    /// [`recv`](Self::recv) within `timeout`, on the connection's kept
    /// timer; a timeout is [`WsError::Timeout`] with `what`.
    pub(crate) async fn recv_within(
        &mut self,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Message, WsError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Taken out while `recv` borrows the connection; a call cancelled
        // here drops it, and the next call makes a new one.
        let mut timer = match self.timer.take() {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let got = {
            let mut recv = std::pin::pin!(self.recv());
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = recv.as_mut().poll(cx) {
                    return Poll::Ready(Some(r));
                }
                timer.as_mut().poll(cx).map(|()| None)
            })
            .await
        };
        self.timer = Some(timer);
        got.unwrap_or_else(|| {
            Err(WsError::Timeout {
                url: self.url.to_string(),
                what,
                waited: timeout,
            })
        })
    }

    /// Marks the connection as not to be reused: it stays usable for this
    /// lease and is closed (gracefully) when the lease ends. For a holder that
    /// abandons an exchange (a reply may still come) or changed the
    /// connection's state (a subscription).
    pub fn retire(&mut self) {
        self.retired = true;
    }

    fn fail(&mut self, e: tokio_tungstenite::tungstenite::Error) -> WsError {
        use tokio_tungstenite::tungstenite::Error as E;
        if matches!(e, E::ConnectionClosed | E::AlreadyClosed) {
            return self.peer_closed(None);
        }
        self.broken = Some(Broken::Error);
        self.counters
            .errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WsError::from_tungstenite(&self.url, e)
    }

    fn peer_closed(
        &mut self,
        frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>,
    ) -> WsError {
        if self.broken.is_none() {
            self.counters
                .peer_closes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.broken = Some(Broken::PeerClosed);
        WsError::Closed {
            url: self.url.to_string(),
            frame: frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)),
        }
    }

    /// A ping, and the wait for its pong within `timeout`; data messages that
    /// arrive meanwhile were sent to nobody (the connection was idle) and are
    /// dropped and counted.
    pub(crate) async fn ping(&mut self, timeout: Duration) -> Result<Duration, WsError> {
        let start = Instant::now();
        self.send_ping().await?;
        let payload = self.pings.to_be_bytes();
        let wait = async {
            loop {
                match self.next_frame().await? {
                    Message::Pong(p) if p[..] == payload[..] => return Ok(()),
                    Message::Text(_) | Message::Binary(_) => self.counters.dropped(),
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(())) => {
                let rtt = start.elapsed();
                self.counters.pong(rtt);
                Ok(rtt)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.ping_timed_out(timeout)),
        }
    }

    /// Reads what arrived while the connection was idle, without waiting: data
    /// messages are dropped and counted (they were meant for nobody now), pings
    /// answered, a Close or an error makes the connection broken.
    pub(crate) async fn drain(&mut self) -> Result<(), WsError> {
        // What the last holder did not read is nobody's now.
        for _ in self.pending.drain(..) {
            self.counters.dropped();
        }
        if self.is_quiet() {
            return Ok(());
        }
        let mut read_any = false;
        loop {
            let Some(next) = self.stream()?.next().now_or_never() else {
                break;
            };
            read_any = true;
            match self.took(next) {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => self.counters.dropped(),
                Some(Ok(Message::Close(frame))) => return Err(self.peer_closed(frame)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(self.fail(e)),
                None => return Err(self.peer_closed(None)),
            }
        }
        if !read_any {
            return Ok(());
        }
        // Pongs queued for the peer's pings go out now.
        let r = self.stream()?.flush().await;
        r.map_err(|e| self.fail(e))
    }
}

impl Drop for WsConnection {
    /// Closes with a Close frame and waits (up to `close_timeout`, on a task)
    /// for the peer's; a stream that failed is just dropped. New connects wait
    /// for the close (see `closing.rs`).
    fn drop(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        if matches!(self.broken, Some(Broken::Error)) {
            return;
        }
        let timeout = self.close_timeout;
        let in_flight = self.closing.start();
        self.handle.spawn(async move {
            let _in_flight = in_flight;
            let _ = tokio::time::timeout(timeout, async move {
                if stream.close(None).await.is_ok() {
                    while let Some(Ok(_)) = stream.next().await {}
                }
            })
            .await;
        });
    }
}
