//! The spike of the reliability suite (issue 24): 200 tasks at once on an
//! empty pool whose connects take 150 ms (a TCP proxy dials the real server
//! only after that delay). Every task is served; the pool never holds more
//! than `max_size` connections and the server never sees more (counted on its
//! side); no more connects than `max_size` are made; and once the spike is
//! over the pool shrinks back to `min_idle` within `idle_timeout` plus a few
//! reaper periods.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_core::{ConnectionPool, Pool};
use pool_sql::{PgManager, PgPool, PgPoolExt};
use unipool_tests::proxy::{addr_of, through, Proxy};

const TASKS: usize = 200;
const MAX: usize = 10;
const MIN_IDLE: usize = 2;
const CONNECT: Duration = Duration::from_millis(150);
const IDLE_TIMEOUT: Duration = Duration::from_secs(1);
const REAP: Duration = Duration::from_millis(100);

/// Samples `count` every few milliseconds until stopped; the largest value.
fn sample<F, Fut>(
    count: F,
) -> (
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<()>,
)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = usize> + Send,
{
    let (stop, max) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let task = {
        let (stop, max) = (stop.clone(), max.clone());
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                max.fetch_max(count().await, SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    (stop, max, task)
}

/// Waits until the pool is back to `min_idle`; how long that took after the
/// spike's last return.
async fn back_to_min_idle(pool: &dyn Pool) -> Duration {
    let start = Instant::now();
    while pool.stats().size > MIN_IDLE {
        assert!(
            start.elapsed() < IDLE_TIMEOUT + Duration::from_secs(3),
            "still {:?} after {:?}",
            pool.stats(),
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_on_an_empty_postgres_pool_with_slow_connects() {
    unipool_tests::require!("postgres");
    let base = unipool_tests::pg::url();
    let proxy = Proxy::start(addr_of(&base)).await;
    proxy.set_connect_delay(CONNECT);
    let app = format!("unipool_spike_{}", std::process::id());
    let url = format!("{}?application_name={app}", through(&base, &proxy));
    let pool: PgPool = ConnectionPool::builder()
        .max_size(MAX)
        .min_idle(MIN_IDLE)
        .idle_timeout(Some(IDLE_TIMEOUT))
        .reap_interval(REAP)
        .acquire_timeout(Duration::from_secs(30))
        .build(PgManager::from_url(&url).unwrap())
        .unwrap();

    let server = unipool_tests::pg::ServerCount::start(&base, &app).await;
    let pool_max = Arc::new(AtomicUsize::new(0));

    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..TASKS as i32 {
        let (pool, pool_max) = (pool.clone(), pool_max.clone());
        set.spawn(async move {
            let rows = pool.query("SELECT $1::int", &[&i]).await.unwrap();
            assert_eq!(rows[0].get::<_, i32>(0), i);
            pool_max.fetch_max(pool.stats().size, SeqCst);
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let served_in = start.elapsed();
    let shrank_in = back_to_min_idle(&pool).await;
    let server_max = server.stop().await;
    let s = pool.stats();
    eprintln!(
        "{TASKS} served in {served_in:?}; back to min_idle {shrank_in:?} later; \
         pool held at most {}, server saw at most {server_max}; {s:?}",
        pool_max.load(SeqCst),
    );
    assert!(pool_max.load(SeqCst) <= MAX);
    assert!(server_max <= MAX, "server saw {server_max}");
    assert!(
        s.created as usize <= MAX,
        "{} connects for a pool of {MAX}",
        s.created
    );
    assert_eq!(s.acquired_total, TASKS as u64);
    assert_eq!(s.create_failures, 0);
    assert!(
        shrank_in <= IDLE_TIMEOUT + 3 * REAP + CONNECT,
        "{shrank_in:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_on_an_empty_redis_pool_with_slow_connects() {
    unipool_tests::require!("redis");
    let base = unipool_tests::redis_server::url();
    let proxy = Proxy::start(addr_of(&base)).await;
    proxy.set_connect_delay(CONNECT);
    let mut config = pool_redis::RedisConfig::default();
    config.pool.max_size = MAX;
    config.pool.min_idle = MIN_IDLE;
    config.pool.idle_timeout = Some(IDLE_TIMEOUT);
    config.pool.reap_interval = REAP;
    config.pool.acquire_timeout = Duration::from_secs(30);
    let pool = pool_redis::RedisPool::connect(&through(&base, &proxy), config)
        .await
        .unwrap();
    let lane = pool.exclusive().clone();
    let pool_max = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..TASKS {
        let (pool, lane, pool_max) = (pool.clone(), lane.clone(), pool_max.clone());
        set.spawn(async move {
            let mut c = pool.lease().await.unwrap();
            let reply: String = redis::cmd("ECHO")
                .arg(format!("s{i}"))
                .query_async(&mut c)
                .await
                .unwrap();
            assert_eq!(reply, format!("s{i}"));
            pool_max.fetch_max(lane.stats().size, SeqCst);
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let shrank_in = back_to_min_idle(&lane).await;
    let s = lane.stats();
    eprintln!(
        "back to min_idle {shrank_in:?} after the spike; pool held at most {}; {s:?}",
        pool_max.load(SeqCst)
    );
    assert!(pool_max.load(SeqCst) <= MAX);
    assert!(
        s.created as usize <= MAX,
        "{} connects for a pool of {MAX}",
        s.created
    );
    // `connect` leased one connection first, to check the server.
    assert!(s.acquired_total >= TASKS as u64, "{s:?}");
    assert!(
        shrank_in <= IDLE_TIMEOUT + 3 * REAP + CONNECT,
        "{shrank_in:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_on_an_empty_websocket_pool_with_slow_connects() {
    let server = unipool_tests::ws_server::start().await;
    let proxy = Proxy::start(server.addr).await;
    proxy.set_connect_delay(CONNECT);
    let mut config = pool_ws::WsConfig::default();
    config.pool.max_size = MAX;
    config.pool.min_idle = MIN_IDLE;
    config.pool.idle_timeout = Some(IDLE_TIMEOUT);
    config.pool.reap_interval = REAP;
    config.pool.acquire_timeout = Duration::from_secs(30);
    config.max_total = MAX;
    let pool = pool_ws::WsPool::new(config).unwrap();
    let url = format!("ws://127.0.0.1:{}/spike", proxy.addr.port());
    let mut set = tokio::task::JoinSet::new();
    for i in 0..TASKS {
        let (pool, url) = (pool.clone(), url.clone());
        set.spawn(async move {
            let reply = pool.send_recv(&url, format!("s{i}")).await.unwrap();
            assert_eq!(reply, pool_ws::Message::text(format!("s{i}")));
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let shrank_in = back_to_min_idle(&pool).await;
    let s = Pool::stats(&pool);
    eprintln!(
        "back to min_idle {shrank_in:?} after the spike; server saw at most {}; {s:?}",
        server.state.max_open()
    );
    assert!(
        server.state.max_open() <= MAX,
        "server saw {}",
        server.state.max_open()
    );
    assert!(
        s.created as usize <= MAX,
        "{} connects for a pool of {MAX}",
        s.created
    );
    assert_eq!(s.acquired_total, TASKS as u64);
    assert!(
        shrank_in <= IDLE_TIMEOUT + 3 * REAP + CONNECT,
        "{shrank_in:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_on_a_cold_http_pool_with_slow_connects() {
    let server = unipool_tests::http_server::start().await;
    let proxy = Proxy::start(server.addr).await;
    proxy.set_connect_delay(CONNECT);
    // HTTP connections are reqwest's: the pool bounds requests in flight, so
    // the server can never see more connections than that.
    let config = pool_http::HttpConfig {
        max_in_flight: MAX,
        max_in_flight_per_host: MAX,
        acquire_timeout: Duration::from_secs(30),
        ..pool_http::HttpConfig::default()
    };
    let pool = pool_http::HttpPool::new("spike", config).unwrap();
    let url = format!("http://127.0.0.1:{}/ok", proxy.addr.port());
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (pool, url) = (pool.clone(), url.clone());
        set.spawn(async move {
            let r = pool.send(pool.get(&url).unwrap()).await.unwrap();
            assert!(r.status().is_success());
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let s = pool.stats();
    eprintln!(
        "{TASKS} served in {:?}; the server accepted {} connections; {s:?}",
        start.elapsed(),
        server.seen.connections()
    );
    assert!(
        server.seen.connections() <= MAX,
        "{} connections",
        server.seen.connections()
    );
    assert_eq!(s.in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_on_an_empty_zeromq_pool_with_slow_connects() {
    let peer = unipool_tests::zmq_peer::ZmqPeer::echo(
        unipool_tests::zmq_peer::Echo::Router,
        Duration::ZERO,
    );
    let peer_addr: SocketAddr = peer.endpoint.trim_start_matches("tcp://").parse().unwrap();
    let proxy = Proxy::start(peer_addr).await;
    proxy.set_connect_delay(CONNECT);
    let mut config = pool_zmq::ZmqConfig::default();
    config.pool.max_size = MAX;
    config.pool.min_idle = MIN_IDLE;
    config.pool.idle_timeout = Some(IDLE_TIMEOUT);
    config.pool.reap_interval = REAP;
    config.pool.acquire_timeout = Duration::from_secs(30);
    config.max_total = MAX;
    let pool = pool_zmq::ZmqPool::new(config).unwrap();
    let socket = pool_zmq::SocketConfig::connect(
        pool_zmq::SocketKind::Req,
        format!("tcp://127.0.0.1:{}", proxy.addr.port()),
    );
    let mut set = tokio::task::JoinSet::new();
    for i in 0..TASKS {
        let (pool, socket) = (pool.clone(), socket.clone());
        set.spawn(async move {
            let msg = format!("s{i}").into_bytes();
            let reply = pool.request(&socket, [msg.clone()]).await.unwrap();
            assert_eq!(reply.last(), Some(&msg));
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let shrank_in = back_to_min_idle(&pool).await;
    let s = Pool::stats(&pool);
    eprintln!("back to min_idle {shrank_in:?} after the spike; {s:?}");
    assert!(
        s.created as usize <= MAX,
        "{} sockets for a pool of {MAX}",
        s.created
    );
    assert_eq!(s.acquired_total, TASKS as u64);
    assert!(
        shrank_in <= IDLE_TIMEOUT + 3 * REAP + CONNECT,
        "{shrank_in:?}"
    );
}

/// The server's count of its open connections (`serverStatus`).
async fn mongo_connections(client: &mongodb::Client) -> usize {
    let status = client
        .database("admin")
        .run_command(mongodb::bson::doc! { "serverStatus": 1 })
        .await
        .unwrap();
    let c = status.get_document("connections").unwrap();
    c.get_i64("current")
        .or_else(|_| c.get_i32("current").map(i64::from))
        .unwrap() as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_on_an_empty_mongo_pool_with_slow_connects() {
    use mongodb::bson::{doc, Document};
    unipool_tests::require!("mongo");
    let server = unipool_tests::mongo_server::Secantus::start();
    let watch = mongodb::Client::with_uri_str(server.url()).await.unwrap();
    watch
        .database("unipool")
        .collection::<Document>("spike")
        .insert_one(doc! { "_id": 1 })
        .await
        .unwrap();
    let baseline = mongo_connections(&watch).await;
    let proxy = Proxy::start(addr_of(&server.url())).await;
    proxy.set_connect_delay(CONNECT);
    let mut config = pool_mongo::MongoConfig::default();
    config.pool.max_size = MAX;
    config.pool.min_idle = MIN_IDLE;
    config.pool.idle_timeout = Some(IDLE_TIMEOUT);
    let pool = pool_mongo::MongoPool::new(&through(&server.url(), &proxy), config).unwrap();
    let coll = pool
        .default_database()
        .await
        .unwrap()
        .collection::<Document>("spike");
    let (stop, server_max, sampler) = {
        let watch = watch.clone();
        sample(move || {
            let watch = watch.clone();
            async move { mongo_connections(&watch).await }
        })
    };
    let pool_max = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (coll, pool, pool_max) = (coll.clone(), pool.clone(), pool_max.clone());
        set.spawn(async move {
            coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
            pool_max.fetch_max(pool.stats().size, SeqCst);
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let served_in = start.elapsed();
    let shrank_in = back_to_min_idle(&pool).await;
    stop.store(true, SeqCst);
    sampler.await.unwrap();
    let s = pool.stats();
    // The driver's monitor adds its own connections (a heartbeat and a
    // round-trip-time one) besides the pool's.
    let seen = server_max.load(SeqCst).saturating_sub(baseline);
    eprintln!(
        "{TASKS} served in {served_in:?}; back to min_idle {shrank_in:?} later; \
         pool held at most {}, server saw at most {seen} more (monitors included); {s:?}",
        pool_max.load(SeqCst)
    );
    assert!(pool_max.load(SeqCst) <= MAX);
    assert!(seen <= MAX + 2, "server saw {seen} more connections");
    assert!(
        s.created as usize <= MAX,
        "{} connects for a pool of {MAX}",
        s.created
    );
    assert_eq!(s.acquired_total, TASKS as u64);
    // The driver's maintenance runs every 500 ms.
    assert!(
        shrank_in <= IDLE_TIMEOUT + Duration::from_millis(1000) + CONNECT,
        "{shrank_in:?}"
    );
}
