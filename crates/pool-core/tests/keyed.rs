//! `KeyedPool`: per-key and total limits, and the oldest idle connection of
//! another key closed to make room.

mod support;

use std::time::Duration;

use pool_core::{KeyedPool, Pool, PoolConfig, PoolError};
use support::{settle, TestManager};

fn keyed(per_key: usize, total: usize) -> KeyedPool<&'static str, TestManager> {
    let config = PoolConfig {
        max_size: per_key,
        acquire_timeout: Duration::from_millis(100),
        ..PoolConfig::default()
    };
    KeyedPool::new("keyed", config, total, |_key: &&str| TestManager::new()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_per_key_limit_holds() {
    let pool = keyed(2, 10);
    let _a1 = pool.get(&"a").await.unwrap();
    let _a2 = pool.get(&"a").await.unwrap();
    assert!(matches!(
        pool.get(&"a").await,
        Err(PoolError::Timeout { .. })
    ));
    // Another key is not affected.
    assert!(pool.get(&"b").await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_total_limit_holds_across_keys() {
    let pool = keyed(3, 4);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.get(&"a").await.unwrap());
    }
    held.push(pool.get(&"b").await.unwrap());
    assert_eq!(pool.total_size(), 4);
    assert!(matches!(
        pool.get(&"b").await,
        Err(PoolError::Timeout { .. })
    ));
    assert!(matches!(
        pool.get(&"c").await,
        Err(PoolError::Timeout { .. })
    ));
    assert_eq!(pool.total_size(), 4);
    assert_eq!(pool.stats().size, 4);
}

#[tokio::test(start_paused = true)]
async fn the_oldest_idle_connection_of_another_key_makes_room() {
    let pool = keyed(3, 3);
    let (a1, a2) = (pool.get(&"a").await.unwrap(), pool.get(&"a").await.unwrap());
    let a3 = pool.get(&"a").await.unwrap();
    let oldest = a2.id;
    drop(a2);
    tokio::time::advance(Duration::from_secs(1)).await;
    drop(a1);
    drop(a3);
    let b = pool.get(&"b").await.unwrap();
    drop(b);
    let a_stats = pool.key_stats(&"a").unwrap();
    assert_eq!(a_stats.size, 2);
    assert_eq!(a_stats.closed_idle, 1);
    // The one closed was the one idle longest.
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(pool.get(&"a").await.unwrap());
    }
    assert!(ids.iter().all(|c| c.id != oldest));
}

#[tokio::test(start_paused = true)]
async fn a_starved_key_is_served_when_another_returns() {
    let config = PoolConfig {
        max_size: 2,
        acquire_timeout: Duration::from_secs(5),
        ..PoolConfig::default()
    };
    let pool = KeyedPool::new("keyed", config, 2, |_: &&str| TestManager::new()).unwrap();
    let a1 = pool.get(&"a").await.unwrap();
    let _a2 = pool.get(&"a").await.unwrap();
    let waiter = {
        let p = pool.clone();
        tokio::spawn(async move { p.get(&"b").await.map(|_| ()) })
    };
    settle().await;
    assert!(!waiter.is_finished());
    drop(a1);
    settle().await;
    assert!(waiter.await.unwrap().is_ok());
    assert!(pool.total_size() <= 2);
}

