//! Connectivity from libzmq's socket monitor: `connect()` succeeds without a
//! peer, so whether a connecting socket has one comes from its monitor's
//! events (a finished ZMTP handshake, a disconnect). One task per connecting
//! socket reads them, on the socket's own `ZMQ_FD` readiness, and keeps the
//! pool's counts; it ends when the socket closes (`MONITOR_STOPPED`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use crate::socket::{wait_for, watch};

/// The pool's connectivity counts.
#[derive(Debug, Default)]
pub(crate) struct Connectivity {
    /// Connecting sockets open now (with a monitor).
    pub(crate) open: AtomicUsize,
    /// Of which the peer is connected (handshake done, no disconnect since).
    pub(crate) connected: AtomicUsize,
}

/// Starts the monitor of `socket`. A monitor that cannot start leaves the
/// socket unmonitored (logged): it still works, only health knows less.
pub(crate) fn start(
    socket: &zmq::Socket,
    context: &zmq::Context,
    name: &str,
    counts: &Arc<Connectivity>,
) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let endpoint = format!("inproc://unipool-monitor-{}", NEXT.fetch_add(1, SeqCst));
    let events = zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw()
        | zmq::SocketEvent::DISCONNECTED.to_raw()
        | zmq::SocketEvent::MONITOR_STOPPED.to_raw();
    let pair = socket
        .monitor(&endpoint, i32::from(events))
        .and_then(|()| context.socket(zmq::PAIR))
        .and_then(|pair| {
            pair.set_linger(0)?;
            pair.connect(&endpoint)?;
            Ok(pair)
        });
    let pair = match pair {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(socket = name, error = %e, "socket monitor not started");
            return;
        }
    };
    counts.open.fetch_add(1, SeqCst);
    let counts = counts.clone();
    tokio::spawn(async move {
        let mut pair = pair;
        // SAFETY: `fd` is dropped at the end of this match, before `pair`.
        let connected = match unsafe { watch(&pair) } {
            Ok(fd) => follow(&fd, &mut pair, &counts).await,
            Err(_) => false,
        };
        if connected {
            counts.connected.fetch_sub(1, SeqCst);
        }
        counts.open.fetch_sub(1, SeqCst);
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(move || drop(pair))),
            Err(_) => drop(pair),
        }
    });
}

/// Reads events until the monitor stops; returns whether the socket was
/// counted as connected at the end.
async fn follow(
    fd: &tokio::io::unix::AsyncFd<crate::socket::Fd>,
    pair: &mut zmq::Socket,
    counts: &Connectivity,
) -> bool {
    let mut connected = false;
    loop {
        if wait_for(fd, pair, zmq::POLLIN).await.is_err() {
            return connected;
        }
        let Ok(frames) = pair.recv_multipart(zmq::DONTWAIT) else {
            continue;
        };
        let Some(event) = frames
            .first()
            .and_then(|f| f.get(..2))
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
        else {
            continue;
        };
        match zmq::SocketEvent::from_raw(event) {
            zmq::SocketEvent::HANDSHAKE_SUCCEEDED if !connected => {
                connected = true;
                counts.connected.fetch_add(1, SeqCst);
            }
            zmq::SocketEvent::DISCONNECTED if connected => {
                connected = false;
                counts.connected.fetch_sub(1, SeqCst);
            }
            zmq::SocketEvent::MONITOR_STOPPED => return connected,
            _ => {}
        }
    }
}
