//! `evict_all` on paused time: after it, no caller receives a connection made
//! before it — idle, in use, or in flight at that moment.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use pool_core::{ConnectionPool, Manager, Pool};

/// A connection made with credentials of version `.0`, read when its connect
/// began (as a manager reading a credentials provider does).
#[derive(Debug)]
struct Made(u64);

struct Versioned {
    version: Arc<AtomicU64>,
    connect_time: Duration,
}

impl Manager for Versioned {
    type Connection = Made;
    type Error = std::io::Error;
    async fn connect(&self) -> Result<Made, std::io::Error> {
        let version = self.version.load(SeqCst);
        tokio::time::sleep(self.connect_time).await;
        Ok(Made(version))
    }
    async fn check(&self, _: &mut Made) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn pool(version: &Arc<AtomicU64>) -> ConnectionPool<Versioned> {
    ConnectionPool::builder()
        .max_size(6)
        .build(Versioned {
            version: version.clone(),
            connect_time: Duration::from_millis(100),
        })
        .unwrap()
}

/// Idle connections close at once; the ones in use stay with their holders
/// and close when returned.
#[tokio::test(start_paused = true)]
async fn idle_and_in_use_connections_are_retired() {
    let version = Arc::new(AtomicU64::new(1));
    let pool = pool(&version);
    let mut held = futures_join(&pool, 4).await;
    held.truncate(2);
    assert_eq!(pool.stats().idle, 2);
    version.store(2, SeqCst);
    pool.evict_all();
    assert_eq!(pool.stats().idle, 0, "idle ones closed at once");
    assert!(
        held.iter().all(|c| c.0 == 1),
        "in use: untouched while held"
    );
    drop(held);
    assert_eq!(pool.stats().size, 0, "returned ones closed, not kept");
    for _ in 0..10 {
        assert_eq!(pool.get().await.unwrap().0, 2);
    }
    assert_eq!(Pool::stats(&pool).closed_evicted, 4);
}

/// A connect in flight when `evict_all` runs is discarded when it completes
/// and made again: its caller gets a connection of the new generation.
#[tokio::test(start_paused = true)]
async fn connects_in_flight_are_made_again() {
    let version = Arc::new(AtomicU64::new(1));
    let pool = pool(&version);
    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.unwrap().0 })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pool.stats().opening, 3);
    version.store(2, SeqCst);
    pool.evict_all();
    for task in in_flight {
        assert_eq!(
            task.await.unwrap(),
            2,
            "made again with the new credentials"
        );
    }
    let s = Pool::stats(&pool);
    // Each was opened twice: once discarded, once handed out.
    assert_eq!((s.closed_evicted, s.created), (3, 6), "{s:?}");
    assert!(s.size <= 6);
}

async fn futures_join(
    pool: &ConnectionPool<Versioned>,
    n: usize,
) -> Vec<pool_core::PooledConnection<'static, Versioned>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let pool = pool.clone();
        set.spawn(async move { pool.get_owned().await.unwrap() });
    }
    let mut out = Vec::new();
    while let Some(c) = set.join_next().await {
        out.push(c.unwrap());
    }
    out
}
