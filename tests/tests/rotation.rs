//! Rotating a PostgreSQL password without a restart, on a throwaway cluster
//! under load: update the pool's password provider, `evict_all()`, and no
//! `get()` made after it receives a connection authenticated with the old
//! password — idle, in use, or connecting at the moment of the rotation.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::{ConnectionPool, Pool};
use pool_sql::{PgManager, PgPool};
use unipool_tests::pg::ThrowawayPg;

/// The server's start time of the backend behind a pooled connection: a
/// connection authenticated before the rotation started before it.
async fn backend_start(pool: &PgPool) -> Result<f64, String> {
    let conn = pool.get().await.map_err(|e| e.to_string())?;
    let rows = conn
        .query(
            "SELECT extract(epoch FROM backend_start)::float8 FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows[0].get(0))
}

/// Lets the load run until `after` counted `n` checkouts after the rotation
/// (within 20 s), then stops it; a task's panic fails the test here.
async fn run_on_until(
    after: &AtomicUsize,
    n: usize,
    stop: &AtomicBool,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let rotated_at = std::time::Instant::now();
    while after.load(SeqCst) < n {
        assert!(
            rotated_at.elapsed() < Duration::from_secs(20),
            "the load stopped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, SeqCst);
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_all_after_a_password_change_hands_out_no_old_connection() {
    unipool_tests::require!("postgres");
    let pg = ThrowawayPg::start(Some("old-secret"));
    let password = Arc::new(Mutex::new("old-secret".to_string()));
    let manager = PgManager::from_url(&pg.url_with(None))
        .unwrap()
        .password_provider({
            let password = password.clone();
            move || password.lock().unwrap().clone()
        });
    let pool: PgPool = ConnectionPool::builder()
        .max_size(8)
        .acquire_timeout(Duration::from_secs(10))
        .build(manager)
        .unwrap();
    let (admin, driver) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(driver);

    // Load: twelve tasks check connections out and in, some kept a while,
    // so that at the rotation some are idle, some in use, some connecting.
    let rotated = Arc::new(Mutex::new(None::<f64>));
    let stop = Arc::new(AtomicBool::new(false));
    let (after, failed_after) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12u64 {
        let (pool, rotated, stop) = (pool.clone(), rotated.clone(), stop.clone());
        let (after, failed_after) = (after.clone(), failed_after.clone());
        tasks.spawn(async move {
            while !stop.load(SeqCst) {
                let since = *rotated.lock().unwrap();
                match backend_start(&pool).await {
                    Ok(started) => {
                        if let Some(rotation) = since {
                            after.fetch_add(1, SeqCst);
                            assert!(
                                started > rotation,
                                "a connection from {started} handed out after the rotation at {rotation}"
                            );
                        }
                    }
                    // Between the ALTER and the provider's update a connect
                    // may use the old password; after evict_all none may fail.
                    Err(e) if since.is_some() => {
                        failed_after.fetch_add(1, SeqCst);
                        panic!("after the rotation: {e}");
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_millis(i % 4)).await;
            }
        });
    }
    let warm = std::time::Instant::now();
    while Pool::stats(&pool).created < 4 {
        assert!(
            warm.elapsed() < Duration::from_secs(20),
            "the load never got going"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    admin
        .batch_execute("ALTER ROLE postgres PASSWORD 'new-secret'")
        .await
        .unwrap();
    let at: f64 = admin
        .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
        .await
        .unwrap()
        .get(0);
    *password.lock().unwrap() = "new-secret".into();
    pool.evict_all();
    *rotated.lock().unwrap() = Some(at);

    run_on_until(&after, 50, &stop, &mut tasks).await;
    assert!(
        after.load(SeqCst) > 50,
        "only {} checkouts after the rotation",
        after.load(SeqCst)
    );
    assert_eq!(failed_after.load(SeqCst), 0);
    let s = Pool::stats(&pool);
    assert!(s.closed_evicted >= 1, "{s:?}");
    // And the old password no longer opens anything.
    let old =
        tokio_postgres::connect(&pg.url_with(Some("old-secret")), tokio_postgres::NoTls).await;
    assert!(old.is_err());
}

/// The server's id of the connection a command ran on: ids only grow, so a
/// connection authenticated before the rotation has a smaller id than a
/// connection opened after it.
async fn client_id(c: &mut impl redis::aio::ConnectionLike) -> Result<i64, String> {
    redis::cmd("CLIENT")
        .arg("ID")
        .query_async(c)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_evict_all_after_a_password_change_uses_no_old_connection() {
    unipool_tests::require!("redis");
    let server = unipool_tests::redis_server::ThrowawayRedis::start(Some("old-secret"));
    let password = Arc::new(Mutex::new("old-secret".to_string()));
    let config = pool_redis::RedisConfig {
        shared_connections: 2,
        password_provider: Some(pool_redis::PasswordSource::new({
            let password = password.clone();
            move || password.lock().unwrap().clone()
        })),
        pool: pool_core::PoolConfig {
            max_size: 6,
            acquire_timeout: Duration::from_secs(10),
            ..Default::default()
        },
        ..Default::default()
    };
    let pool = pool_redis::RedisPool::connect(&server.url_with(None), config)
        .await
        .unwrap();

    // Load on both lanes: leases (kept a while) and shared commands.
    let rotated = Arc::new(Mutex::new(None::<i64>));
    let stop = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8u64 {
        let (pool, rotated, stop, after) =
            (pool.clone(), rotated.clone(), stop.clone(), after.clone());
        tasks.spawn(async move {
            while !stop.load(SeqCst) {
                let mark = *rotated.lock().unwrap();
                let id = if i % 2 == 0 {
                    match pool.lease().await {
                        Ok(mut lease) => client_id(&mut lease).await,
                        Err(e) => Err(e.to_string()),
                    }
                } else {
                    client_id(&mut pool.shared()).await
                };
                match (id, mark) {
                    (Ok(id), Some(mark)) => {
                        after.fetch_add(1, SeqCst);
                        assert!(
                            id > mark,
                            "connection {id} from before the rotation ({mark})"
                        );
                    }
                    (Err(e), Some(_)) => panic!("after the rotation: {e}"),
                    // Between the server's change and the source's update a
                    // new connection may be refused.
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(i % 3)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let admin = redis::Client::open(server.url_with(Some("old-secret"))).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("new-secret")
        .query_async(&mut admin)
        .await
        .unwrap();
    // Every connection opened before this one has a smaller id.
    let marker = redis::Client::open(server.url_with(Some("new-secret"))).unwrap();
    let mark = client_id(&mut marker.get_multiplexed_async_connection().await.unwrap())
        .await
        .unwrap();
    *password.lock().unwrap() = "new-secret".into();
    pool.evict_all().await.unwrap();
    *rotated.lock().unwrap() = Some(mark);

    run_on_until(&after, 100, &stop, &mut tasks).await;
    assert!(Pool::stats(pool.exclusive()).closed_evicted >= 1);
    // The old password opens nothing any more.
    let old = redis::Client::open(server.url_with(Some("old-secret"))).unwrap();
    assert!(old.get_multiplexed_async_connection().await.is_err());
}
