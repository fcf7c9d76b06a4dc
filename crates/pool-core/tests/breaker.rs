//! The circuit breaker on paused time: open after `breaker_threshold` failed
//! connects in a row, fail fast while open, one probe after `breaker_open`,
//! closed by its success, open again after its failure.

mod support;

use std::time::Duration;

use pool_core::{ConnectionPool, HealthStatus, PoolError};
use support::{settle, Act, TestManager};
use tokio::time::Instant;

fn pool(manager: TestManager, max: usize) -> ConnectionPool<TestManager> {
    ConnectionPool::builder()
        .max_size(max)
        .acquire_timeout(Duration::from_secs(30))
        .breaker_threshold(3)
        .breaker_open(Duration::from_secs(5))
        .build(manager)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn open_half_open_closed() {
    let manager = TestManager::new().connect_with(Act::Fail);
    let (counts, script) = manager.handles();
    let pool = pool(manager, 2);
    for _ in 0..3 {
        let e = pool.get().await.unwrap_err();
        assert!(matches!(e, PoolError::Backend(_)), "{e:?}");
    }
    // Open: no connect is tried, the caller learns why at once.
    let start = Instant::now();
    let e = pool.get().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "fails fast, no waiting");
    assert_eq!(counts.connects(), 3);
    let PoolError::CircuitOpen {
        failures,
        last_error,
        retry_in,
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(*failures, 3);
    assert_eq!(last_error.as_ref().unwrap().to_string(), "connect refused");
    assert_eq!(*retry_in, Duration::from_secs(5));
    assert!(
        e.to_string()
            .contains("circuit open after 3 failed connects in a row"),
        "{e}"
    );
    assert!(
        matches!(pool.health(), HealthStatus::Unhealthy { reason } if reason.contains("circuit open"))
    );
    assert!(pool.try_get().await.is_err());
    assert_eq!(counts.connects(), 3);
    assert_eq!(pool.stats().circuits_open, 1);

    // Half-open, the probe fails: open again for another period.
    tokio::time::advance(Duration::from_secs(5)).await;
    let e = pool.get().await.unwrap_err();
    assert!(
        matches!(e, PoolError::Backend(_)),
        "the probe's own error: {e:?}"
    );
    assert_eq!(counts.connects(), 4);
    let e = pool.get().await.unwrap_err();
    assert!(
        matches!(e, PoolError::CircuitOpen { failures: 4, .. }),
        "{e:?}"
    );

    // Half-open, the probe succeeds: closed, connects as usual.
    tokio::time::advance(Duration::from_secs(5)).await;
    script.lock().unwrap().connect = Act::Ok;
    let a = pool.get().await.unwrap();
    assert_eq!(pool.health(), HealthStatus::Healthy);
    assert_eq!(pool.stats().circuits_open, 0);
    let b = pool.get().await.unwrap();
    assert_eq!(counts.connects(), 6);
    drop((a, b));
}

/// While the probe connect runs, every other `get()` still fails at once.
#[tokio::test(start_paused = true)]
async fn one_probe_at_a_time() {
    let manager = TestManager::new().connect_with(Act::Fail);
    let (counts, script) = manager.handles();
    let pool = pool(manager, 4);
    for _ in 0..3 {
        pool.get().await.unwrap_err();
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    script.lock().unwrap().connect = Act::Slow(Duration::from_secs(1));
    let probe = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.id) }
    });
    settle().await;
    let start = Instant::now();
    let e = pool.get().await.unwrap_err();
    assert!(matches!(e, PoolError::CircuitOpen { .. }), "{e:?}");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(probe.await.unwrap().is_ok());
    assert_eq!(counts.connects(), 4, "one probe, no other connect");
}

/// Callers already waiting when the breaker opens fail then, not at their
/// `acquire_timeout`.
#[tokio::test(start_paused = true)]
async fn waiters_fail_when_it_opens() {
    let manager = TestManager::new().connect_with(Act::Slow(Duration::from_millis(100)));
    let (_counts, script) = manager.handles();
    let pool = pool(manager, 1);
    let held = pool.get().await.unwrap();
    drop(held.detach());
    script.lock().unwrap().connect = Act::Fail;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let pool = pool.clone();
        set.spawn(async move { pool.get().await.map(|_| ()) });
    }
    let mut open = 0;
    while let Some(r) = set.join_next().await {
        match r.unwrap().unwrap_err() {
            PoolError::CircuitOpen { .. } => open += 1,
            PoolError::Backend(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(open >= 3, "{open} refused by the open breaker");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn off_by_default() {
    let manager = TestManager::new().connect_with(Act::Fail);
    let (counts, _) = manager.handles();
    let pool = ConnectionPool::builder()
        .max_size(2)
        .build(manager)
        .unwrap();
    for _ in 0..10 {
        assert!(matches!(
            pool.get().await.unwrap_err(),
            PoolError::Backend(_)
        ));
    }
    assert_eq!(counts.connects(), 10);
}
