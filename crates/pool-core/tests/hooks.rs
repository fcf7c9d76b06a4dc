//! Hooks on paused time: each one's success and failure modes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pool_core::{ConnectionPool, Pool, PoolError};
use support::{settle, Conn, TestError, TestManager};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn after_connect_runs_once_per_connection_and_its_failure_fails_the_connect_at_once() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let pool = ConnectionPool::builder()
        .max_size(2)
        .after_connect({
            let seen = seen.clone();
            move |c: &mut Conn| {
                seen.lock().unwrap().push(c.id);
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok(())
                })
            }
        })
        .build(TestManager::new())
        .unwrap();
    for _ in 0..5 {
        let conn = pool.get().await.unwrap();
        assert!(
            seen.lock().unwrap().contains(&conn.id),
            "the hook ran before the handout"
        );
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [0],
        "once per connection, not per checkout"
    );

    let manager = TestManager::new();
    let (counts, _) = manager.handles();
    let refusing = ConnectionPool::builder()
        .max_size(2)
        .after_connect(|_: &mut Conn| {
            Box::pin(async { Err(TestError("search_path refused".into())) })
        })
        .build(manager)
        .unwrap();
    let start = Instant::now();
    let e = refusing.get().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "fails fast, no waiting");
    assert!(
        matches!(&e, PoolError::Backend(TestError(m)) if m == "search_path refused"),
        "{e:?}"
    );
    assert_eq!(counts.connects(), 1);
    assert_eq!(
        counts.live(),
        0,
        "the connection the hook refused is closed"
    );
    assert_eq!(Pool::stats(&refusing).size, 0);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_after_connect_is_a_connect_timeout() {
    let pool = ConnectionPool::builder()
        .max_size(1)
        .connect_timeout(Duration::from_secs(2))
        .after_connect(|_: &mut Conn| Box::pin(std::future::pending()))
        .build(TestManager::new())
        .unwrap();
    let start = Instant::now();
    let e = pool.get().await.unwrap_err();
    assert!(matches!(e, PoolError::ConnectTimeout { .. }), "{e:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

/// A refusing `before_checkout` closes that connection and the caller gets
/// the next one; with `max_size` 1 the slot it held is not lost.
#[tokio::test(start_paused = true)]
async fn before_checkout_refusal_closes_and_moves_on_without_losing_the_slot() {
    let manager = TestManager::new();
    let (counts, _) = manager.handles();
    let pool = ConnectionPool::builder()
        .max_size(1)
        .before_checkout(|c: &mut Conn| {
            let id = c.id;
            Box::pin(async move {
                if id < 2 {
                    Err(TestError(format!("connection {id} refused")))
                } else {
                    Ok(())
                }
            })
        })
        .build(manager)
        .unwrap();
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 2, "0 and 1 were refused");
    assert_eq!(counts.max_live(), 1, "never above max_size");
    drop(conn);
    assert_eq!(pool.get().await.unwrap().id, 2, "accepted ones are reused");
    let s = Pool::stats(&pool);
    assert_eq!((s.closed_check_failed, s.size), (2, 1));

    // A hook that never answers is refused at `connect_timeout`.
    let hung = ConnectionPool::builder()
        .max_size(1)
        .connect_timeout(Duration::from_secs(1))
        .acquire_timeout(Duration::from_millis(2500))
        .before_checkout(|_: &mut Conn| Box::pin(std::future::pending()))
        .build(TestManager::new())
        .unwrap();
    let start = Instant::now();
    let e = hung.get().await.unwrap_err();
    assert!(matches!(e, PoolError::Timeout { .. }), "{e:?}");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(2500),
        "bounded by acquire_timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn after_return_may_discard() {
    let manager = TestManager::new();
    let (counts, _) = manager.handles();
    let pool = ConnectionPool::builder()
        .max_size(1)
        .after_return(|c: &mut Conn| {
            let dirty = c.dirty;
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if dirty {
                    Err(TestError("left dirty".into()))
                } else {
                    Ok(())
                }
            })
        })
        .build(manager)
        .unwrap();
    drop(pool.get().await.unwrap());
    settle().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        pool.get().await.unwrap().id,
        0,
        "kept: the hook accepted it"
    );
    let mut conn = pool.get().await.unwrap();
    conn.dirty = true;
    drop(conn);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        pool.get().await.unwrap().id,
        1,
        "discarded: the hook refused it"
    );
    assert_eq!(counts.connects(), 2);
    assert_eq!(Pool::stats(&pool).closed_broken, 1);
}

/// A keyed pool built from a `Builder` gives its hooks to every sub-pool.
#[tokio::test(start_paused = true)]
async fn a_keyed_pool_gives_its_hooks_to_every_key() {
    use pool_core::KeyedPool;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let builder = ConnectionPool::builder().max_size(2).after_connect({
        let seen = seen.clone();
        move |c: &mut Conn| {
            seen.lock().unwrap().push(c.id);
            Box::pin(async { Ok(()) })
        }
    });
    let pool = KeyedPool::from_builder("keyed", builder, 10, |_: &u8| TestManager::new()).unwrap();
    for key in 0..3u8 {
        drop(pool.get(&key).await.unwrap());
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "one connect per key, each through the hook"
    );
}
