//! A real HTTP server in the test process (hyper, HTTP/1.1 and h2c on one port)
//! that counts what the tests assert on: TCP connections accepted, requests per
//! path, requests in flight and their maximum.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub connections: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub per_path: Mutex<HashMap<String, usize>>,
}

impl Seen {
    pub fn connections(&self) -> usize {
        self.connections.load(SeqCst)
    }
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(SeqCst)
    }
    pub fn hits(&self, path: &str) -> usize {
        self.per_path
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Routes:
/// - `/ok`: 200 `ok`;
/// - `/slow/<ms>`: 200 after `ms` milliseconds;
/// - `/busy/<n>/<status>`: `status` (429 or 503) with `Retry-After: 1` for the
///   first `n` hits, then 200;
/// - anything else: 404.
async fn handle(
    seen: Arc<Seen>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let hits = {
        let mut m = seen.per_path.lock().unwrap();
        let n = m.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    let now = seen.in_flight.fetch_add(1, SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, SeqCst);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let resp = match parts.as_slice() {
        ["ok"] => Response::new(Full::new(Bytes::from_static(b"ok"))),
        ["slow", ms] => {
            let ms: u64 = ms.parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(Full::new(Bytes::from_static(b"slow")))
        }
        ["busy", n, status] => {
            let n: usize = n.parse().unwrap_or(0);
            if hits <= n {
                Response::builder()
                    .status(status.parse::<u16>().unwrap_or(503))
                    .header("retry-after", "1")
                    .body(Full::new(Bytes::from_static(b"busy")))
                    .unwrap()
            } else {
                Response::new(Full::new(Bytes::from_static(b"done")))
            }
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    };
    seen.in_flight.fetch_sub(1, SeqCst);
    Ok(resp)
}

/// Accepts connections for ever, counting them; `wrap` turns a TCP stream into
/// the stream hyper serves (itself, or a TLS session).
async fn accept_loop<S, F, Fut>(listener: TcpListener, seen: Arc<Seen>, wrap: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<S>> + Send,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        seen.connections.fetch_add(1, SeqCst);
        // As real servers do (axum, nginx): without it Nagle holds small h2
        // frames until the peer's delayed ACK, 40 ms stalls in every p99.
        let _ = stream.set_nodelay(true);
        let (s, wrap) = (seen.clone(), wrap.clone());
        tokio::spawn(async move {
            let Some(io) = wrap(stream).await else { return };
            let service = hyper::service::service_fn(move |req| handle(s.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    }
}

/// Starts the server on 127.0.0.1:0 (HTTP/1.1 and h2c).
pub async fn start() -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let task = tokio::spawn(accept_loop(
        listener,
        seen.clone(),
        |s| async move { Some(s) },
    ));
    TestServer { addr, seen, task }
}

/// A raw HTTP/1.1 server that answers one request per connection with a
/// keep-alive response and then closes the socket without saying so: the
/// client's next request on that connection meets a closed socket — the
/// keep-alive race of hyper #2136, made deterministic.
pub async fn start_one_shot() -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            s.connections.fetch_add(1, SeqCst);
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                *s.per_path
                    .lock()
                    .unwrap()
                    .entry("one-shot".into())
                    .or_default() += 1;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok",
                    )
                    .await;
                let _ = stream.flush().await;
                // Give the client time to park the connection as idle, then close.
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    TestServer { addr, seen, task }
}

/// A self-signed certificate for `localhost` / 127.0.0.1, made with the
/// `openssl` command: `(cert PEM, key PEM)`.
pub fn self_signed() -> (Vec<u8>, Vec<u8>) {
    let dir = crate::temp_dir("tls");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        // A leaf, not a CA: webpki refuses a CA certificate as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = std::fs::read(dir.join("cert.pem")).unwrap();
    let key = std::fs::read(dir.join("key.pem")).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    (cert, key)
}

/// The same routes over TLS (ALPN: h2, http/1.1) with the given certificate.
pub async fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> TestServer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let task = tokio::spawn(accept_loop(listener, seen.clone(), move |s| {
        let acceptor = acceptor.clone();
        async move { acceptor.accept(s).await.ok() }
    }));
    TestServer { addr, seen, task }
}

/// A server that can be killed — its listener and every connection gone at
/// once, as when a process dies — and started again on the same address. It
/// runs on a runtime of its own, which `kill` shuts down.
pub struct RestartableServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for RestartableServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestartableServer")
            .field("addr", &self.addr)
            .field("running", &self.runtime.is_some())
            .finish()
    }
}

impl RestartableServer {
    /// Starts on a free port of 127.0.0.1 (routes as [`start`]).
    pub fn start() -> RestartableServer {
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        let mut s = RestartableServer {
            addr,
            seen: Arc::new(Seen::default()),
            runtime: None,
        };
        s.start_again();
        s
    }

    /// Starts (again) on the same address.
    pub fn start_again(&mut self) {
        assert!(self.runtime.is_none(), "already running");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = {
            let _in_rt = rt.enter();
            // SO_REUSEADDR: the killed server's connections linger in
            // TIME_WAIT on this port.
            let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            socket.bind(self.addr).expect("bind the same address again");
            socket.listen(1024).expect("listen")
        };
        rt.spawn(accept_loop(listener, self.seen.clone(), |s| async move {
            Some(s)
        }));
        self.runtime = Some(rt);
    }

    /// Kills it: the listener and every open connection close at once.
    pub fn kill(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RestartableServer {
    fn drop(&mut self) {
        self.kill();
    }
}