#[tokio::test(start_paused = true)]
async fn a_zero_total_is_a_config_error() {
    let err =
        KeyedPool::new("k", PoolConfig::default(), 0, |_: &u8| TestManager::new()).unwrap_err();
    assert!(err.to_string().contains("max_total"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn keys_without_connections_are_forgotten() {
    let config = PoolConfig {
        max_size: 2,
        idle_timeout: Some(Duration::from_secs(10)),
        reap_interval: Duration::from_secs(1),
        ..PoolConfig::default()
    };
    let pool = KeyedPool::new("keyed", config, 100, |_: &u32| TestManager::new()).unwrap();
    for key in 0..20u32 {
        drop(pool.get(&key).await.unwrap());
    }
    let held = pool.get(&7).await.unwrap();
    assert_eq!(pool.keys().len(), 20);
    tokio::time::sleep(Duration::from_secs(15)).await;
    settle().await;
    // Idle connections timed out; only the key still in use is kept.
    assert_eq!(pool.keys(), vec![7]);
    assert_eq!(pool.total_size(), 1);
    // The forgotten keys' counters stay in the totals.
    let s = Pool::stats(&pool);
    assert_eq!((s.acquired_total, s.created, s.closed_idle), (21, 20, 19));
    drop(held);
    assert!(
        pool.get(&3).await.is_ok(),
        "a forgotten key comes back on demand"
    );
    assert_eq!(Pool::stats(&pool).created, 21);
}

/// Issue 16: ten keys fill the total; a wait for key A is cancelled, then key B
/// waits, then one connection comes back. The freed room must reach B, not the
/// sub-pool of A, which has nobody waiting any more.
#[tokio::test(start_paused = true)]
async fn room_freed_after_a_cancelled_wait_reaches_the_next_key() {
    let config = PoolConfig {
        max_size: 5,
        acquire_timeout: Duration::from_secs(5),
        ..PoolConfig::default()
    };
    let pool = KeyedPool::new("keyed", config, 10, |_: &u32| TestManager::new()).unwrap();
    let mut held = Vec::new();
    for key in 0..10u32 {
        held.push(pool.get(&key).await.unwrap());
    }
    let a = tokio::time::timeout(Duration::from_millis(50), pool.get(&100)).await;
    assert!(a.is_err(), "A waits: the total is full");
    let b = {
        let p = pool.clone();
        tokio::spawn(async move { p.get(&200).await.map(|_| ()) })
    };
    settle().await;
    assert!(!b.is_finished());
    drop(held.pop());
    let served = tokio::time::timeout(Duration::from_millis(100), b).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "B must be served with nine of ten slots taken: {served:?}"
    );
    assert!(pool.total_size() <= 10);
}

/// Many keys, a small total, short holds and `get()`s cancelled at random
/// instants: whenever a key has a parked `get()` while the total has room, that
/// lasts a few milliseconds at most (the time for a connect to start).
#[tokio::test(start_paused = true)]
async fn room_in_the_total_never_idles_while_a_key_waits() {
    const TOTAL: usize = 6;
    const KEYS: u64 = 9;
    let config = PoolConfig {
        max_size: TOTAL,
        acquire_timeout: Duration::from_secs(10),
        ..PoolConfig::default()
    };
    let pool = KeyedPool::new("keyed", config, TOTAL, |_: &u64| TestManager::new()).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..10u64 {
        let (pool, stop) = (pool.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = support::Rng::new(t + 1);
            let mut timeouts = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let key = rng.below(KEYS);
                let give_up = Duration::from_millis(1 + rng.below(8));
                match tokio::time::timeout(give_up, pool.get(&key)).await {
                    Ok(Ok(conn)) => {
                        tokio::time::sleep(Duration::from_millis(5 + rng.below(40))).await;
                        drop(conn);
                    }
                    Ok(Err(PoolError::Timeout { .. })) => timeouts += 1,
                    Ok(Err(e)) => panic!("unexpected error: {e}"),
                    Err(_) => {} // cancelled by us
                }
                tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
            }
            timeouts
        }));
    }
    // Sample every millisecond: a key waiting while the total has room.
    let mut stuck_for = 0u32;
    let mut worst = 0u32;
    for _ in 0..3000 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let waiting: usize = pool
            .keys()
            .iter()
            .filter_map(|k| pool.key_stats(k))
            .map(|s| s.waiting)
            .sum();
        if waiting > 0 && pool.total_size() < TOTAL {
            stuck_for += 1;
            worst = worst.max(stuck_for);
        } else {
            stuck_for = 0;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut timeouts = 0;
    for t in tasks {
        timeouts += t.await.unwrap();
    }
    assert_eq!(timeouts, 0, "no get() may time out: holds are short");
    assert!(
        worst <= 3,
        "a key waited {worst} ms while the total had room"
    );
}
