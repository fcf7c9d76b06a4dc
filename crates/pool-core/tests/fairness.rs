//! Guarantee 3: bounded fairness. A parked waiter older than `fairness_window` is
//! never overtaken; a younger one may be (that barging is what avoids the lock
//! convoy of strict hand-off); `fairness_window = 0` is strict FIFO.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::ConnectionPool;
use support::{settle, TestManager};

fn pool(window: Duration) -> ConnectionPool<TestManager> {
    ConnectionPool::builder()
        .max_size(1)
        .fairness_window(window)
        .build(TestManager::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn strict_fifo_when_the_window_is_zero() {
    let pool = pool(Duration::ZERO);
    let held = pool.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..6)
        .map(|i| {
            let (p, order) = (pool.clone(), order.clone());
            let t = tokio::spawn(async move {
                let c = p.get().await.unwrap();
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
                drop(c);
            });
            t
        })
        .collect();
    // Park them one by one, in order.
    settle().await;
    assert_eq!(pool.stats().waiting, 6);
    drop(held);
    // A running task arriving right after the return must queue behind them.
    assert!(pool.try_get().await.is_err(), "barged past a FIFO queue");
    let late = pool.get().await.unwrap();
    order.lock().unwrap().push(99);
    drop(late);
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5, 99]);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_older_than_the_window_is_not_overtaken() {
    let pool = pool(Duration::from_millis(1));
    let held = pool.get().await.unwrap();
    let waiter = {
        let p = pool.clone();
        tokio::spawn(async move { p.get().await.map(|c| c.id) })
    };
    settle().await;
    tokio::time::advance(Duration::from_millis(2)).await;
    let id = held.id;
    drop(held);
    // We run before the waiter is polled again, and still must not get it.
    assert!(pool.try_get().await.is_err());
    assert_eq!(waiter.await.unwrap().unwrap(), id);
}

#[tokio::test(start_paused = true)]
async fn a_young_waiter_may_be_overtaken() {
    let pool = pool(Duration::from_millis(10));
    let held = pool.get().await.unwrap();
    let waiter = {
        let p = pool.clone();
        tokio::spawn(async move { p.get().await.map(|c| c.id) })
    };
    settle().await;
    drop(held);
    // Within the window a running task takes the idle connection at once...
    let barged = pool
        .try_get()
        .await
        .expect("barging allowed within the window");
    drop(barged);
    // ...and the waiter is served right after.
    assert!(waiter.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_hot_loop_cannot_starve_a_waiter_past_the_window() {
    let window = Duration::from_millis(1);
    let pool = pool(window);
    let started = tokio::time::Instant::now();
    let waiter = {
        let p = pool.clone();
        tokio::spawn(async move {
            let c = p.get().await.unwrap();
            drop(c);
            tokio::time::Instant::now()
        })
    };
    // A running task that takes and returns the only connection over and over,
    // 100 µs of virtual time per turn, never leaving the runtime idle.
    let mut turns = 0;
    while !waiter.is_finished() {
        if let Ok(c) = pool.try_get().await {
            tokio::time::advance(Duration::from_micros(100)).await;
            drop(c);
        }
        tokio::task::yield_now().await;
        turns += 1;
        assert!(turns < 1000, "waiter starved");
    }
    let served_at = waiter.await.unwrap();
    let waited = served_at - started;
    assert!(
        waited <= window + Duration::from_micros(300),
        "waited {waited:?}, window {window:?}"
    );
}
