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
    drop(held);
    assert!(
        pool.get(&3).await.is_ok(),
        "a forgotten key comes back on demand"
    );
}
