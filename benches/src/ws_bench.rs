//! `bench ws`: pool-ws against a WebSocket opened per message (the floor) and
//! one dedicated WebSocket per task (the ceiling), 32 tasks sending a message
//! and awaiting its echo; and the memory of idle connections: pool-ws's small
//! buffers against a default-configured tokio-tungstenite connection. The
//! echo server runs in a child process (`unipool-benches ws-server`), so the
//! memory measured is the client's only.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use pool_ws::{Message, WsConfig, WsPool};

use crate::report::{ms, Report, Row, Run, Spread, RATIO};

const TASKS: usize = 32;
const IDLE: usize = 1000;

/// The echo server: binds 127.0.0.1:0, prints its port, echoes until stdin
/// closes. Counts handshakes and prints the count on each line of stdin.
pub fn server() {
    let rt = crate::report::runtime().expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr").port());
        let handshakes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = handshakes.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                if line.is_err() {
                    break;
                }
                println!("{}", count.load(std::sync::atomic::Ordering::SeqCst));
            }
            std::process::exit(0);
        });
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let handshakes = handshakes.clone();
            tokio::spawn(async move {
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                else {
                    return;
                };
                handshakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// A server child (`ws-server`, `http-server`): its port, and a way to read
/// how many connections it accepted.
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
    out: BufReader<std::process::ChildStdout>,
}

impl Server {
    fn start() -> Result<Server, String> {
        Server::start_as("ws-server")
    }

    /// Starts `unipool-benches KIND` (a server that prints its port, then a
    /// count for every line on its stdin).
    pub(crate) fn start_as(kind: &str) -> Result<Server, String> {
        let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
            .arg(kind)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{kind}: {e}"))?;
        let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .parse()
            .map_err(|_| format!("{kind} said {line:?}"))?;
        Ok(Server { child, port, out })
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/echo", self.port)
    }

    /// Connections the server accepted so far (WebSocket handshakes).
    pub(crate) fn count(&mut self) -> usize {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        let _ = writeln!(stdin);
        let _ = stdin.flush();
        let mut line = String::new();
        let _ = self.out.read_line(&mut line);
        line.trim().parse().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Pool,
    Dedicated,
    PerMessage,
}

async fn drive(client: Client, pool: &WsPool, url: &str, total: usize) -> Run {
    let per = (total / TASKS).max(1);
    // The ceiling's connections are open before the clock starts, as the
    // pool's are: a run measures round trips, not handshakes.
    let mut opened = Vec::new();
    if let Client::Dedicated = client {
        for _ in 0..TASKS {
            let ws = connect(url, Some(pool.config().clone())).await;
            opened.push(std::sync::Mutex::new(Some(ws)));
        }
    }
    let opened = std::sync::Arc::new(opened);
    Run::measure(TASKS, |i| {
        let (pool, url, opened) = (pool.clone(), url.to_string(), opened.clone());
        async move {
            let mut lat = Vec::with_capacity(per);
            let mut own = opened.get(i).and_then(|m| m.lock().expect("lock").take());
            for n in 0..per {
                let msg = Message::text(format!("{i}:{n}"));
                let s = Instant::now();
                match client {
                    Client::Pool => {
                        let reply = pool.send_recv(&url, msg).await.expect("send_recv");
                        assert!(reply.is_text());
                    }
                    Client::Dedicated => {
                        let ws = own.as_mut().expect("own connection");
                        ws.send(msg).await.expect("send");
                        ws.next().await.expect("reply").expect("reply");
                    }
                    Client::PerMessage => {
                        let mut ws = connect(&url, None).await;
                        ws.send(msg).await.expect("send");
                        ws.next().await.expect("reply").expect("reply");
                        let _ = ws.close(None).await;
                    }
                }
                lat.push(s.elapsed());
            }
            lat
        }
    })
    .await
}

type Plain =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A tokio-tungstenite connection: default-configured, as users open them,
/// or with pool-ws's buffers (for the ceiling, so that the ratio measures the
/// pool and not the buffer sizes).
async fn connect(url: &str, like: Option<WsConfig>) -> Plain {
    let config = like.map(|c| {
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(c.read_buffer_size)
            .write_buffer_size(0)
    });
    tokio_tungstenite::connect_async_with_config(url, config, true)
        .await
        .expect("connect")
        .0
}

/// `ws-memory KIND URL`, in a process of its own: the resident memory that
/// `IDLE` idle connections add, per connection, each after one small round
/// trip (as every idle connection of a pool has; tungstenite fills its read
/// buffer on the first read, so an untouched connection would not show it).
/// KIND is `pool` (pool-ws) or `default` (default-configured tokio-tungstenite).
pub fn memory_child(kind: &str, url: &str) {
    let rt = crate::report::runtime().expect("runtime");
    let per = rt.block_on(async {
        let before = unipool_tests::rss();
        if kind == "pool" {
            let mut config = WsConfig::default();
            config.pool.max_size = IDLE;
            config.max_total = IDLE;
            config.pool.acquire_timeout = Duration::from_secs(60);
            let pool = WsPool::new(config).expect("pool");
            let before = unipool_tests::rss();
            let mut leases = Vec::with_capacity(IDLE);
            for _ in 0..IDLE {
                let mut lease = pool.get(url).await.expect("lease");
                lease.send(Message::text("x")).await.expect("send");
                lease.recv().await.expect("echo");
                leases.push(lease);
            }
            drop(leases);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let after = unipool_tests::rss();
            assert_eq!(pool.stats().pool.idle, IDLE);
            after.saturating_sub(before)
        } else {
            let mut raw = Vec::with_capacity(IDLE);
            for _ in 0..IDLE {
                let mut ws = connect(url, None).await;
                ws.send(Message::text("x")).await.expect("send");
                ws.next().await.expect("echo").expect("echo");
                raw.push(ws);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            unipool_tests::rss().saturating_sub(before)
        }
    });
    println!("{}", per as f64 / IDLE as f64);
}

/// Bytes per idle connection of `kind`, measured in a child process.
fn memory(kind: &str, url: &str) -> Result<f64, String> {
    let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["ws-memory", kind, url])
        .output()
        .map_err(|e| format!("ws-memory: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| {
        format!(
            "ws-memory {kind} said {text:?} ({})",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `ws-cost KIND N`: N round trips of one client kind (`pool` or `dedicated`)
/// against a child echo server, for instruction counting.
pub fn cost(kind: &str, n: usize) {
    let rt = crate::report::runtime().expect("runtime");
    rt.block_on(async {
        let server = Server::start().expect("server");
        let mut config = WsConfig::default();
        config.pool.max_size = TASKS;
        config.max_total = TASKS;
        let pool = WsPool::new(config).expect("pool");
        let client = if kind == "pool" {
            Client::Pool
        } else {
            Client::Dedicated
        };
        let run = drive(client, &pool, &server.url(), n).await;
        println!("{kind}: {:.0} round trips/s", run.rps);
    });
}

async fn bench(quick: bool, report: &mut Report, table: &mut String) -> Result<(), String> {
    let mut server = Server::start()?;
    let url = server.url();
    let (total, runs) = if quick {
        (3_200, 1)
    } else {
        (12_800, report.effort.pick(1, 25, 49))
    };
    let mut config = WsConfig::default();
    config.pool.max_size = TASKS;
    config.max_total = TASKS;
    let pool = WsPool::new(config).map_err(|e| e.to_string())?;
    drive(Client::Pool, &pool, &url, total / 10).await;
    drive(Client::Dedicated, &pool, &url, total / 10).await;
    let (mut pv, mut dv, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut pool_handshakes = 0;
    for i in 0..runs {
        let before = server.count();
        let (p, d) = if i % 2 == 0 {
            let p = drive(Client::Pool, &pool, &url, total).await;
            pool_handshakes += server.count() - before;
            (p, drive(Client::Dedicated, &pool, &url, total).await)
        } else {
            let d = drive(Client::Dedicated, &pool, &url, total).await;
            let before = server.count();
            let p = drive(Client::Pool, &pool, &url, total).await;
            pool_handshakes += server.count() - before;
            (p, d)
        };
        ratios.push(p.rps / d.rps);
        pv.push(p);
        dv.push(d);
    }
    let vs_ceiling = Spread::of(&mut ratios);
    report.spread_rows("ws", "echo", "pool-ws", RATIO, vs_ceiling);
    let (p, d) = (Run::median_of(pv), Run::median_of(dv));
    let floor_total = total / 10;
    let before = server.count();
    let f = drive(Client::PerMessage, &pool, &url, floor_total).await;
    let floor_handshakes = server.count() - before;
    let (mem_pool, mem_default) = (memory("pool", &url)?, memory("default", &url)?);
    let _ = writeln!(
        table,
        "## ws\n\nSend a text message and await its echo, {TASKS} tasks, {total} messages per run, median of {runs} \
         (the floor: {floor_total} messages, each on a default-configured connection); the ceiling's connections have \
         pool-ws's buffers; echo server in a child process. pool-ws vs the ceiling: median of \
         the per-run ratios, the two run back to back in alternating order\n\n| client | round trips/s | p50 ms | p99 ms | connections / 1000 messages | pool-ws vs it |\n|---|---:|---:|---:|---:|---:|"
    );
    let pool_conns = pool_handshakes as f64 * 1000.0 / (total * runs) as f64;
    let floor_conns = floor_handshakes as f64 * 1000.0 / floor_total as f64;
    for (name, key, r, conns, ratio) in [
        ("pool-ws (`send_recv`)", "pool-ws", &p, pool_conns, None),
        (
            "dedicated connection per task (ceiling)",
            "dedicated",
            &d,
            TASKS as f64 * 1000.0 / total as f64,
            Some(vs_ceiling.times()),
        ),
        (
            "connection per message (floor)",
            "per-message",
            &f,
            floor_conns,
            Some(format!("{:.2}x", p.rps / f.rps)),
        ),
    ] {
        let ratio = ratio.unwrap_or_default();
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.3} | {:.3} | {conns:.2} | {ratio} |",
            r.rps,
            ms(r.p50),
            ms(r.p99)
        );
        for (metric, value) in [
            ("round_trips_per_sec", r.rps),
            ("p50_ms", ms(r.p50)),
            ("p99_ms", ms(r.p99)),
            ("connections_per_1000", conns),
        ] {
            report.rows.push(Row {
                suite: "ws",
                case: "echo".into(),
                pool: key,
                metric,
                value,
            });
        }
    }
    let _ = writeln!(
        table,
        "\nMemory: {IDLE} idle connections, each after one round trip, add {:.1} KiB each in pool-ws \
         (4 KiB read buffer, write-through) and {:.1} KiB each as default tokio-tungstenite connections: \
         {:.0}% of the default.",
        mem_pool / 1024.0,
        mem_default / 1024.0,
        mem_pool / mem_default * 100.0
    );
    for (pool, value) in [("pool-ws", mem_pool), ("default-tungstenite", mem_default)] {
        report.rows.push(Row {
            suite: "ws",
            case: "idle".into(),
            pool,
            metric: "rss_bytes_per_connection",
            value,
        });
    }
    Ok(())
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let quick = report.effort.is_quick();
    let mut table = String::new();
    crate::report::runtime()?.block_on(bench(quick, report, &mut table))?;
    report.finish(table);
    Ok(())
}
