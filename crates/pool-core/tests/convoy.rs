//! Issue 17: a pool built and hit at once by more tasks than connections must
//! not keep its early waiters parked for ever. Tasks that loop on `get()`
//! without another await never yield by themselves; the pool spends their
//! cooperative budget while others are parked, so the queue drains.

mod support;

use std::time::Duration;

use pool_core::ConnectionPool;
use support::TestManager;

const TASKS: usize = 8;
const OPS: usize = 20_000;

async fn cold_burst(flavor_note: &str) {
    let pool = ConnectionPool::builder()
        .max_size(2)
        .acquire_timeout(Duration::from_secs(30))
        .build(TestManager::new())
        .unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..OPS {
                    drop(pool.get().await.unwrap());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.acquired_total, (TASKS * OPS) as u64);
    // Each task may park a few times while the first connects open; a convoy
    // parks them again and again (thousands of times in this many operations).
    assert!(
        s.acquired_waited <= 8 * TASKS as u64,
        "{flavor_note}: {} of {} get()s waited",
        s.acquired_waited,
        s.acquired_total
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_cold_burst_leaves_no_convoy_on_one_thread() {
    cold_burst("current-thread runtime").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_burst_leaves_no_convoy_on_two_threads() {
    cold_burst("two worker threads").await;
}
