//! Faults on real connections, injected by a TCP proxy between the pools and
//! real servers (the machine's PostgreSQL and Redis, in-process HTTP,
//! WebSocket and ZeroMQ peers, a throwaway MongoDB-wire server): a peer that
//! goes silent (no FIN) during a check must not hold the slot (sqlx #4349), a
//! refused server fails fast, and cut connections are replaced — also every
//! connection at once under 100 busy tasks, with no connection ever held by
//! two of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_core::{ConnectionPool, PoolError};
use pool_redis::{RedisConfig, RedisPool};
use pool_sql::{PgManager, PgPool, PgPoolExt};
use unipool_tests::proxy::{addr_of, through, Mode, Proxy};

#[tokio::test]
async fn a_postgres_peer_gone_silent_does_not_hold_the_slot() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let pool: PgPool = ConnectionPool::builder()
        .max_size(1)
        .validate_after(Duration::ZERO)
        .connect_timeout(Duration::from_millis(500))
        .acquire_timeout(Duration::from_secs(5))
        .build(PgManager::from_url(&through(&url, &proxy)).unwrap())
        .unwrap();
    pool.query("SELECT 1", &[]).await.unwrap();

    proxy.set_mode(Mode::Blackhole);
    let start = Instant::now();
    let err = pool.get().await.unwrap_err();
    // The check on the silent connection times out (500 ms) and the connection
    // is closed; the new connect meets the same silence and times out too.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "hung for {:?}",
        start.elapsed()
    );
    assert!(matches!(err, PoolError::ConnectTimeout { .. }), "{err}");
    assert_eq!(pool.stats().closed_check_failed, 1);
    assert_eq!(
        pool.stats().size,
        0,
        "the silent connection still holds the slot"
    );

    proxy.set_mode(Mode::Pass);
    let rows = pool.query("SELECT 2::int4", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 2);
}

#[tokio::test]
async fn a_refused_postgres_fails_fast_and_cut_connections_are_replaced() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let pool: PgPool = ConnectionPool::builder()
        .max_size(2)
        .acquire_timeout(Duration::from_secs(5))
        .build(PgManager::from_url(&through(&url, &proxy)).unwrap())
        .unwrap();
    pool.query("SELECT 1", &[]).await.unwrap();
    proxy.cut_all();
    proxy.set_mode(Mode::Refuse);
    // The cut connection is noticed (closed) and a new one is refused: at once.
    let start = Instant::now();
    let _ = pool.query("SELECT 1", &[]).await;
    let err = pool.query("SELECT 1", &[]).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "{err}");
    proxy.set_mode(Mode::Pass);
    pool.query("SELECT 1", &[]).await.unwrap();
    assert!(pool.stats().created >= 2);
}

#[tokio::test]
async fn a_redis_lease_gone_silent_is_bounded_by_the_command_timeout() {
    unipool_tests::require!("redis");
    let url = unipool_tests::redis_server::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let config = RedisConfig {
        shared_connections: 1,
        command_timeout: Duration::from_millis(300),
        pool: pool_core::PoolConfig {
            max_size: 1,
            connect_timeout: Duration::from_millis(300),
            acquire_timeout: Duration::from_secs(3),
            ..pool_core::PoolConfig::default()
        },
        ..RedisConfig::default()
    };
    let pool = RedisPool::connect(&through(&url, &proxy), config)
        .await
        .unwrap();
    let mut lease = pool.lease().await.unwrap();
    redis::cmd("PING")
        .query_async::<String>(&mut lease)
        .await
        .unwrap();
    proxy.set_mode(Mode::Blackhole);
    let start = Instant::now();
    let r = redis::cmd("PING").query_async::<String>(&mut lease).await;
    assert!(r.is_err());
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(lease);
    // The timed-out lease was discarded, not kept.
    assert_eq!(pool.exclusive().stats().closed_broken, 1);
    proxy.set_mode(Mode::Pass);
    let mut lease = pool.lease().await.unwrap();
    assert_eq!(
        redis::cmd("PING")
            .query_async::<String>(&mut lease)
            .await
            .unwrap(),
        "PONG"
    );
}

