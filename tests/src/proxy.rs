//! A TCP proxy on 127.0.0.1 between a pool and a real server, for fault
//! injection: refuse new connections, or go silent (blackhole: every connection,
//! open or new, stays open but nothing is forwarded either way — a peer gone
//! without FIN), and cut every open connection; new connections can be made
//! slow (the upstream is dialled only after a delay: a connect that takes that
//! long, as a far or overloaded server's does).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Close new connections at once.
    Refuse,
    /// Forward nothing, close nothing.
    Blackhole,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
    /// How long a new connection waits before the upstream is dialled.
    delay: watch::Sender<Duration>,
    /// Connections accepted so far: the connects a pool made through it.
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// Reads and drops whatever the client sends until cut: a silent peer.
async fn swallow(mut client: TcpStream, mut cut: watch::Receiver<u64>) {
    let mut sink = tokio::io::sink();
    tokio::select! {
        _ = tokio::io::copy(&mut client, &mut sink) => {}
        _ = cut.changed() => {}
    }
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    mut cut: watch::Receiver<u64>,
    delay: Duration,
) {
    // Receivers cloned from the accept loop's remember its old versions: mark
    // the current ones seen, so that only later cuts and mode changes count.
    cut.borrow_and_update();
    let now = *mode.borrow_and_update();
    match now {
        Mode::Refuse => return,
        Mode::Blackhole => return swallow(client, cut).await,
        Mode::Pass => {}
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let mut client = client;
    loop {
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            _ = cut.changed() => return,
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *mode.borrow_and_update();
                if now == Mode::Blackhole {
                    // The server side is dropped; the client keeps an open socket
                    // that never answers.
                    drop(server);
                    return swallow(client, cut).await;
                }
            }
        }
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free port.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        let (cut, cut_rx) = watch::channel(0u64);
        let (delay, delay_rx) = watch::channel(Duration::ZERO);
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let delay = *delay_rx.borrow();
                tokio::spawn(serve(
                    client,
                    upstream,
                    mode_rx.clone(),
                    cut_rx.clone(),
                    delay,
                ));
            }
        });
        Proxy {
            addr,
            mode,
            cut,
            delay,
            accepted,
            task,
        }
    }

    /// How many connections the proxy has accepted: the connects made
    /// through it, whatever became of them.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every new connection waits `delay` before the upstream is dialled.
    pub fn set_connect_delay(&self, delay: Duration) {
        self.delay.send_replace(delay);
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Cuts every connection open now.
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

/// The `host:port` of a server URL (`localhost` as 127.0.0.1), to proxy.
pub fn addr_of(url: &str) -> SocketAddr {
    let u = url::Url::parse(url).expect("a server URL");
    let host = match u.host_str().expect("a host") {
        "localhost" => "127.0.0.1",
        h => h,
    };
    format!("{host}:{}", u.port().expect("a port"))
        .parse()
        .expect("an address")
}

/// `url` pointed at `proxy` instead of its server.
pub fn through(url: &str, proxy: &Proxy) -> String {
    let mut u = url::Url::parse(url).expect("a server URL");
    u.set_host(Some("127.0.0.1")).expect("a host");
    u.set_port(Some(proxy.addr.port())).expect("a port");
    u.to_string()
}
