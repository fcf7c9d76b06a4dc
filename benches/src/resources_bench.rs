//! `bench resources`: what a process holds — resident memory and open file
//! descriptors — with a pool against the anti-pattern it replaces, per
//! protocol (PostgreSQL, Redis, HTTP, WebSocket, ZeroMQ, MongoDB), each client kind in
//! a process of its own (`resources-child`):
//! 1000 requests from 10 tasks; peak and end (the pool still alive, its
//! connections idle) memory and descriptors over the process's level before
//! the first client, and connections opened per 1000 requests. For HTTP also
//! seed 003's shape: ten provider instances, each with its own client.
//! Servers run in processes of their own, so their sockets are not counted.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pool_core::{ConnectionPool, Pool};

use crate::report::{Report, Row};
use crate::ws_bench::Server;

const TASKS: usize = 10;
const PER_TASK: usize = 100;

/// What one child measured (bytes and descriptors above its level before
/// the first client).
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    rss_peak: f64,
    rss_end: f64,
    fds_peak: f64,
    fds_end: f64,
    opened: f64,
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// A field of /proc/self/status, in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs `op(task, i)` 100 times in each of 10 tasks.
async fn load<F, Fut>(op: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut set = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let op = op.clone();
        set.spawn(async move {
            for _ in 0..PER_TASK {
                op(t).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("a task of the load");
    }
}

/// `resources-child PROTO CLIENT TARGET`: the load, then one line:
/// `rss_peak rss_end fds_peak fds_end opened`.
pub fn child(proto: &str, client: &str, target: &str) {
    let rt = crate::report::runtime().expect("runtime");
    let (rss0, fds0) = (unipool_tests::rss(), fds());
    let peak_fds = Arc::new(AtomicUsize::new(fds0));
    let held = rt.block_on(async {
        let peak = peak_fds.clone();
        let sampler = tokio::spawn(async move {
            loop {
                peak.fetch_max(fds(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let (opened, end) = workload(proto, client, target).await;
        sampler.abort();
        (opened, end)
    });
    let (opened, (rss_end, fds_end)) = held;
    let out = Held {
        rss_peak: status_bytes("VmHWM").saturating_sub(rss0) as f64,
        rss_end: rss_end.saturating_sub(rss0) as f64,
        fds_peak: peak_fds.load(Ordering::Relaxed).saturating_sub(fds0) as f64,
        fds_end: fds_end.saturating_sub(fds0) as f64,
        opened: opened as f64,
    };
    println!(
        "{} {} {} {} {}",
        out.rss_peak, out.rss_end, out.fds_peak, out.fds_end, out.opened
    );
}

/// The end state: memory in use and descriptors, clients still alive.
fn end() -> (u64, usize) {
    (unipool_tests::rss(), fds())
}

/// Runs the load with one client kind; connections opened (counted by the
/// client, or `None` when the server counts them) and the end state.
async fn workload(proto: &str, client: &str, target: &str) -> (usize, (u64, usize)) {
    let target = target.to_string();
    match (proto, client) {
        ("postgres", "unipool") => {
            let pool: pool_sql::PgPool = ConnectionPool::builder()
                .max_size(TASKS)
                .build(pool_sql::PgManager::from_url(&target).expect("url"))
                .expect("pool");
            let p = pool.clone();
            load(move |_| {
                let p = p.clone();
                async move {
                    use pool_sql::PgPoolExt;
                    p.query("SELECT 1", &[]).await.expect("query");
                }
            })
            .await;
            (pool.stats().created as usize, end())
        }
        ("postgres", _) => {
            load(move |_| {
                let url = target.clone();
                async move {
                    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .expect("connect");
                    let task = tokio::spawn(conn);
                    c.query("SELECT 1", &[]).await.expect("query");
                    drop(c);
                    let _ = task.await;
                }
            })
            .await;
            (TASKS * PER_TASK, end())
        }
        ("redis", "unipool") => {
            let pool = pool_redis::RedisPool::connect(&target, Default::default())
                .await
                .expect("pool");
            let p = pool.clone();
            load(move |_| {
                let p = p.clone();
                async move {
                    let mut c = p.shared();
                    redis::cmd("PING")
                        .query_async::<String>(&mut c)
                        .await
                        .expect("PING");
                }
            })
            .await;
            (Pool::stats(&pool).created as usize, end())
        }
        ("redis", _) => {
            load(move |_| {
                let url = target.clone();
                async move {
                    let mut c = redis::Client::open(url.as_str())
                        .expect("url")
                        .get_multiplexed_async_connection()
                        .await
                        .expect("connect");
                    redis::cmd("PING")
                        .query_async::<String>(&mut c)
                        .await
                        .expect("PING");
                }
            })
            .await;
            (TASKS * PER_TASK, end())
        }
        ("http", "unipool") => {
            let pool = pool_http::HttpPool::new("resources", Default::default()).expect("pool");
            let p = pool.clone();
            load(move |_| {
                let (p, url) = (p.clone(), target.clone());
                async move {
                    let r = p.send(p.get(&url).expect("url")).await.expect("send");
                    r.bytes().await.expect("body");
                }
            })
            .await;
            (0, end())
        }
        ("http", "providers") => {
            // Ten provider instances, each with its own client; any task may
            // call any provider (round robin), as a service's handlers do.
            let clients: Arc<Vec<reqwest::Client>> =
                Arc::new((0..TASKS).map(|_| reqwest::Client::new()).collect());
            let next = Arc::new(AtomicUsize::new(0));
            let all = clients.clone();
            load(move |_| {
                let i = next.fetch_add(1, Ordering::Relaxed) % all.len();
                let (c, url) = (all[i].clone(), target.clone());
                async move {
                    let r = c.get(&url).send().await.expect("send");
                    r.bytes().await.expect("body");
                }
            })
            .await;
            let held = end();
            drop(clients);
            (0, held)
        }
        ("http", _) => {
            load(move |_| {
                let url = target.clone();
                async move {
                    let c = reqwest::Client::new();
                    let r = c.get(&url).send().await.expect("send");
                    r.bytes().await.expect("body");
                }
            })
            .await;
            (0, end())
        }
        ("ws", "unipool") => {
            let mut config = pool_ws::WsConfig::default();
            config.pool.max_size = TASKS;
            let pool = pool_ws::WsPool::new(config).expect("pool");
            let p = pool.clone();
            load(move |_| {
                let (p, url) = (p.clone(), target.clone());
                async move {
                    p.send_recv(&url, "x").await.expect("send_recv");
                }
            })
            .await;
            (0, end())
        }
        ("ws", _) => {
            load(move |_| {
                let url = target.clone();
                async move {
                    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
                        .await
                        .expect("connect");
                    ws.send(pool_ws::Message::text("x")).await.expect("send");
                    ws.next().await.expect("echo").expect("echo");
                    let _ = ws.close(None).await;
                }
            })
            .await;
            (0, end())
        }
        ("zmq", client) => {
            let mut config = pool_zmq::ZmqConfig::default();
            config.pool.max_size = TASKS;
            config.max_total = TASKS;
            let pool = pool_zmq::ZmqPool::new(config).expect("pool");
            let mut cfg = pool_zmq::SocketConfig::connect(pool_zmq::SocketKind::Req, &target);
            let per_call = client != "unipool";
            if per_call {
                // A socket per request, as the code it replaces did (no
                // monitor: that code had none); the context is shared.
                cfg.options.monitor = false;
            }
            let p = pool.clone();
            load(move |_| {
                let (p, cfg) = (p.clone(), cfg.clone());
                async move {
                    let mut sock = p.get(&cfg).await.expect("socket");
                    sock.send([b"x".to_vec()]).await.expect("send");
                    sock.recv().await.expect("reply");
                    if per_call {
                        sock.retire();
                    }
                }
            })
            .await;
            (0, end())
        }
        ("mongo", "unipool") => {
            use mongodb::bson::{doc, Document};
            let mut config = pool_mongo::MongoConfig::default();
            config.pool.max_size = TASKS;
            let pool = pool_mongo::MongoPool::new(&target, config).expect("pool");
            let coll = pool
                .default_database()
                .await
                .expect("database")
                .collection::<Document>("resources");
            load(move |_| {
                let coll = coll.clone();
                async move {
                    coll.find_one(doc! { "_id": 1 }).await.expect("find_one");
                }
            })
            .await;
            (0, end())
        }
        ("mongo", _) => {
            use mongodb::bson::{doc, Document};
            load(move |_| {
                let uri = target.clone();
                async move {
                    // A client per call, shut down after it.
                    let client = mongodb::Client::with_uri_str(&uri).await.expect("client");
                    client
                        .default_database()
                        .expect("a database in the URI")
                        .collection::<Document>("resources")
                        .find_one(doc! { "_id": 1 })
                        .await
                        .expect("find_one");
                    client.shutdown().immediate(true).await;
                }
            })
            .await;
            (0, end())
        }
        other => panic!("no workload {other:?}"),
    }
}

/// Runs one child; its figures.
fn measure(proto: &str, client: &str, target: &str) -> Result<Held, String> {
    let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["resources-child", proto, client, target])
        .output()
        .map_err(|e| format!("resources-child: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match v[..] {
        [rss_peak, rss_end, fds_peak, fds_end, opened] => Ok(Held {
            rss_peak,
            rss_end,
            fds_peak,
            fds_end,
            opened,
        }),
        _ => Err(format!(
            "resources-child {proto} {client} said {text:?} ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let mut http = Server::start_as("http-server")?;
    let mut ws = Server::start_as("ws-server")?;
    let mut zmq = Server::start_as("zmq-server")?;
    let pg = crate::sql_bench::database_url();
    let redis = crate::redis_bench::redis_url();
    // The MongoDB-wire server (its own process) and a client of the parent's
    // that counts the connections it accepted.
    let rt = crate::report::runtime()?;
    let mongo = unipool_tests::mongo_server::Secantus::try_start();
    let mongo_admin = match &mongo {
        Ok(server) => Some(rt.block_on(async {
            let client = mongodb::Client::with_uri_str(server.url())
                .await
                .map_err(|e| e.to_string())?;
            client
                .database("unipool")
                .collection::<mongodb::bson::Document>("resources")
                .insert_one(mongodb::bson::doc! { "_id": 1 })
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(client)
        })?),
        Err(_) => None,
    };
    let mut table = format!(
        "## resources\n\n{} requests from {TASKS} tasks per client kind, each kind in a process \
         of its own (servers in others); memory and descriptors above the process's level \
         before the first client: the peak during the load, and at the end with the pool \
         still holding its idle connections (memory read after a malloc_trim); connections \
         opened per 1000 requests (counted by the server for HTTP, WebSocket, ZeroMQ and \
         MongoDB, whose figure includes the driver's monitoring connections)\n\n\
         | protocol | client | peak memory KiB | end memory KiB | peak fds | end fds | \
         connections / 1000 requests |\n|---|---|---:|---:|---:|---:|---:|\n",
        TASKS * PER_TASK
    );
    let mongo_url = mongo.as_ref().map(|s| s.url()).unwrap_or_default();
    let protos: [(&str, String, &[&str]); 6] = [
        ("postgres", pg, &["unipool", "per-call"]),
        ("redis", redis, &["unipool", "per-call"]),
        (
            "http",
            format!("http://127.0.0.1:{}/ok", http.port),
            &["unipool", "providers", "per-call"],
        ),
        ("ws", ws.url(), &["unipool", "per-call"]),
        (
            "zmq",
            format!("tcp://127.0.0.1:{}", zmq.port),
            &["unipool", "per-call"],
        ),
        ("mongo", mongo_url, &["unipool", "per-call"]),
    ];
    let mut by: Vec<(String, String, Held)> = Vec::new();
    for (proto, target, clients) in protos {
        for &client in clients {
            report.cell(format!("{proto} {client}"));
            let mut server = match proto {
                "http" => Some(&mut http),
                "ws" => Some(&mut ws),
                "zmq" => Some(&mut zmq),
                _ => None,
            };
            if let (Err(e), "mongo") = (&mongo, proto) {
                let _ = writeln!(table, "| {proto} | {client} | skipped: {e} | | | | |");
                continue;
            }
            let before = server.as_mut().map(|s| s.count());
            let mongo_before = match (&mongo_admin, proto) {
                (Some(admin), "mongo") => {
                    Some(rt.block_on(crate::mongo_bench::server_connections(admin))?)
                }
                _ => None,
            };
            let mut h = match measure(proto, client, &target) {
                Ok(h) => h,
                Err(e) if matches!(proto, "postgres" | "redis") => {
                    let _ = writeln!(table, "| {proto} | {client} | skipped: {e} | | | | |");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let (Some(before), Some(server)) = (before, server) {
                h.opened = (server.count() - before) as f64;
            }
            if let (Some(before), Some(admin)) = (mongo_before, &mongo_admin) {
                h.opened =
                    (rt.block_on(crate::mongo_bench::server_connections(admin))? - before) as f64;
            }
            let per_1000 = h.opened * 1000.0 / (TASKS * PER_TASK) as f64;
            let _ = writeln!(
                table,
                "| {proto} | {client} | {:.0} | {:.0} | {:.0} | {:.0} | {per_1000:.1} |",
                h.rss_peak / 1024.0,
                h.rss_end / 1024.0,
                h.fds_peak,
                h.fds_end
            );
            let name = |c: &str| -> &'static str {
                match c {
                    "unipool" => "unipool",
                    "providers" => "client-per-provider",
                    _ => "per-call",
                }
            };
            for (metric, value) in [
                ("rss_bytes_peak", h.rss_peak),
                ("rss_bytes_end", h.rss_end),
                ("fds_peak", h.fds_peak),
                ("fds_end", h.fds_end),
                ("connections_per_1000", per_1000),
            ] {
                report.rows.push(Row {
                    suite: "resources",
                    case: proto.to_string(),
                    pool: name(client),
                    metric,
                    value,
                });
            }
            by.push((proto.to_string(), client.to_string(), h));
        }
    }
    let get = |p: &str, c: &str| by.iter().find(|(a, b, _)| a == p && b == c).map(|x| x.2);
    if let (Some(ours), Some(theirs)) = (get("http", "unipool"), get("http", "providers")) {
        let _ = writeln!(
            table,
            "\nSeed 003's claims, measured (HTTP, one shared pool against ten provider \
             instances with a client each): peak memory {:.0}% lower (claimed 20–40%), \
             connections opened {:.0}% fewer and peak descriptors {:.0}% fewer (claimed 85% \
             fewer sockets).",
            (1.0 - ours.rss_peak / theirs.rss_peak) * 100.0,
            (1.0 - ours.opened / theirs.opened.max(1.0)) * 100.0,
            (1.0 - ours.fds_peak / theirs.fds_peak.max(1.0)) * 100.0,
        );
    }
    report.finish(table);
    Ok(())
}

/// `http-server`: the test suite's HTTP server (`/ok` answers 200) in a
/// process of its own; prints its port, then the connections it accepted for
/// every line on stdin; exits when stdin closes.
pub fn http_server() {
    use std::io::BufRead;
    let rt = crate::report::runtime().expect("runtime");
    let server = rt.block_on(unipool_tests::http_server::start());
    println!("{}", server.addr.port());
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
        println!("{}", server.seen.connections());
    }
}

/// `zmq-server`: the tests' ROUTER echo peer in a process of its own; prints
/// its port, then the REQ sockets it has seen (distinct identities) for every
/// line on stdin; exits when stdin closes.
pub fn zmq_server() {
    use std::io::BufRead;
    let peer = unipool_tests::zmq_peer::ZmqPeer::echo(
        unipool_tests::zmq_peer::Echo::Router,
        Duration::ZERO,
    );
    let port = peer.endpoint.rsplit(':').next().unwrap_or("0").to_string();
    println!("{port}");
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
        let seen = peer.seen.peers.lock().map_or(0, |p| p.len());
        println!("{seen}");
    }
}