/// What a cut under load did: calls that succeeded (also after the cut),
/// calls that failed, and whether a connection was ever held twice at once.
#[derive(Default)]
struct Busy {
    ok: std::sync::atomic::AtomicUsize,
    ok_after_cut: std::sync::atomic::AtomicUsize,
    failed: std::sync::atomic::AtomicUsize,
    cut: std::sync::atomic::AtomicBool,
    /// Server-side ids of the connections held right now.
    held: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl Busy {
    fn hold(&self, id: i64) {
        let fresh = self.held.lock().unwrap().insert(id);
        assert!(fresh, "connection {id} handed out twice at once");
    }
    fn release(&self, id: i64) {
        self.held.lock().unwrap().remove(&id);
    }
    fn done(&self, ok: bool) {
        use std::sync::atomic::Ordering::SeqCst;
        if ok {
            self.ok.fetch_add(1, SeqCst);
            if self.cut.load(SeqCst) {
                self.ok_after_cut.fetch_add(1, SeqCst);
            }
        } else {
            self.failed.fetch_add(1, SeqCst);
        }
    }
    fn report(&self) -> (usize, usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.ok.load(SeqCst),
            self.ok_after_cut.load(SeqCst),
            self.failed.load(SeqCst),
        )
    }
}

/// 100 tasks keep every connection busy while the proxy cuts them all, twice:
/// each task gets a result or an error (none hangs), no connection is held by
/// two tasks at once (told apart by the server's id for it), and the pool
/// refills by itself (calls succeed after the cuts).
async fn cut_under_load<F, Fut>(proxy: &Proxy, busy: Arc<Busy>, call: F)
where
    F: Fn(Arc<Busy>, i64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use std::sync::atomic::Ordering::SeqCst;
    let until = Instant::now() + Duration::from_millis(1500);
    let mut set = tokio::task::JoinSet::new();
    for t in 0..100i64 {
        let (call, busy) = (call.clone(), busy.clone());
        set.spawn(async move {
            let mut i = 0;
            while Instant::now() < until {
                i += 1;
                tokio::time::timeout(Duration::from_secs(10), call(busy.clone(), t * 100_000 + i))
                    .await
                    .expect("a call hung past 10 s");
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    busy.cut.store(true, SeqCst);
    proxy.cut_all();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut_all();
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_postgres_connection_cut_under_100_busy_tasks() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let pool: PgPool = ConnectionPool::builder()
        .max_size(10)
        .acquire_timeout(Duration::from_secs(5))
        .build(PgManager::from_url(&through(&url, &proxy)).unwrap())
        .unwrap();
    let busy = Arc::new(Busy::default());
    let p = pool.clone();
    cut_under_load(&proxy, busy.clone(), move |busy, i| {
        let p = p.clone();
        async move {
            let Ok(c) = p.get().await else {
                return busy.done(false);
            };
            let Ok(row) = c.query_one("SELECT pg_backend_pid()", &[]).await else {
                return busy.done(false);
            };
            let pid = i64::from(row.get::<_, i32>(0));
            busy.hold(pid);
            let v = (i % 1_000_000) as i32;
            let r = c.query_one("SELECT $1::int, pg_sleep(0.002)", &[&v]).await;
            busy.release(pid);
            if let Ok(row) = &r {
                assert_eq!(row.get::<_, i32>(0), v);
            }
            busy.done(r.is_ok());
        }
    })
    .await;
    let (ok, ok_after_cut, failed) = busy.report();
    let s = pool.stats();
    eprintln!("{ok} ok ({ok_after_cut} after the cuts), {failed} failed; {s:?}");
    assert!(failed > 0, "the cuts hit no call");
    assert!(ok_after_cut > 0, "the pool did not refill after the cuts");
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    assert!(s.created > 10, "cut connections were replaced: {s:?}");
    pool.query("SELECT 1", &[]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_lease_cut_under_100_busy_tasks() {
    unipool_tests::require!("redis");
    let url = unipool_tests::redis_server::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let config = RedisConfig {
        command_timeout: Duration::from_secs(2),
        pool: pool_core::PoolConfig {
            max_size: 10,
            acquire_timeout: Duration::from_secs(5),
            ..pool_core::PoolConfig::default()
        },
        ..RedisConfig::default()
    };
    let pool = RedisPool::connect(&through(&url, &proxy), config)
        .await
        .unwrap();
    let busy = Arc::new(Busy::default());
    let p = pool.clone();
    cut_under_load(&proxy, busy.clone(), move |busy, i| {
        let p = p.clone();
        async move {
            let Ok(mut lease) = p.lease().await else {
                return busy.done(false);
            };
            let Ok(id) = redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(&mut lease)
                .await
            else {
                return busy.done(false);
            };
            busy.hold(id);
            let r = redis::cmd("ECHO")
                .arg(i)
                .query_async::<i64>(&mut lease)
                .await;
            busy.release(id);
            if let Ok(v) = r {
                assert_eq!(v, i);
            }
            busy.done(r.is_ok());
        }
    })
    .await;
    let (ok, ok_after_cut, failed) = busy.report();
    let s = pool.exclusive().stats();
    eprintln!("{ok} ok ({ok_after_cut} after the cuts), {failed} failed; {s:?}");
    assert!(failed > 0, "the cuts hit no call");
    assert!(ok_after_cut > 0, "the pool did not refill after the cuts");
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    redis::cmd("PING")
        .query_async::<String>(&mut pool.lease().await.unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_connection_cut_under_100_busy_tasks() {
    let server = unipool_tests::http_server::start().await;
    let proxy = Proxy::start(server.addr).await;
    let config = pool_http::HttpConfig {
        max_in_flight: 10,
        max_in_flight_per_host: 10,
        acquire_timeout: Duration::from_secs(5),
        ..pool_http::HttpConfig::default()
    };
    let pool = pool_http::HttpPool::new("cut", config).unwrap();
    let url = format!("http://127.0.0.1:{}/ok", proxy.addr.port());
    let busy = Arc::new(Busy::default());
    let p = pool.clone();
    cut_under_load(&proxy, busy.clone(), move |busy, _| {
        let (p, url) = (p.clone(), url.clone());
        async move {
            let r = match p.send(p.get(&url).expect("url")).await {
                Ok(r) => r.bytes().await.is_ok(),
                Err(_) => false,
            };
            busy.done(r);
        }
    })
    .await;
    let (ok, ok_after_cut, failed) = busy.report();
    let s = pool.stats();
    eprintln!("{ok} ok ({ok_after_cut} after the cuts), {failed} failed; {s:?}");
    // GETs are idempotent: pool-http retries the attempts the cuts broke,
    // so callers may see none of them.
    assert!(failed > 0 || s.retries > 0, "the cuts hit no call: {s:?}");
    assert!(ok_after_cut > 0, "the pool did not recover after the cuts");
    assert_eq!(s.in_flight, 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_websocket_connection_cut_under_100_busy_tasks() {
    let server = unipool_tests::ws_server::start().await;
    let proxy = Proxy::start(server.addr).await;
    let mut config = pool_ws::WsConfig::default();
    config.pool.max_size = 10;
    config.max_total = 10;
    config.pool.acquire_timeout = Duration::from_secs(5);
    let pool = pool_ws::WsPool::new(config).unwrap();
    let url = format!("ws://127.0.0.1:{}/cut", proxy.addr.port());
    let busy = Arc::new(Busy::default());
    let p = pool.clone();
    cut_under_load(&proxy, busy.clone(), move |busy, i| {
        let (p, url) = (p.clone(), url.clone());
        async move {
            let ok = match p.send_recv(&url, format!("m{i}")).await {
                Ok(reply) => {
                    assert_eq!(reply, pool_ws::Message::text(format!("m{i}")));
                    true
                }
                Err(_) => false,
            };
            busy.done(ok);
        }
    })
    .await;
    let (ok, ok_after_cut, failed) = busy.report();
    let s = pool_core::Pool::stats(&pool);
    eprintln!(
        "{ok} ok ({ok_after_cut} after the cuts), {failed} failed; server saw at most {}; {s:?}",
        server.state.max_open()
    );
    assert!(failed > 0, "the cuts hit no call");
    assert!(ok_after_cut > 0, "the pool did not refill after the cuts");
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    assert!(
        server.state.max_open() <= 10,
        "server saw {}",
        server.state.max_open()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_zeromq_connection_cut_under_100_busy_tasks() {
    let peer = unipool_tests::zmq_peer::ZmqPeer::echo(
        unipool_tests::zmq_peer::Echo::Router,
        Duration::ZERO,
    );
    let peer_addr: SocketAddr = peer.endpoint.trim_start_matches("tcp://").parse().unwrap();
    let proxy = Proxy::start(peer_addr).await;
    let mut config = pool_zmq::ZmqConfig::default();
    config.pool.max_size = 10;
    config.max_total = 10;
    config.pool.acquire_timeout = Duration::from_secs(5);
    // A request whose connection was cut gets no reply: it ends at this
    // deadline and its socket is retired.
    config.request_timeout = Duration::from_millis(500);
    let pool = pool_zmq::ZmqPool::new(config).unwrap();
    let socket = pool_zmq::SocketConfig::connect(
        pool_zmq::SocketKind::Req,
        format!("tcp://127.0.0.1:{}", proxy.addr.port()),
    );
    let busy = Arc::new(Busy::default());
    let p = pool.clone();
    cut_under_load(&proxy, busy.clone(), move |busy, i| {
        let (p, socket) = (p.clone(), socket.clone());
        async move {
            let msg = i.to_string().into_bytes();
            let ok = match p.request(&socket, [msg.clone()]).await {
                Ok(reply) => {
                    assert_eq!(reply.last(), Some(&msg), "a reply went to another caller");
                    true
                }
                Err(_) => false,
            };
            busy.done(ok);
        }
    })
    .await;
    let (ok, ok_after_cut, failed) = busy.report();
    let s = pool_core::Pool::stats(&pool);
    eprintln!("{ok} ok ({ok_after_cut} after the cuts), {failed} failed; {s:?}");
    assert!(ok_after_cut > 0, "the pool did not recover after the cuts");
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
}

/// A MongoDB pool through the fault proxy to a throwaway SecantusDB server,
/// with 100 documents `{_id: 0..100}`.
async fn mongo_through_proxy(
    max: usize,
) -> (
    unipool_tests::mongo_server::Secantus,
    Proxy,
    pool_mongo::MongoPool,
) {
    let server = unipool_tests::mongo_server::Secantus::start();
    let direct = mongodb::Client::with_uri_str(server.url()).await.unwrap();
    let docs: Vec<_> = (0..100).map(|i| mongodb::bson::doc! { "_id": i }).collect();
    direct
        .database("unipool")
        .collection::<mongodb::bson::Document>("faults")
        .insert_many(docs)
        .await
        .unwrap();
    direct.shutdown().immediate(true).await;
    let proxy = Proxy::start(addr_of(&server.url())).await;
    let mut config = pool_mongo::MongoConfig::default();
    config.pool.max_size = max;
    config.pool.acquire_timeout = Duration::from_secs(5);
    config.pool.connect_timeout = Duration::from_secs(1);
    config.heartbeat_interval = Some(Duration::from_millis(500));
    config.ping_timeout = Duration::from_secs(1);
    let pool = pool_mongo::MongoPool::new(&through(&server.url(), &proxy), config).unwrap();
    (server, proxy, pool)
}

#[tokio::test]
async fn a_mongo_server_gone_silent_is_bounded_by_the_ping_timeout() {
    unipool_tests::require!("mongo");
    let (_server, proxy, pool) = mongo_through_proxy(2).await;
    pool.prewarm().await.unwrap();
    proxy.set_mode(Mode::Blackhole);
    let start = Instant::now();
    let e = pool.ping().await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "hung for {:?}",
        start.elapsed()
    );
    assert!(
        matches!(e, pool_mongo::MongoError::Timeout { op: "ping", .. }),
        "{e}"
    );
    assert!(!pool_core::Health::health(&pool).is_healthy());
    proxy.set_mode(Mode::Pass);
    let start = Instant::now();
    while pool.ping().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "not back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mongo_connection_cut_under_100_busy_tasks() {
    unipool_tests::require!("mongo");
    let (_server, proxy, pool) = mongo_through_proxy(10).await;
    let coll = pool
        .default_database()
        .await
        .unwrap()
        .collection::<mongodb::bson::Document>("faults");
    let busy = Arc::new(Busy::default());
    cut_under_load(&proxy, busy.clone(), move |busy, i| {
        let coll = coll.clone();
        async move {
            let id = (i % 100) as i32;
            let ok = match coll.find_one(mongodb::bson::doc! { "_id": id }).await {
                Ok(found) => {
                    let got = found.expect("the document").get_i32("_id").unwrap();
                    assert_eq!(got, id, "a reply went to another caller");
                    true
                }
                Err(_) => false,
            };
            busy.done(ok);
        }
    })
    .await;
    let (ok, ok_after_cut, failed) = busy.report();
    // The driver checks connections in on its own task: wait for it.
    let start = Instant::now();
    let s = loop {
        let s = pool.stats();
        if (s.in_use, s.waiting) == (0, 0) || start.elapsed() > Duration::from_secs(10) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("{ok} ok ({ok_after_cut} after the cuts), {failed} failed; {s:?}");
    assert!(ok_after_cut > 0, "the pool did not recover after the cuts");
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    assert!(s.size <= 10, "{s:?}");
    assert!(
        s.closed_broken + s.closed_evicted > 0,
        "the cut connections were closed: {s:?}"
    );
}

/// A caller that gives up while its query is on the wire to a peer gone
/// silent must not leave that connection to the next caller: its next
/// checkout waits for the pending reply under the pool's deadline (not the
/// caller's), and the silent connection is closed instead of handed out.
#[tokio::test]
async fn a_query_cancelled_on_a_silent_postgres_does_not_poison_the_next_caller() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let pool: PgPool = ConnectionPool::builder()
        .max_size(1)
        .connect_timeout(Duration::from_millis(500))
        .acquire_timeout(Duration::from_secs(5))
        .build(PgManager::from_url(&through(&url, &proxy)).unwrap())
        .unwrap();
    pool.query("SELECT 1", &[]).await.unwrap();

    // Just used, so no check on checkout: the query goes out and hangs.
    cancel_a_query_while_silent(&pool, &proxy, Duration::from_millis(200)).await;

    // The connection is idle for less than `validate_after`: without the
    // pending reply remembered, it would be handed out and hang again.
    next_caller_is_served(&pool, "the next caller waited behind the silent connection").await;
    assert_eq!(pool.stats().closed_check_failed, 1, "{:?}", pool.stats());
}

/// A caller that gives up while the pool checks an idle connection (past
/// `validate_after`) on a peer gone silent: the half-done check must not
/// leave that connection to the next caller, who would otherwise get it
/// without a check (it was just returned) and wait behind the probe.
#[tokio::test]
async fn a_check_cancelled_on_a_silent_postgres_does_not_poison_the_next_caller() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let pool: PgPool = ConnectionPool::builder()
        .max_size(1)
        .validate_after(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(500))
        .acquire_timeout(Duration::from_secs(5))
        .build(PgManager::from_url(&through(&url, &proxy)).unwrap())
        .unwrap();
    pool.query("SELECT 1", &[]).await.unwrap();
    // Idle well past `validate_after` (its clock is coarse): the next
    // checkout checks the connection.
    tokio::time::sleep(Duration::from_millis(600)).await;

    cancel_a_query_while_silent(&pool, &proxy, Duration::from_millis(100)).await;

    next_caller_is_served(&pool, "the next caller waited behind the cancelled check").await;
}

/// A query its caller gives up on after `patience`, while the proxy swallows
/// all traffic; traffic passes again afterwards.
async fn cancel_a_query_while_silent(pool: &PgPool, proxy: &Proxy, patience: Duration) {
    proxy.set_mode(Mode::Blackhole);
    let cancelled = tokio::time::timeout(patience, pool.query("SELECT 1", &[])).await;
    assert!(
        cancelled.is_err(),
        "the silent peer answered: {cancelled:?}"
    );
    proxy.set_mode(Mode::Pass);
}

/// The next query is answered, within 2 s (under a 3 s deadline that
/// fails with `hung`).
async fn next_caller_is_served(pool: &PgPool, hung: &str) {
    let start = Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(3), pool.query("SELECT 2::int4", &[]))
        .await
        .expect(hung);
    assert_eq!(next.unwrap()[0].get::<_, i32>(0), 2);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
