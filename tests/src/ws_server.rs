//! A real WebSocket server in the test process (tokio-tungstenite) that
//! counts what the tests assert on, server side: connections open now and at
//! most (in all and per path), handshakes, Close frames received,
//! subscriptions. It can stop answering pings, close every connection, refuse
//! `/private` with 401, and stop and start again on the same port.
//!
//! Routes: any path echoes text and binary messages; the text `SUB` starts a
//! stream of `tick <n>` messages every 10 ms on that connection; `/private`
//! needs `Authorization: Bearer let-me-in`; `/pinger` pings every 20 ms and
//! counts the pongs; `/twice` follows each echo with the text `extra`, in
//! the same write. A client's Close can be answered late
//! (`close_delay_ms`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

/// What the server saw.
#[derive(Debug)]
pub struct State {
    pub open: AtomicUsize,
    pub max_open: AtomicUsize,
    pub handshakes: AtomicUsize,
    pub close_frames: AtomicUsize,
    pub subscriptions: AtomicUsize,
    pub messages: AtomicUsize,
    /// Pongs received (on `/pinger`, which pings every 20 ms).
    pub pongs: AtomicUsize,
    /// Handshakes refused with 401.
    pub refused: AtomicUsize,
    /// While set, connections are not read: pings go unanswered.
    pub mute: AtomicBool,
    /// How long the server takes (in ms) to answer a client's Close frame;
    /// the connection counts as open until then.
    pub close_delay_ms: AtomicU64,
    per_path: Mutex<HashMap<String, (usize, usize)>>,
    kill: broadcast::Sender<()>,
}

impl State {
    pub fn open(&self) -> usize {
        self.open.load(SeqCst)
    }
    pub fn max_open(&self) -> usize {
        self.max_open.load(SeqCst)
    }
    /// The most connections ever open at once on `path`.
    pub fn max_open_on(&self, path: &str) -> usize {
        self.per_path.lock().unwrap().get(path).map_or(0, |p| p.1)
    }
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(SeqCst)
    }
    /// Sends a Close frame on every open connection.
    pub fn close_all(&self) {
        let _ = self.kill.send(());
    }
}

/// A running server; stops (and drops its connections) when dropped.
pub struct WsServer {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    task: Option<tokio::task::JoinHandle<()>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl WsServer {
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Stops accepting and drops every connection (no Close frame: a crash).
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let _ = self.state.kill.send(());
    }

    /// Starts again on the same port.
    pub async fn start_again(&mut self) {
        self.stop();
        let listener = bind_retrying(self.addr).await;
        self.task = Some(tokio::spawn(accept_loop(
            listener,
            self.state.clone(),
            self.tls.clone(),
        )));
    }
}

impl std::fmt::Debug for WsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr} again");
}

/// Starts the server on 127.0.0.1:0.
pub async fn start() -> WsServer {
    start_with(None).await
}

/// The same over TLS with the given certificate and key (PEM).
pub async fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> WsServer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
}

async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> WsServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(State {
        open: AtomicUsize::new(0),
        max_open: AtomicUsize::new(0),
        handshakes: AtomicUsize::new(0),
        close_frames: AtomicUsize::new(0),
        subscriptions: AtomicUsize::new(0),
        messages: AtomicUsize::new(0),
        pongs: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        mute: AtomicBool::new(false),
        close_delay_ms: AtomicU64::new(0),
        per_path: Mutex::new(HashMap::new()),
        kill: broadcast::channel(16).0,
    });
    let task = tokio::spawn(accept_loop(listener, state.clone(), tls.clone()));
    WsServer {
        addr,
        state,
        task: Some(task),
        tls,
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let _ = tcp.set_nodelay(true);
        let (state, tls) = (state.clone(), tls.clone());
        conns.spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(s) = acceptor.accept(tcp).await {
                        serve(s, state).await;
                    }
                }
                None => serve(tcp, state).await,
            }
        });
        // Finished connections are reaped; aborting this loop (stop) drops
        // the set and with it every connection.
        while conns.try_join_next().is_some() {}
    }
}

async fn serve<S>(stream: S, state: Arc<State>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut path = String::new();
    // The signature tungstenite's `accept_hdr_async` takes.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().path().to_string();
        let signed_in = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v == "Bearer let-me-in");
        if path == "/private" && !signed_in {
            state.refused.fetch_add(1, SeqCst);
            let mut refused = ErrorResponse::new(Some("sign in first".into()));
            *refused.status_mut() = StatusCode::UNAUTHORIZED;
            return Err(refused);
        }
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    state.handshakes.fetch_add(1, SeqCst);
    let now = state.open.fetch_add(1, SeqCst) + 1;
    state.max_open.fetch_max(now, SeqCst);
    {
        let mut per = state.per_path.lock().unwrap();
        let p = per.entry(path.clone()).or_default();
        p.0 += 1;
        p.1 = p.1.max(p.0);
    }
    let mut kill = state.kill.subscribe();
    let mut ticking = false;
    let mut tick = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let pinging = path == "/pinger";
    let twice = path == "/twice";
    let mut pinger = tokio::time::interval(Duration::from_millis(20));
    loop {
        if state.mute.load(SeqCst) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(5)) => continue,
                _ = kill.recv() => break,
            }
        }
        tokio::select! {
            _ = kill.recv() => {
                let _ = ws.close(None).await;
                break;
            }
            _ = pinger.tick(), if pinging => {
                if ws.send(Message::Ping(b"srv".to_vec().into())).await.is_err() {
                    break;
                }
            }
            _ = ticker.tick(), if ticking => {
                tick += 1;
                if ws.send(Message::text(format!("tick {tick}"))).await.is_err() {
                    break;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "SUB" => {
                    state.subscriptions.fetch_add(1, SeqCst);
                    ticking = true;
                }
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    state.messages.fetch_add(1, SeqCst);
                    if state.mute.load(SeqCst) {
                        continue;
                    }
                    if twice {
                        // The echo and one more message in one write, so that
                        // the client reads both at once.
                        let sent = ws.feed(m).await.is_ok()
                            && ws.feed(Message::text("extra")).await.is_ok()
                            && ws.flush().await.is_ok();
                        if !sent {
                            break;
                        }
                        continue;
                    }
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Pong(_))) => {
                    state.pongs.fetch_add(1, SeqCst);
                }
                Some(Ok(Message::Close(_))) => {
                    state.close_frames.fetch_add(1, SeqCst);
                    let delay = state.close_delay_ms.load(SeqCst);
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    // tungstenite answers the Close; drive it out.
                    let _ = ws.flush().await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    state.open.fetch_sub(1, SeqCst);
    state.per_path.lock().unwrap().get_mut(&path).unwrap().0 -= 1;
}
