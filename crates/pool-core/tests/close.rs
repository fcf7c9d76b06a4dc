//! Guarantee 6: `close()` fails waiting and new gets at once, closes idle
//! connections now and used ones on return, and resolves only when all are closed
//! or at its deadline (sqlx #3217).

mod support;

use std::time::Duration;

use pool_core::{ConnectionPool, HealthStatus, PoolError};
use support::{settle, TestManager};

#[tokio::test(start_paused = true)]
async fn close_fails_waiters_and_new_gets_at_once() {
    let pool = ConnectionPool::builder()
        .max_size(1)
        .build(TestManager::new())
        .unwrap();
    let held = pool.get().await.unwrap();
    let waiter = {
        let p = pool.clone();
        tokio::spawn(async move { p.get().await.map(|_| ()) })
    };
    settle().await;
    let closing = {
        let p = pool.clone();
        tokio::spawn(async move { p.close(Duration::from_secs(10)).await })
    };
    settle().await;
    assert!(matches!(waiter.await.unwrap(), Err(PoolError::Closed)));
    assert!(matches!(pool.get().await, Err(PoolError::Closed)));
    assert!(matches!(pool.try_get().await, Err(PoolError::Closed)));
    assert!(matches!(pool.health(), HealthStatus::Unhealthy { .. }));
    assert!(
        !closing.is_finished(),
        "close resolved with a connection out"
    );
    drop(held);
    assert!(closing.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn idle_connections_close_now_and_used_ones_on_return() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder().max_size(3).build(m).unwrap();
    let (a, b, c) = (
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    );
    drop((b, c));
    assert_eq!(counts.live(), 3);
    let closing = {
        let p = pool.clone();
        tokio::spawn(async move { p.close(Duration::from_secs(10)).await })
    };
    settle().await;
    assert_eq!(counts.live(), 1, "idle connections must close at once");
    drop(a);
    assert_eq!(counts.live(), 0);
    assert!(closing.await.unwrap());
    assert_eq!(pool.stats().size, 0);
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_at_its_deadline() {
    let pool = ConnectionPool::builder().build(TestManager::new()).unwrap();
    let held = pool.get().await.unwrap();
    let start = tokio::time::Instant::now();
    assert!(!pool.close(Duration::from_millis(200)).await);
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    drop(held);
    assert_eq!(pool.stats().size, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn returns_racing_close_are_all_closed() {
    for _ in 0..50 {
        let m = TestManager::new();
        let (counts, _) = m.handles();
        let pool = ConnectionPool::builder().max_size(8).build(m).unwrap();
        let workers: Vec<_> = (0..16)
            .map(|_| {
                let p = pool.clone();
                tokio::spawn(async move {
                    while let Ok(c) = p.get().await {
                        tokio::task::yield_now().await;
                        drop(c);
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(pool.close(Duration::from_secs(10)).await);
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!(counts.live(), 0, "a connection outlived close()");
        assert_eq!(pool.stats().size, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_connect_finishing_after_close_is_closed() {
    let m = TestManager::new().connect_with(support::Act::Slow(Duration::from_millis(50)));
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder().build(m).unwrap();
    let get = {
        let p = pool.clone();
        tokio::spawn(async move { p.get().await.map(|_| ()) })
    };
    settle().await;
    assert!(pool.close(Duration::from_secs(1)).await);
    assert!(matches!(get.await.unwrap(), Err(PoolError::Closed)));
    assert_eq!(counts.live(), 0);
    assert_eq!(counts.max_live(), 1);
}
