//! Guarantee 5: a failing connect returns its cause at once (r2d2 #51, sqlx #3808);
//! retries are opt-in and only for transient causes. Broken connections wake
//! waiters and are replaced (bb8 #167).

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use pool_core::{ConnectionPool, PoolError};
use support::{settle, Act, TestError, TestManager};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn the_connect_error_is_returned_at_once() {
    let pool = ConnectionPool::builder()
        .build(TestManager::new().connect_with(Act::Fail))
        .unwrap();
    let start = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    match &err {
        PoolError::Backend(TestError(m)) => assert_eq!(m, "connect refused"),
        other => panic!("expected the backend error, got {other}"),
    }
    // The cause is the error's source, for callers that walk the chain.
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("connect refused"));
    assert!(!pool.health().is_healthy());
}

#[tokio::test(start_paused = true)]
async fn every_waiter_of_a_burst_gets_the_error() {
    let pool = ConnectionPool::builder()
        .max_size(2)
        .build(TestManager::new().connect_with(Act::Fail))
        .unwrap();
    let gets: Vec<_> = (0..5)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move { p.get().await.map(|_| ()) })
        })
        .collect();
    let start = Instant::now();
    for g in gets {
        assert!(matches!(g.await.unwrap(), Err(PoolError::Backend(_))));
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(pool.stats().size, 0);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_not_retried() {
    let m = TestManager::new().connect_with(Act::Fail);
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .connect_retries(3)
        .build(m)
        .unwrap();
    assert!(pool.get().await.is_err());
    assert_eq!(counts.connects(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_transient_error_is_retried_with_backoff() {
    let m = TestManager {
        transient: true,
        ..TestManager::new().connect_with(Act::Fail)
    };
    let (counts, script) = m.handles();
    let pool = ConnectionPool::builder()
        .connect_retries(3)
        .retry_backoff(Duration::from_millis(100))
        .build(m)
        .unwrap();
    let get = {
        let p = pool.clone();
        tokio::spawn(async move { p.get().await.map(|c| c.id) })
    };
    settle().await;
    assert_eq!(counts.connects(), 1);
    script.lock().unwrap().connect = Act::Ok;
    assert!(get.await.unwrap().is_ok());
    assert_eq!(counts.connects(), 2);
    assert_eq!(pool.stats().create_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_broken_return_wakes_a_waiter_with_a_new_connection() {
    let m = TestManager::new();
    let broken = m.broken.clone();
    let pool = ConnectionPool::builder().max_size(1).build(m).unwrap();
    let held = pool.get().await.unwrap();
    let old = held.id;
    let waiter = {
        let p = pool.clone();
        tokio::spawn(async move { p.get().await.map(|c| c.id) })
    };
    settle().await;
    broken.store(true, SeqCst);
    drop(held);
    broken.store(false, SeqCst);
    let start = Instant::now();
    let new = waiter.await.unwrap().unwrap();
    assert_ne!(new, old);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(pool.stats().closed_broken, 1);
}

#[tokio::test(start_paused = true)]
async fn when_every_connection_is_broken_get_opens_new_ones() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let broken = m.broken.clone();
    let pool = ConnectionPool::builder().max_size(3).build(m).unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.get().await.unwrap());
    }
    broken.store(true, SeqCst);
    drop(held);
    broken.store(false, SeqCst);
    assert_eq!(pool.stats().size, 0);
    let c = pool.get_timeout(Duration::from_millis(10)).await.unwrap();
    assert_eq!(c.id, 3);
    assert_eq!(counts.live(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dirty_connection_never_reaches_the_next_caller() {
    // bb8 #246: a holder cancelled in the middle of an exchange.
    let pool = ConnectionPool::builder()
        .max_size(1)
        .build(TestManager::new())
        .unwrap();
    let first = pool.get().await.unwrap().id;
    let exchange = {
        let p = pool.clone();
        tokio::spawn(async move {
            let mut c = p.get().await.unwrap();
            c.set_dirty(true);
            std::future::pending::<()>().await; // cancelled mid-exchange
            c.set_dirty(false);
        })
    };
    settle().await;
    exchange.abort();
    let _ = exchange.await;
    let next = pool.get().await.unwrap();
    assert_ne!(next.id, first);
    assert_eq!(pool.stats().closed_broken, 1);
}

/// Gets `pool`'s connection in a task that stays in checkout (a reset or
/// check that never answers) and cancels it there.
async fn cancel_in_checkout(pool: &ConnectionPool<TestManager>) {
    let stuck = {
        let p = pool.clone();
        tokio::spawn(async move { drop(p.get().await) })
    };
    settle().await;
    stuck.abort();
    let _ = stuck.await;
}

/// A manager whose reset is cancel-safe keeps a connection whose caller was
/// cancelled during the reset (it is reset again on its next checkout).
#[tokio::test(start_paused = true)]
async fn a_cancel_safe_reset_cut_short_keeps_the_connection() {
    let m = TestManager::new().cancel_safe_reset();
    let (counts, script) = m.handles();
    let pool = ConnectionPool::builder().max_size(1).build(m).unwrap();
    let first = pool.get().await.unwrap().id;
    script.lock().unwrap().reset = Act::Hang;
    cancel_in_checkout(&pool).await;
    script.lock().unwrap().reset = Act::Ok;
    let next = pool.get().await.unwrap();
    assert_eq!(next.id, first);
    assert_eq!(pool.stats().closed_broken, 0);
    assert_eq!(counts.resets(), 2);
}

/// The check stays dirty whatever the reset is: a caller cancelled while
/// its connection is probed leaves the probe pending, and the connection
/// must not reach the next caller (who would get it unchecked, just returned).
#[tokio::test(start_paused = true)]
async fn a_check_cut_short_closes_the_connection_even_after_a_cancel_safe_reset() {
    let m = TestManager::new().cancel_safe_reset();
    let (_, script) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(1)
        .validate_after(Duration::ZERO)
        .build(m)
        .unwrap();
    let first = pool.get().await.unwrap().id;
    script.lock().unwrap().check = Act::Hang;
    cancel_in_checkout(&pool).await;
    script.lock().unwrap().check = Act::Ok;
    let next = pool.get().await.unwrap();
    assert_ne!(next.id, first);
    assert_eq!(pool.stats().closed_broken, 1);
}

#[tokio::test(start_paused = true)]
async fn reset_runs_before_every_reuse() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder().max_size(1).build(m).unwrap();
    drop(pool.get().await.unwrap());
    assert_eq!(counts.resets(), 0, "a fresh connection needs no reset");
    for n in 1..=3 {
        drop(pool.get().await.unwrap());
        assert_eq!(counts.resets(), n);
    }
}

/// `validate_after` on checkout, measured on the pool's coarse clock: a
/// connection reused soon is not checked, one idle past `validate_after` is.
/// (Without the clock's refresh task the second checkout would see no idle time.)
#[tokio::test(start_paused = true)]
async fn checkout_checks_only_connections_idle_past_validate_after() {
    let m = TestManager::new();
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(1)
        .validate_after(Duration::from_secs(1))
        .build(m)
        .unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    settle().await;
    drop(pool.get().await.unwrap());
    assert_eq!(counts.checks(), 0, "idle 400 ms: no check");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    settle().await;
    drop(pool.get().await.unwrap());
    assert_eq!(counts.checks(), 1, "idle 1.5 s: checked");
}
