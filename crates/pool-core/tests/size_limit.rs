//! Guarantee 1 (never more than `max_size` alive), no over-opening in a burst
//! (bb8 #221, hyper #4134), and a concurrent stress run.

mod support;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use pool_core::ConnectionPool;
use support::{settle, Act, TestManager};

/// `n` tasks that each get a connection and hold it for `hold`.
fn holders(
    pool: &ConnectionPool<TestManager>,
    n: usize,
    hold: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move {
                let c = p.get().await.unwrap();
                tokio::time::sleep(hold).await;
                drop(c);
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_connections_never_exceed_max_size_under_stress() {
    let m = TestManager::new().connect_with(Act::Slow(Duration::from_micros(200)));
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(8)
        .validate_after(Duration::ZERO)
        .acquire_timeout(Duration::from_secs(20))
        .build(m)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut worst = 0;
            while !stop.load(SeqCst) {
                worst = worst.max(pool.stats().size);
                tokio::task::yield_now().await;
            }
            worst
        })
    };
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..200 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let conn = pool.get().await.expect("get within 20s");
                    match x % 40 {
                        0 => conn.discard(),
                        1 => drop(conn.detach()),
                        2..=9 => {
                            tokio::task::yield_now().await;
                            drop(conn);
                        }
                        _ => drop(conn),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, SeqCst);
    let worst_size = monitor.await.unwrap();
    assert!(counts.max_live() <= 8, "max live {}", counts.max_live());
    assert!(worst_size <= 8, "size reached {worst_size}");
    let s = pool.stats();
    assert_eq!(s.in_use, 0);
    assert_eq!(s.waiting, 0);
    assert_eq!(s.acquired_total, 64 * 200);
    // Every connection the pool still counts is alive, and no other is.
    assert_eq!(s.size - s.opening, counts.live());
}

#[tokio::test(start_paused = true)]
async fn a_burst_opens_no_more_than_its_demand() {
    let m = TestManager::new().connect_with(Act::Slow(Duration::from_millis(10)));
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder().max_size(10).build(m).unwrap();
    let gets = holders(&pool, 3, Duration::from_millis(5));
    settle().await;
    assert_eq!(counts.connects(), 3, "three callers, three connects");
    for g in gets {
        g.await.unwrap();
    }
    // The same demand again is served by the idle connections.
    let again: Vec<_> = (0..3)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move { p.get().await.map(|_| ()) })
        })
        .collect();
    for g in again {
        g.await.unwrap().unwrap();
    }
    assert_eq!(counts.connects(), 3);
    assert_eq!(pool.stats().reused, 3);
}

#[tokio::test(start_paused = true)]
async fn a_burst_beyond_max_size_opens_max_size() {
    let m = TestManager::new().connect_with(Act::Slow(Duration::from_millis(10)));
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder().max_size(4).build(m).unwrap();
    let gets = holders(&pool, 40, Duration::from_millis(1));
    for g in gets {
        g.await.unwrap();
    }
    assert_eq!(counts.connects(), 4);
    assert_eq!(counts.max_live(), 4);
    assert_eq!(pool.stats().acquired_total, 40);
}

#[tokio::test(start_paused = true)]
async fn the_idle_fast_path_takes_no_lock() {
    let pool = ConnectionPool::builder()
        .max_size(2)
        .build(TestManager::new())
        .unwrap();
    drop(pool.get().await.unwrap());
    // Every lock of the engine counts, on this (the runtime's only) thread.
    let before = pool_core::util::locks_taken_on_this_thread();
    for _ in 0..1000 {
        drop(pool.get().await.unwrap());
    }
    assert_eq!(pool_core::util::locks_taken_on_this_thread(), before);
    assert_eq!(pool.stats().acquired_fast, 1000);
}

#[tokio::test(start_paused = true)]
async fn lifo_reuses_the_hottest_connection() {
    let pool = ConnectionPool::builder()
        .max_size(3)
        .build(TestManager::new())
        .unwrap();
    let (a, b, c) = (
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    );
    let first = a.id;
    drop((a, b, c));
    for _ in 0..10 {
        assert_eq!(pool.get().await.unwrap().id, first);
    }
}

#[tokio::test(start_paused = true)]
async fn fifo_spreads_use_over_every_connection() {
    let pool = ConnectionPool::builder()
        .max_size(3)
        .queue_mode(pool_core::QueueMode::Fifo)
        .build(TestManager::new())
        .unwrap();
    let (a, b, c) = (
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    );
    drop((a, b, c));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        seen.insert(pool.get().await.unwrap().id);
    }
    assert_eq!(seen.len(), 3, "fifo reused one connection only");
}
