//! Lost wake-up (bb8 #122, sqlx #453): a return that lands between "nothing idle"
//! and "joined the wait queue" must still reach that waiter. Hammered on real
//! threads: a lost wake-up shows as a `get()` that times out while the only
//! connection sits idle.

mod support;

use std::time::Duration;

use pool_core::ConnectionPool;
use support::TestManager;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_wake_up_is_lost_between_a_return_and_a_new_waiter() {
    for window in [Duration::ZERO, Duration::from_millis(1)] {
        let pool = ConnectionPool::builder()
            .max_size(1)
            .fairness_window(window)
            .acquire_timeout(Duration::from_secs(5))
            .build(TestManager::new())
            .unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let p = pool.clone();
                tokio::spawn(async move {
                    for i in 0..5_000u32 {
                        let c = p.get().await.expect("a lost wake-up times out here");
                        if i % 7 == 0 {
                            tokio::task::yield_now().await;
                        }
                        drop(c);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let s = pool.stats();
        assert_eq!(s.acquired_total, 20_000);
        assert_eq!((s.waiting, s.in_use, s.size), (0, 0, 1));
    }
}
