//! A TCP proxy on 127.0.0.1 between a pool and a real server, for fault
//! injection: cut every connection, refuse new ones, or blackhole (accept and
//! never forward a byte, like a peer that went silent without FIN).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PASS: u8 = 0;
const REFUSE: u8 = 1;
const BLACKHOLE: u8 = 2;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Close new connections at once.
    Refuse,
    /// Accept, read and drop everything, answer nothing.
    Blackhole,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free port.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let mode = Arc::new(AtomicU8::new(PASS));
        let (cut, cut_rx) = watch::channel(0u64);
        let m = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = m.load(SeqCst);
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    match mode {
                        REFUSE => drop(client),
                        BLACKHOLE => {
                            let mut client = client;
                            let mut sink = tokio::io::sink();
                            tokio::select! {
                                _ = tokio::io::copy(&mut client, &mut sink) => {}
                                _ = cut_rx.changed() => {}
                            }
                        }
                        _ => {
                            let Ok(mut server) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            let mut client = client;
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = cut_rx.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        Proxy {
            addr,
            mode,
            cut,
            task,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        let m = match mode {
            Mode::Pass => PASS,
            Mode::Refuse => REFUSE,
            Mode::Blackhole => BLACKHOLE,
        };
        self.mode.store(m, SeqCst);
    }

    /// Cuts every connection open now (RST/FIN to both sides).
    pub fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut_all();
    }
}
