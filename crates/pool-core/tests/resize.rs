//! Resizing at run time, on paused time: growing serves waiters at once,
//! shrinking closes idle connections at once and surplus ones on return,
//! under load with the size checked every millisecond; `min_idle`; the
//! keyed pool's per-key and total limits.

mod support;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use pool_core::{ConfigError, ConnectionPool, KeyedPool};
use support::{settle, Act, Rng, TestManager};

const MS: Duration = Duration::from_millis(1);

fn pool(max: usize, grow: usize, manager: TestManager) -> ConnectionPool<TestManager> {
    ConnectionPool::builder()
        .max_size(max)
        .grow_limit(grow)
        .acquire_timeout(Duration::from_secs(30))
        .build(manager)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn growing_serves_a_waiter_at_once_and_shrinking_closes_idle_at_once() {
    let manager = TestManager::new().connect_with(Act::Slow(10 * MS));
    let (counts, _) = manager.handles();
    let pool = pool(1, 8, manager);
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move {
            let start = tokio::time::Instant::now();
            let _c = pool.get().await.unwrap();
            start.elapsed()
        }
    });
    settle().await;
    tokio::time::sleep(50 * MS).await;
    assert_eq!(pool.stats().waiting, 1, "still waiting at max_size 1");
    pool.set_max_size(2).unwrap();
    let waited = waiter.await.unwrap();
    assert_eq!(waited, 60 * MS, "served one connect after the resize");
    drop(held);

    pool.set_max_size(8).unwrap();
    let six: Vec<_> = futures_all(&pool, 6).await;
    drop(six);
    assert_eq!(counts.live(), 6);
    pool.set_max_size(2).unwrap();
    assert_eq!(
        counts.live(),
        2,
        "idle ones closed at once, not at the reaper"
    );
    let s = pool.stats();
    assert_eq!((s.max_size, s.size, s.closed_idle), (2, 2, 4), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn resizing_under_load_keeps_the_size_within_the_limit_at_every_instant() {
    let manager = TestManager::new().connect_with(Act::Slow(10 * MS));
    let (counts, _) = manager.handles();
    let pool = pool(4, 12, manager);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for seed in 0..40 {
        let (pool, stop) = (pool.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed + 1);
            while !stop.load(SeqCst) {
                let c = pool.get().await.unwrap();
                tokio::time::sleep(Duration::from_millis(1 + rng.below(5))).await;
                drop(c);
            }
        }));
    }
    // Every millisecond: never more alive than the limit, except a surplus
    // left from before a shrink, which only goes down and never opens more.
    let sample = |limit: usize, surplus: &mut usize| {
        let live = counts.live();
        assert!(
            live <= limit.max(*surplus),
            "{live} alive, limit {limit}, surplus {surplus}"
        );
        *surplus = live.min(*surplus);
    };
    let mut surplus = 0;
    for _ in 0..100 {
        tokio::time::sleep(MS).await;
        sample(4, &mut surplus);
    }
    pool.set_max_size(12).unwrap();
    let grown_at = counts.connects();
    for _ in 0..100 {
        tokio::time::sleep(MS).await;
        sample(12, &mut surplus);
    }
    assert!(
        counts.connects() >= grown_at + 8,
        "waiters got new connections"
    );
    assert_eq!(counts.live(), 12, "all in use under this load");
    surplus = counts.live();
    pool.set_max_size(3).unwrap();
    let connects = counts.connects();
    for _ in 0..100 {
        tokio::time::sleep(MS).await;
        sample(3, &mut surplus);
        if counts.live() > 3 {
            assert_eq!(
                counts.connects(),
                connects,
                "nothing opened above the limit"
            );
        }
    }
    assert!(
        counts.live() <= 3,
        "every surplus connection came back and closed"
    );
    stop.store(true, SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert!(counts.live() <= 3);
}

#[tokio::test(start_paused = true)]
async fn limits_are_checked_and_min_idle_opens_at_once() {
    let pool = pool(4, 0, TestManager::new().connect_with(Act::Slow(10 * MS)));
    let bad = |r: Result<(), ConfigError>| match r {
        Err(ConfigError::Invalid { knob, reason }) => format!("{knob}: {reason}"),
        other => panic!("{other:?}"),
    };
    assert_eq!(bad(pool.set_max_size(0)), "max_size: must be at least 1");
    assert!(
        bad(pool.set_max_size(5)).starts_with("max_size: 5 is above grow_limit (4)"),
        "grow_limit 0 is max_size: shrink and grow back only"
    );
    pool.set_max_size(2).unwrap();
    assert_eq!(
        bad(pool.set_min_idle(3)),
        "min_idle: 3 is larger than max_size (2)"
    );
    pool.set_min_idle(2).unwrap();
    tokio::time::sleep(10 * MS).await;
    settle().await;
    assert_eq!(pool.stats().idle, 2, "opened at once, not at the reaper");
    assert_eq!(
        bad(pool.set_max_size(1)),
        "max_size: 1 is below min_idle (2)"
    );
    pool.set_max_size(4).unwrap();

    let e = ConnectionPool::builder()
        .max_size(4)
        .grow_limit(2)
        .build(TestManager::new())
        .unwrap_err();
    assert!(e.to_string().contains("grow_limit"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_keyed_pool_resizes_per_key_and_in_total() {
    let pool = KeyedPool::from_builder(
        "peers",
        ConnectionPool::builder().max_size(2).grow_limit(4),
        8,
        |_: &u32| TestManager::new(),
    )
    .unwrap();
    let mut held = Vec::new();
    for key in [1, 2, 3] {
        for _ in 0..2 {
            held.push(pool.get(&key).await.unwrap());
        }
    }
    let third = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get(&1).await.unwrap() }
    });
    settle().await;
    assert_eq!(
        pool.key_stats(&1).unwrap().waiting,
        1,
        "key 1 is at its limit"
    );
    pool.set_max_size(4).unwrap();
    held.push(third.await.unwrap());
    assert_eq!(pool.total_size(), 7);
    held.clear();
    assert_eq!(pool.total_size(), 7, "kept idle");
    pool.set_max_size(3).unwrap();
    assert_eq!(
        pool.key_stats(&1).unwrap().size,
        3,
        "key 1's idle surplus closed"
    );
    pool.set_max_total(4).unwrap();
    assert_eq!(
        pool.total_size(),
        4,
        "idle ones closed down to the new total"
    );
    drop(pool.get(&4).await.unwrap());
    assert_eq!(
        pool.key_stats(&4).unwrap().max_size,
        3,
        "new keys get the new limit"
    );
    assert!(pool.total_size() <= 4);
    assert!(
        pool.set_max_total(2).is_err(),
        "below the per-key limit (3)"
    );
    assert!(pool.set_max_size(5).is_err(), "above grow_limit");
}

/// Checks out `n` connections at once.
async fn futures_all(
    pool: &ConnectionPool<TestManager>,
    n: usize,
) -> Vec<pool_core::PooledConnection<'static, TestManager>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get_owned().await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
