//! Dropping a pool or a guard outside the runtime, or after it stopped, never
//! panics (tokio #3963, sqlx #531); `get_blocking` serves code outside async.

mod support;

use std::time::Duration;

use pool_core::ConnectionPool;
use support::TestManager;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_guard_dropped_after_the_runtime_stopped_does_not_panic() {
    let rt = runtime();
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let (pool, guard) = rt.block_on(async {
        let pool = ConnectionPool::builder().max_size(2).build(m).unwrap();
        let guard = pool.get_owned().await.unwrap();
        drop(pool.get().await.unwrap());
        (pool, guard)
    });
    drop(rt);
    drop(guard);
    drop(pool);
    assert_eq!(counts.live(), 0);
}

#[test]
fn get_blocking_works_outside_async_code() {
    let rt = runtime();
    let pool = rt.block_on(async {
        ConnectionPool::builder()
            .max_size(1)
            .acquire_timeout(Duration::from_millis(200))
            .build(TestManager::new())
            .unwrap()
    });
    let c = pool.get_blocking().unwrap();
    assert_eq!(c.id, 0);
    // The pool is exhausted: a second blocking get times out instead of hanging.
    assert!(pool.get_blocking().is_err());
    drop(c);
    assert!(pool.get_blocking().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_blocking_inside_the_runtime_does_not_deadlock() {
    let pool = ConnectionPool::builder()
        .max_size(1)
        .build(TestManager::new())
        .unwrap();
    let c = pool.get_blocking().unwrap();
    assert_eq!(c.id, 0);
}

#[test]
fn a_pool_dropped_on_another_thread_does_not_panic() {
    let rt = runtime();
    let pool = rt.block_on(async {
        let pool = ConnectionPool::builder().build(TestManager::new()).unwrap();
        drop(pool.get().await.unwrap());
        pool
    });
    std::thread::spawn(move || drop(pool)).join().unwrap();
}

/// The guard works on its connection in place, in the pool's slot: an owned guard
/// moved into another task must still reach, change and return that connection.
#[test]
fn an_owned_guard_moved_into_a_task_returns_its_connection() {
    let rt = runtime();
    let m = TestManager::new();
    let (counts, _) = m.handles();
    rt.block_on(async {
        let pool = ConnectionPool::builder().max_size(1).build(m).unwrap();
        let guard = pool.get().await.unwrap().into_owned();
        let id = tokio::spawn(async move {
            let mut guard = guard;
            guard.dirty = false;
            guard.id
        })
        .await
        .unwrap();
        let again = pool.get().await.unwrap();
        assert_eq!(again.id, id, "the same connection came back");
        assert_eq!(pool.stats().reused, 1);
    });
    assert_eq!(counts.connects(), 1);
}
