//! pool-mongo against real MongoDB-wire servers (throwaway SecantusDB
//! children, `unipool_tests::mongo_server`).

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use pool_core::{Event, Health, HealthStatus, Observer, Pool, PoolConfig, SharedObserver};
use pool_mongo::{MongoConfig, MongoError, MongoPool};
use unipool_tests::mongo_server::Secantus;

/// The stats once every connection is back: the driver checks a connection
/// in on its pool's worker task, a moment after the operation returned.
async fn settled(pool: &MongoPool) -> pool_core::Stats {
    let started = Instant::now();
    loop {
        let s = pool.stats();
        if s.in_use == 0 || started.elapsed() > Duration::from_secs(5) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn config(max: usize) -> MongoConfig {
    MongoConfig {
        pool: PoolConfig {
            max_size: max,
            acquire_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            ..PoolConfig::default()
        },
        heartbeat_interval: Some(Duration::from_millis(500)),
        ..MongoConfig::default()
    }
}

#[tokio::test]
async fn operations_share_one_client_and_the_stats_count_them() {
    unipool_tests::require!("mongo");
    let server = Secantus::start();
    let pool = MongoPool::new(&server.url(), config(4)).unwrap();
    let users = pool
        .default_database()
        .await
        .unwrap()
        .collection::<Document>("users");
    users
        .insert_one(doc! { "_id": 1, "name": "ada" })
        .await
        .unwrap();
    for _ in 0..20 {
        let found = users.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
        assert_eq!(found.get_str("name").unwrap(), "ada");
    }
    let s = settled(&pool).await;
    // 21 operations, one after the other: one connection, checked out 21
    // times (the first waited for its connect), reused 20 times, all back.
    assert_eq!(s.acquired_total, 21, "{s:?}");
    assert_eq!(s.created, 1, "{s:?}");
    assert_eq!(s.reused, 20, "{s:?}");
    assert!((s.reuse_rate - 20.0 / 21.0).abs() < 1e-9, "{s:?}");
    assert_eq!(
        (s.idle, s.in_use, s.opening, s.waiting),
        (1, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!((s.acquired_waited, s.acquired_fast), (1, 20), "{s:?}");
    assert_eq!(s.wait_time.count, 1, "{s:?}");
    assert_eq!(s.use_time.count, 21, "{s:?}");
    assert_eq!(s.create_time.count, 1, "{s:?}");
    assert!(s.create_time.total > Duration::ZERO, "{s:?}");
    assert_eq!(s.max_size, 4, "{s:?}");
    assert_eq!(pool.health(), HealthStatus::Healthy);
    assert!(pool.close(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn concurrent_operations_never_open_more_than_max_size() {
    unipool_tests::require!("mongo");
    let server = Secantus::start();
    let pool = MongoPool::new(&server.url(), config(3)).unwrap();
    let coll = pool
        .default_database()
        .await
        .unwrap()
        .collection::<Document>("items");
    coll.insert_one(doc! { "_id": 7 }).await.unwrap();
    let peak = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (coll, pool, peak) = (coll.clone(), pool.clone(), peak.clone());
        tasks.spawn(async move {
            for _ in 0..10 {
                coll.find_one(doc! { "_id": 7 }).await.unwrap().unwrap();
                let s = pool.stats();
                peak.fetch_max((s.idle + s.in_use + s.opening) as u64, SeqCst);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let s = settled(&pool).await;
    assert!(s.created <= 3, "{s:?}");
    assert!(peak.load(SeqCst) <= 3, "peak {}", peak.load(SeqCst));
    assert_eq!(s.acquired_total, 321, "{s:?}");
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    assert!(s.reuse_rate > 0.98, "{s:?}");
}

#[tokio::test]
async fn a_server_that_is_down_gives_a_typed_error_within_the_acquire_timeout() {
    unipool_tests::require!("mongo");
    let port = unipool_tests::free_port();
    let pool = MongoPool::new(
        &format!("mongodb://127.0.0.1:{port}/unipool"),
        MongoConfig {
            ping_timeout: Duration::from_secs(10),
            ..config(2)
        },
    )
    .unwrap();
    let started = Instant::now();
    let e = pool.ping().await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(matches!(e, MongoError::Driver { op: "ping", .. }), "{e:?}");
    assert!(e.is_transient(), "{e:?}");
    let shown = e.to_string();
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(shown.to_lowercase().contains("refused"), "{shown}");
    let health = pool.health();
    assert!(
        matches!(&health, HealthStatus::Unhealthy { reason } if reason.contains("refused")),
        "{health:?}"
    );
    assert!(pool.last_error().is_some());
    assert!(pool.stats().create_failures >= 1, "{:?}", pool.stats());
}

#[tokio::test]
async fn the_pool_serves_again_after_its_server_restarts() {
    unipool_tests::require!("mongo");
    let mut server = Secantus::start();
    let pool = MongoPool::new(&server.url(), config(4)).unwrap();
    pool.prewarm().await.unwrap();
    server.kill();
    let down = pool.ping().await;
    assert!(down.is_err(), "{down:?}");
    let health = pool.health();
    assert!(!health.is_healthy(), "{health:?}");
    server.start_again();
    // Back within one heartbeat (500 ms here) plus one connect.
    let started = Instant::now();
    loop {
        if pool.ping().await.is_ok() {
            eprintln!(
                "mongo: served again {:?} after the restart",
                started.elapsed()
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not back");
    }
    assert_eq!(pool.health(), HealthStatus::Healthy);
    let s = pool.stats();
    // The connection the kill broke was closed, not reused.
    assert!(s.closed_broken + s.closed_evicted >= 1, "{s:?}");
}

#[tokio::test]
async fn the_password_appears_in_no_output() {
    unipool_tests::require!("mongo");
    let server = Secantus::start_with_user("app", "s3cretPW").await;
    let good = MongoPool::new(&server.url_with(Some(("app", "s3cretPW"))), config(2)).unwrap();
    good.ping().await.unwrap();
    let bad = MongoPool::new(&server.url_with(Some(("app", "wrongPW9"))), config(2)).unwrap();
    let e = bad.ping().await.unwrap_err();
    let shown = e.to_string();
    assert!(shown.to_lowercase().contains("auth"), "{shown}");
    assert!(!e.is_transient(), "{e:?}");
    let mut outputs = vec![
        shown,
        format!("{e:?}"),
        format!("{good:?} {bad:?}"),
        format!("{:?} {:?}", good.stats(), bad.stats()),
        format!("{} {}", good.health(), bad.health()),
        format!("{:?} {:?}", good.last_error(), bad.last_error()),
        good.target().to_string(),
    ];
    outputs.push(format!("{}", bad.probe(Duration::from_secs(2)).await));
    for o in outputs {
        assert!(!o.contains("s3cretPW") && !o.contains("wrongPW9"), "{o}");
    }
}

/// Counts the engine events the pool translates from the driver's.
#[derive(Default)]
struct Counting {
    created: AtomicU64,
    out: AtomicU64,
    back: AtomicU64,
}

impl Observer for Counting {
    fn on_event(&self, pool: &str, event: Event) {
        assert_eq!(pool, "orders");
        let c = match event {
            Event::Created { .. } => &self.created,
            Event::CheckedOut { .. } => &self.out,
            Event::CheckedIn { .. } => &self.back,
            _ => return,
        };
        c.fetch_add(1, SeqCst);
    }
}

#[tokio::test]
async fn the_observer_sees_the_drivers_pool_events() {
    unipool_tests::require!("mongo");
    let server = Secantus::start();
    let counting = Arc::new(Counting::default());
    let pool = MongoPool::named(
        "orders",
        &server.url(),
        MongoConfig {
            observer: Some(SharedObserver(counting.clone())),
            ..config(2)
        },
    )
    .unwrap();
    let db = pool.default_database().await.unwrap();
    for i in 0..5 {
        db.collection::<Document>("o")
            .insert_one(doc! { "i": i })
            .await
            .unwrap();
    }
    let s = settled(&pool).await;
    assert_eq!(counting.created.load(SeqCst), s.created);
    assert_eq!(counting.out.load(SeqCst), 5);
    assert_eq!(counting.back.load(SeqCst), 5);
}

#[tokio::test]
async fn min_idle_is_opened_by_prewarm_and_close_ends_the_client() {
    unipool_tests::require!("mongo");
    let server = Secantus::start();
    let mut c = config(5);
    c.pool.min_idle = 3;
    let pool = MongoPool::new(&server.url(), c).unwrap();
    assert_eq!(pool.prewarm().await.unwrap(), 3);
    let client = pool.client().await.unwrap();
    assert!(pool.close(Duration::from_secs(5)).await);
    assert!(matches!(
        pool.client().await,
        Err(MongoError::Closed { .. })
    ));
    assert!(client.list_database_names().await.is_err());
    assert!(matches!(pool.health(), HealthStatus::Unhealthy { .. }));
}
