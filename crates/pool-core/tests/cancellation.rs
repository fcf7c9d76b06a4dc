//! Guarantee 2: a `get()` dropped at any await point loses no slot, no waiter and
//! no connection (bb8 #67, sqlx #83, mobc #63) — as a matrix of managers that
//! succeed, fail, are slow or never answer in connect, check or reset, with gets
//! cancelled at many instants.

mod support;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pool_core::ConnectionPool;
use support::{settle, Act, Script, TestManager};

const MAX: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Phase {
    Connect,
    Check,
    Reset,
}

fn set(script: &std::sync::Mutex<Script>, phase: Phase, act: Act) {
    let mut s = script.lock().unwrap();
    *s = Script {
        connect: Act::Ok,
        check: Act::Ok,
        reset: Act::Ok,
    };
    match phase {
        Phase::Connect => s.connect = act,
        Phase::Check => s.check = act,
        Phase::Reset => s.reset = act,
    }
}

async fn one_case(phase: Phase, act: Act, cancel_after: Duration) {
    let m = TestManager::new();
    let (counts, script) = m.handles();
    let pool = ConnectionPool::builder()
        .max_size(MAX)
        .validate_after(Duration::ZERO)
        .connect_timeout(Duration::from_millis(20))
        .acquire_timeout(Duration::from_secs(1))
        .build(m)
        .unwrap();
    // Two idle connections, so that check and reset have something to run on.
    let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    drop((a, b));
    set(&script, phase, act);

    let gets: Vec<_> = (0..2 * MAX)
        .map(|i| {
            let p = pool.clone();
            tokio::spawn(async move {
                let cancel = cancel_after + Duration::from_micros(300 * i as u64);
                if let Ok(Ok(c)) = tokio::time::timeout(cancel, p.get()).await {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    drop(c);
                }
            })
        })
        .collect();
    for g in gets {
        g.await.unwrap();
    }
    // Let connects and probes started for cancelled callers finish or time out.
    tokio::time::sleep(Duration::from_millis(100)).await;
    settle().await;

    let case = format!("{phase:?} {act:?} cancelled after {cancel_after:?}");
    let s = pool.stats();
    assert!(
        counts.max_live() <= MAX,
        "{case}: {} alive",
        counts.max_live()
    );
    assert_eq!(s.waiting, 0, "{case}: waiter left behind");
    assert_eq!(s.in_use, 0, "{case}: slot lost as in use: {s:?}");
    assert_eq!(s.opening, 0, "{case}: connect never finished");
    assert_eq!(s.size, counts.live(), "{case}: pool and sockets disagree");

    // No lost slot: all MAX connections can be held at once.
    set(&script, phase, Act::Ok);
    let mut held = Vec::new();
    for _ in 0..MAX {
        held.push(
            pool.get_timeout(Duration::from_secs(1))
                .await
                .unwrap_or_else(|e| panic!("{case}: slot lost: {e}")),
        );
    }
    assert!(counts.max_live() <= MAX, "{case}");
}

#[tokio::test(start_paused = true)]
async fn cancellation_matrix_loses_no_slot() {
    let acts = [
        Act::Ok,
        Act::Fail,
        Act::Slow(Duration::from_millis(5)),
        Act::Hang,
    ];
    let instants = [0u64, 1, 2, 3, 5, 8, 13, 30]
        .map(Duration::from_millis)
        .into_iter()
        .chain([Duration::from_micros(100), Duration::from_micros(700)]);
    let instants: Vec<_> = instants.collect();
    for phase in [Phase::Connect, Phase::Check, Phase::Reset] {
        for act in acts {
            for &at in &instants {
                one_case(phase, act, at).await;
            }
        }
    }
}

/// Polls a future once and returns whether it completed.
fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> bool {
    let waker = std::task::Waker::noop();
    matches!(f.poll(&mut Context::from_waker(waker)), Poll::Ready(_))
}

#[tokio::test(start_paused = true)]
async fn a_parked_get_dropped_leaves_the_queue() {
    let pool = ConnectionPool::builder()
        .max_size(1)
        .build(TestManager::new())
        .unwrap();
    let held = pool.get().await.unwrap();
    {
        let mut get = pin!(pool.get());
        assert!(!poll_once(get.as_mut()));
        assert_eq!(pool.stats().waiting, 1);
    }
    assert_eq!(pool.stats().waiting, 0);
    drop(held);
    assert_eq!(pool.stats().idle, 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_handed_to_a_cancelled_waiter_comes_back() {
    // fairness_window 0: every return goes straight to the oldest waiter.
    let pool = ConnectionPool::builder()
        .max_size(1)
        .fairness_window(Duration::ZERO)
        .build(TestManager::new())
        .unwrap();
    let held = pool.get().await.unwrap();
    let mut get = Box::pin(pool.get());
    assert!(!poll_once(get.as_mut()));
    drop(held); // handed to the parked get, which is never polled again
    assert_eq!(pool.stats().idle, 0);
    drop(get);
    let s = pool.stats();
    assert_eq!((s.idle, s.waiting, s.size), (1, 0, 1));
    assert!(pool.try_get().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_connect_outlives_its_cancelled_caller() {
    let m = TestManager::new().connect_with(Act::Slow(Duration::from_millis(50)));
    let (counts, _) = m.handles();
    let pool = ConnectionPool::builder().max_size(1).build(m).unwrap();
    let r = tokio::time::timeout(Duration::from_millis(10), pool.get()).await;
    assert!(r.is_err());
    tokio::time::sleep(Duration::from_millis(60)).await;
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.opening), (1, 1, 0));
    assert_eq!(counts.connects(), 1);
    // The next caller gets the connection opened for the cancelled one.
    drop(pool.get().await.unwrap());
    assert_eq!(counts.connects(), 1);
}
