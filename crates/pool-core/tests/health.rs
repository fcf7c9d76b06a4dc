//! `Health`: the cheap verdict and the probe that checks a connection.

mod support;

use std::time::Duration;

use pool_core::{ConnectionPool, Health, HealthStatus, KeyedPool, PoolConfig};
use support::{Act, TestManager};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn the_probe_runs_the_managers_check() {
    let manager = TestManager::new();
    let (counts, script) = manager.handles();
    let pool = ConnectionPool::builder().build(manager).unwrap();
    assert_eq!(
        Health::probe(&pool, Duration::from_secs(1)).await,
        HealthStatus::Healthy
    );
    assert_eq!(counts.checks(), 1, "the probe checked a connection");

    script.lock().unwrap().check = Act::Fail;
    let verdict = Health::probe(&pool, Duration::from_secs(1)).await;
    assert!(
        matches!(&verdict, HealthStatus::Unhealthy { reason } if reason.contains("check refused")),
        "{verdict}"
    );
    assert_eq!(
        pool.stats().size,
        0,
        "the connection that failed its check is closed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_of_a_silent_peer_ends_at_its_timeout() {
    let pool = ConnectionPool::builder()
        .build(TestManager::new().check_with(Act::Hang))
        .unwrap();
    let start = Instant::now();
    let verdict = Health::probe(&pool, Duration::from_millis(300)).await;
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert!(!verdict.is_healthy(), "{verdict}");
    // The cheap verdict needs no I/O.
    assert_eq!(Health::health(&pool), HealthStatus::Healthy);
}

#[tokio::test(start_paused = true)]
async fn a_probe_names_the_connect_error() {
    let pool = ConnectionPool::builder()
        .build(TestManager::new().connect_with(Act::Fail))
        .unwrap();
    let verdict = Health::probe(&pool, Duration::from_secs(1)).await;
    assert!(
        matches!(&verdict, HealthStatus::Unhealthy { reason } if reason.contains("connect refused")),
        "{verdict}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_keyed_pool_reports_its_worst_key() {
    let keyed = KeyedPool::new("keyed", PoolConfig::default(), 10, |k: &&str| {
        if *k == "bad" {
            TestManager::new().check_with(Act::Fail)
        } else {
            TestManager::new()
        }
    })
    .unwrap();
    drop(keyed.get(&"good").await.unwrap());
    drop(keyed.get(&"bad").await.unwrap());
    let verdict = Health::probe(&keyed, Duration::from_secs(1)).await;
    assert!(
        matches!(verdict, HealthStatus::Unhealthy { .. }),
        "{verdict}"
    );
    let verdicts: Vec<&dyn Health> = vec![&keyed];
    assert!(
        verdicts[0].health().is_healthy(),
        "counters alone see no failure"
    );
}
