//! Real libzmq peers for the pool-zmq tests, each on its own thread with its
//! own context (blocking calls are fine there), bound to 127.0.0.1 on a free
//! port: REP and ROUTER echoes that count what they saw and can delay their
//! first reply.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the peer saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub requests: AtomicUsize,
    /// ROUTER: the routing ids of the sockets that sent (one per socket).
    pub peers: Mutex<HashSet<Vec<u8>>>,
}

/// A running peer; stopped and joined on drop.
#[derive(Debug)]
pub struct ZmqPeer {
    pub endpoint: String,
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ZmqPeer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Which echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Rep,
    Router,
}

impl ZmqPeer {
    /// An echo server; its first reply waits `first_delay`.
    pub fn echo(kind: Echo, first_delay: Duration) -> ZmqPeer {
        let endpoint = format!("tcp://127.0.0.1:{}", crate::free_port());
        Self::echo_on(kind, first_delay, endpoint)
    }

    /// An echo server bound to `endpoint` (e.g. a stopped peer's, to start
    /// it again).
    pub fn echo_on(kind: Echo, first_delay: Duration, endpoint: String) -> ZmqPeer {
        let (seen, stop) = (Arc::new(Seen::default()), Arc::new(AtomicBool::new(false)));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (endpoint, seen, stop) = (endpoint.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let ctx = zmq::Context::new();
                let s = ctx
                    .socket(if kind == Echo::Rep {
                        zmq::REP
                    } else {
                        zmq::ROUTER
                    })
                    .unwrap();
                s.set_linger(0).unwrap();
                s.set_rcvtimeo(20).unwrap();
                s.bind(&endpoint).unwrap();
                ready_tx.send(()).unwrap();
                let mut first = true;
                while !stop.load(SeqCst) {
                    let Ok(parts) = s.recv_multipart(0) else {
                        continue;
                    };
                    seen.requests.fetch_add(1, SeqCst);
                    if kind == Echo::Router {
                        seen.peers.lock().unwrap().insert(parts[0].clone());
                    }
                    if first {
                        first = false;
                        std::thread::sleep(first_delay);
                    }
                    let _ = s.send_multipart(parts, 0);
                }
            })
        };
        ready_rx.recv().unwrap();
        ZmqPeer {
            endpoint,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> usize {
        self.seen.requests.load(SeqCst)
    }

    /// ROUTER: distinct sockets that sent.
    pub fn distinct_peers(&self) -> usize {
        self.seen.peers.lock().unwrap().len()
    }
}
