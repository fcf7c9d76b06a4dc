//! Guarantee 4: `get()` never waits past `acquire_timeout`, whatever the manager
//! does; no connect, check or reset holds a slot forever (sqlx #4349).

mod support;

use std::sync::Arc;
use std::time::Duration;

use pool_core::{ConnectionPool, PoolError};
use support::{settle, Act, TestManager};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn acquire_timeout_holds_while_connect_hangs() {
    let pool = ConnectionPool::builder()
        .acquire_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_secs(60))
        .build(TestManager::new().connect_with(Act::Hang))
        .unwrap();
    let start = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert!(
        matches!(err, PoolError::Timeout { waited, .. } if waited == Duration::from_millis(500)),
        "{err}"
    );
    assert_eq!(pool.stats().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_connect_fails_with_connect_timeout() {
    let pool = ConnectionPool::builder()
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_millis(100))
        .build(TestManager::new().connect_with(Act::Hang))
        .unwrap();
    let start = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert!(matches!(err, PoolError::ConnectTimeout { .. }), "{err}");
    // The slot of the abandoned connect is free again.
    assert_eq!(pool.stats().size, 0);
}

#[tokio::test(start_paused = true)]
async fn a_check_that_never_answers_does_not_hold_the_slot() {
    let m = TestManager::new();
    let (_, script) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(1)
        .validate_after(Duration::ZERO)
        .connect_timeout(Duration::from_millis(100))
        .acquire_timeout(Duration::from_secs(5))
        .build(m)
        .unwrap();
    let first = pool.get().await.unwrap().id;
    script.lock().unwrap().check = Act::Hang;
    let start = Instant::now();
    let c = pool.get().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_ne!(c.id, first, "the silent connection must be replaced");
    assert_eq!(pool.stats().closed_check_failed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_reset_that_never_answers_does_not_hold_the_slot() {
    let m = TestManager::new();
    let (_, script) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(1)
        .connect_timeout(Duration::from_millis(100))
        .build(m)
        .unwrap();
    let first = pool.get().await.unwrap().id;
    script.lock().unwrap().reset = Act::Hang;
    let c = pool.get().await.unwrap();
    assert_ne!(c.id, first);
    assert_eq!(pool.stats().closed_check_failed, 1);
}

#[tokio::test(start_paused = true)]
async fn get_timeout_overrides_the_wait() {
    let pool = ConnectionPool::builder()
        .max_size(1)
        .build(TestManager::new())
        .unwrap();
    let _held = pool.get().await.unwrap();
    let start = Instant::now();
    let err = pool
        .get_timeout(Duration::from_millis(30))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    assert!(matches!(err, PoolError::Timeout { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_after_failed_connects_carries_the_last_error() {
    let m = TestManager::new().connect_with(Act::Fail);
    let (_, script) = m.handles();
    let m = TestManager {
        transient: true,
        ..m
    };
    let pool = ConnectionPool::builder()
        .max_size(1)
        .connect_retries(5)
        .retry_backoff(Duration::from_millis(50))
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(1))
        .build(m)
        .unwrap();
    let get = {
        let p = pool.clone();
        tokio::spawn(async move { p.get().await.map(|_| ()) })
    };
    settle().await;
    // The first attempt failed (transient); the retry will hang.
    script.lock().unwrap().connect = Act::Hang;
    let err = get.await.unwrap().unwrap_err();
    match err {
        PoolError::Timeout {
            last_error: Some(e),
            ..
        } => assert!(e.to_string().contains("connect refused"), "{e}"),
        other => panic!("expected a timeout with the last error, got {other}"),
    }
}

/// One timer serves every waiter of a pool (`deadlines.rs`): a waiter that parks
/// behind an older one with a later deadline must still time out at its own.
#[tokio::test(start_paused = true)]
async fn a_shorter_deadline_behind_a_longer_one_fires_on_time() {
    let pool = ConnectionPool::builder()
        .max_size(1)
        .acquire_timeout(Duration::from_secs(10))
        .build(TestManager::new())
        .unwrap();
    let held = pool.get().await.unwrap();
    let start = Instant::now();
    let long = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    settle().await;
    let short = pool.get_timeout(Duration::from_millis(30)).await;
    assert!(matches!(short, Err(PoolError::Timeout { .. })));
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    // The older waiter is untouched by the younger one's timeout and still
    // gets the connection.
    assert_eq!(pool.stats().waiting, 1);
    drop(held);
    long.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(30));
}

/// Waiters that park while the deadline task sleeps for an earlier deadline
/// time out each at their own, in order, and the task re-arms after every firing.
#[tokio::test(start_paused = true)]
async fn staggered_waiters_time_out_each_at_its_own_deadline() {
    let pool = ConnectionPool::builder()
        .max_size(1)
        .acquire_timeout(Duration::from_millis(100))
        .build(TestManager::new())
        .unwrap();
    let _held = pool.get().await.unwrap();
    let start = Instant::now();
    let mut waits = Vec::new();
    for i in 0..3u64 {
        let pool = pool.clone();
        waits.push(tokio::spawn(async move {
            let err = pool.get().await.unwrap_err();
            assert!(matches!(err, PoolError::Timeout { .. }), "{err:?}");
            Instant::now()
        }));
        if i < 2 {
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    let mut ends = Vec::new();
    for w in waits {
        ends.push(w.await.unwrap() - start);
    }
    let ms = Duration::from_millis;
    assert_eq!(ends, [ms(100), ms(140), ms(180)]);
    assert_eq!(pool.stats().waiting, 0);
    assert_eq!(pool.stats().timeouts, 3);
}

/// The deadline task holds the pool weakly: a pool dropped after its waiters
/// timed out is freed, manager and connections included.
#[tokio::test(start_paused = true)]
async fn the_deadline_task_does_not_keep_the_pool_alive() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(1)
        .acquire_timeout(Duration::from_millis(50))
        .build(m)
        .unwrap();
    let held = pool.get().await.unwrap();
    assert!(pool.get().await.is_err());
    drop(held);
    drop(pool);
    settle().await;
    assert_eq!(counts.live(), 0, "the pool's connections outlived it");
    assert_eq!(
        Arc::strong_count(&counts),
        1,
        "something still holds the manager"
    );
}

/// The deadline task runs on the pool's runtime. Once that runtime has shut
/// down, a wait from another runtime arms its own timer and still ends at its
/// deadline (here no connection can open either: connects run there too).
#[test]
fn a_wait_still_times_out_after_the_pools_runtime_shut_down() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = first.block_on(async {
        ConnectionPool::builder()
            .max_size(1)
            .acquire_timeout(Duration::from_millis(50))
            .build(TestManager::new())
            .unwrap()
    });
    // A wait on the first runtime starts the pool's deadline task there.
    let held = first.block_on(async {
        let held = pool.get().await.unwrap();
        assert!(pool.get().await.is_err());
        held
    });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    second.block_on(async {
        let start = Instant::now();
        let wait = tokio::time::timeout(Duration::from_secs(5), pool.get()).await;
        let err = wait
            .expect("get() outlived its acquire_timeout")
            .unwrap_err();
        assert!(matches!(err, PoolError::Timeout { .. }), "{err:?}");
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    });
    drop(held);
}

/// Issue 16: `try_get()` does not wait for a connection, but the reset and the
/// check of the one it takes get their own budget (`connect_timeout`), as in
/// `get()`: a healthy connection whose check takes 50 ms is not closed.
#[tokio::test(start_paused = true)]
async fn try_get_gives_check_and_reset_their_own_budget() {
    let manager = TestManager::new();
    let (counts, script) = manager.handles();
    let pool = ConnectionPool::builder()
        .validate_after(Duration::ZERO)
        .connect_timeout(Duration::from_secs(1))
        .build(manager)
        .unwrap();
    drop(pool.get().await.unwrap());
    script.lock().unwrap().check = Act::Slow(Duration::from_millis(50));
    script.lock().unwrap().reset = Act::Slow(Duration::from_millis(20));
    let start = Instant::now();
    let conn = pool.try_get().await;
    assert!(conn.is_ok(), "{:?}", conn.err());
    assert_eq!(start.elapsed(), Duration::from_millis(70));
    drop(conn);
    assert_eq!(pool.stats().closed_check_failed, 0);
    assert_eq!(counts.connects(), 1);
}

/// `try_get()` never parks: with nothing idle it fails at once, even when a
/// connect it started would finish a moment later.
#[tokio::test(start_paused = true)]
async fn try_get_never_waits() {
    let pool = ConnectionPool::builder()
        .build(TestManager::new().connect_with(Act::Slow(Duration::from_millis(5))))
        .unwrap();
    let start = Instant::now();
    let err = pool.try_get().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(
        matches!(err, PoolError::Timeout { waited, .. } if waited.is_zero()),
        "{err}"
    );
    settle().await;
    tokio::time::sleep(Duration::from_millis(6)).await;
    assert!(
        pool.try_get().await.is_ok(),
        "the connect it started is there"
    );
}
