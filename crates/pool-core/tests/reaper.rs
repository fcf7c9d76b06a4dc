//! Guarantee 7 on paused time: idle timeout and `min_idle` agree, lifetimes
//! expire (with jitter) on the shelf and on return (bb8 #123, sqlx #3051),
//! keepalive probes, leak warnings, and a reaper that never keeps the pool alive.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::ConnectionPool;
use support::{settle, Act, TestManager};

const SEC: Duration = Duration::from_secs(1);

async fn hold_n(pool: &ConnectionPool<TestManager>, n: usize) {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.get().await.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_burst_the_pool_shrinks_back_to_min_idle() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(10)
        .min_idle(2)
        .idle_timeout(Some(60 * SEC))
        .reap_interval(SEC)
        .build(m)
        .unwrap();
    settle().await;
    assert_eq!(counts.live(), 2, "min_idle opened at start");
    hold_n(&pool, 8).await;
    assert_eq!(counts.live(), 8);
    tokio::time::sleep(59 * SEC).await;
    assert_eq!(counts.live(), 8, "closed before idle_timeout");
    tokio::time::sleep(2 * SEC).await;
    settle().await;
    assert_eq!(counts.live(), 2);
    assert_eq!(pool.stats().closed_idle, 6);
    // Never below min_idle, however long it sits.
    tokio::time::sleep(600 * SEC).await;
    assert_eq!(counts.live(), 2);
}

#[tokio::test(start_paused = true)]
async fn min_idle_is_refilled_after_connections_close() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(5)
        .min_idle(3)
        .reap_interval(SEC)
        .build(m)
        .unwrap();
    settle().await;
    let c = pool.get().await.unwrap();
    c.discard();
    assert_eq!(counts.live(), 2);
    tokio::time::sleep(2 * SEC).await;
    settle().await;
    assert_eq!(counts.live(), 3);
}

#[tokio::test(start_paused = true)]
async fn lifetime_expires_idle_connections_and_in_use_ones_on_return() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(2)
        .max_lifetime(Some(10 * SEC))
        .idle_timeout(None)
        .reap_interval(SEC)
        .build(m)
        .unwrap();
    let a = pool.get().await.unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(11 * SEC).await;
    settle().await;
    assert_eq!(counts.live(), 1, "the idle one expired on the shelf");
    drop(a);
    assert_eq!(counts.live(), 0, "the used one expired on return");
    assert_eq!(pool.stats().closed_lifetime, 2);
}

#[tokio::test(start_paused = true)]
async fn connections_opened_together_do_not_expire_together() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(20)
        .max_lifetime(Some(100 * SEC))
        .idle_timeout(None)
        .keepalive_interval(None)
        .reap_interval(SEC)
        .build(m)
        .unwrap();
    hold_n(&pool, 20).await;
    tokio::time::sleep(89 * SEC).await;
    assert_eq!(counts.live(), 20, "jitter is at most 10%");
    let mut distinct_steps = 0;
    let mut last = counts.live();
    for _ in 0..12 {
        tokio::time::sleep(SEC).await;
        settle().await;
        if counts.live() != last {
            distinct_steps += 1;
            last = counts.live();
        }
    }
    assert_eq!(counts.live(), 0);
    assert!(
        distinct_steps >= 3,
        "expiries bunched in {distinct_steps} steps"
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_probes_idle_connections_and_closes_failing_ones() {
    let m = TestManager::new();
    let (counts, script) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(2)
        .keepalive_interval(Some(10 * SEC))
        .idle_timeout(None)
        .reap_interval(SEC)
        .build(m)
        .unwrap();
    hold_n(&pool, 2).await;
    tokio::time::sleep(11 * SEC).await;
    settle().await;
    assert_eq!(counts.checks(), 2);
    assert_eq!(counts.live(), 2);
    script.lock().unwrap().check = Act::Fail;
    tokio::time::sleep(11 * SEC).await;
    settle().await;
    assert_eq!(counts.live(), 0);
    assert_eq!(pool.stats().closed_check_failed, 2);
}

#[tokio::test(start_paused = true)]
async fn a_probe_does_not_count_as_use() {
    // Probes must not keep a connection from ever reaching idle_timeout.
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let _pool = {
        let pool = ConnectionPool::builder()
            .keepalive_interval(Some(10 * SEC))
            .idle_timeout(Some(35 * SEC))
            .reap_interval(SEC)
            .build(m)
            .unwrap();
        drop(pool.get().await.unwrap());
        pool
    };
    tokio::time::sleep(40 * SEC).await;
    settle().await;
    assert!(counts.checks() >= 2);
    assert_eq!(counts.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_reaper_does_not_keep_the_pool_alive() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .reap_interval(SEC)
        .build(m)
        .unwrap();
    drop(pool.get().await.unwrap());
    assert_eq!(counts.live(), 1);
    drop(pool);
    tokio::time::sleep(3 * SEC).await;
    settle().await;
    assert_eq!(counts.live(), 0, "the pool's connections outlived it");
    assert_eq!(
        Arc::strong_count(&counts),
        1,
        "something still holds the manager"
    );
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_leak_is_reported_with_where_it_was_acquired() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let pool = ConnectionPool::builder()
        .leak_threshold(Some(5 * SEC))
        .reap_interval(SEC)
        .build(TestManager::new())
        .unwrap();
    let line = line!() + 1;
    let held = pool.get().await.unwrap();
    tokio::time::sleep(4 * SEC).await;
    settle().await;
    assert!(logs.0.lock().unwrap().is_empty());
    tokio::time::sleep(3 * SEC).await;
    settle().await;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("leak_threshold"), "{text}");
    assert!(text.contains(&format!("reaper.rs:{line}")), "{text}");
    assert_eq!(text.matches("leak_threshold").count(), 1, "warned once");
    drop(held);
}
