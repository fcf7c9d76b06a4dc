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

    let rotated_at = std::time::Instant::now();
    while after.load(SeqCst) < 50 {
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
