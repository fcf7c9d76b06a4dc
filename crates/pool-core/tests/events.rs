//! Events on paused time: the sequence an observer sees for a get, a return,
//! a timeout, a discard, a failed connect and a close, and the totals of
//! `Stats` that come with them.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::{CloseReason, ConnectionPool, Event, FailureKind, KeyedPool, Observer, Pool};
use support::{Act, TestManager};

/// Every event, in order, with the pool's name.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, Event)>>);

impl Observer for Recorder {
    fn on_event(&self, pool: &str, event: Event) {
        self.0.lock().unwrap().push((pool.to_string(), event));
    }
}

impl Recorder {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }
}

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn get_return_timeout_discard_and_close_in_order() {
    let seen = Arc::new(Recorder::default());
    let pool = ConnectionPool::builder()
        .max_size(1)
        .acquire_timeout(100 * MS)
        .observer(seen.clone())
        .build(TestManager::new().connect_with(Act::Slow(20 * MS)))
        .unwrap();

    let conn = pool.get().await.unwrap();
    tokio::time::sleep(30 * MS).await;
    drop(conn);
    let events = seen.take();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[0],
        Event::Created {
            connect_time: 20 * MS
        }
    );
    assert_eq!(events[1], Event::CheckedOut { wait: 20 * MS });
    let Event::CheckedIn { used } = events[2] else {
        panic!("{events:?}")
    };
    // The coarse clock ticks every millisecond while observed.
    assert!(used >= 29 * MS && used <= 31 * MS, "{used:?}");

    // The idle connection again, in the tick of the last hand-over: logged
    // (no wait, no clock read), handed over with its return.
    let held = pool.get().await.unwrap();
    assert_eq!(seen.take(), []);
    let e = pool.get().await.unwrap_err();
    assert!(matches!(e, pool_core::PoolError::Timeout { .. }), "{e}");
    assert_eq!(seen.take(), [Event::TimedOut { waited: 100 * MS }]);
    held.discard();
    let events = seen.take();
    assert!(
        matches!(
            events[..],
            [
                Event::CheckedOut {
                    wait: Duration::ZERO
                },
                Event::CheckedIn { .. },
                Event::Closed {
                    reason: CloseReason::Broken
                }
            ]
        ),
        "{events:?}"
    );

    // A return logged in the tick of its checkout comes out before the
    // connection's `Closed`.
    drop(pool.get().await.unwrap());
    assert!(matches!(
        seen.take()[..],
        [Event::Created { .. }, Event::CheckedOut { .. }]
    ));
    assert!(pool.close(Duration::from_secs(1)).await);
    assert!(
        matches!(
            seen.take()[..],
            [
                Event::CheckedIn { .. },
                Event::Closed {
                    reason: CloseReason::PoolClosed
                }
            ]
        ),
        "{events:?}"
    );

    let s = Pool::stats(&pool);
    assert_eq!((s.created, s.create_time.count), (2, 2));
    assert_eq!((s.create_time.total, s.create_time.max), (40 * MS, 20 * MS));
    assert_eq!(s.wait_time.count, s.acquired_waited);
    assert_eq!((s.wait_time.count, s.wait_time.max), (2, 20 * MS));
    assert_eq!(s.use_time.count, 3, "every checkout came back: {s:?}");
    assert!(s.use_time.max >= 29 * MS, "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn failed_connects_report_their_kind_not_their_message() {
    let seen = Arc::new(Recorder::default());
    let build = |m: TestManager| {
        ConnectionPool::builder()
            .max_size(1)
            .connect_timeout(50 * MS)
            .acquire_timeout(200 * MS)
            .observer(seen.clone())
            .build(m)
            .unwrap()
    };
    let refused = build(TestManager::new().connect_with(Act::Fail));
    refused.get().await.unwrap_err();
    let mut transient = TestManager::new().connect_with(Act::Fail);
    transient.transient = true;
    let transient = build(transient);
    transient.get().await.unwrap_err();
    let hanging = build(TestManager::new().connect_with(Act::Hang));
    hanging.get().await.unwrap_err();
    assert_eq!(
        seen.take(),
        [
            Event::ConnectFailed {
                kind: FailureKind::Permanent
            },
            Event::ConnectFailed {
                kind: FailureKind::Transient
            },
            Event::ConnectFailed {
                kind: FailureKind::Timeout
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn without_an_observer_use_time_is_not_counted() {
    let pool = ConnectionPool::builder()
        .max_size(1)
        .build(TestManager::new())
        .unwrap();
    let conn = pool.get().await.unwrap();
    tokio::time::sleep(30 * MS).await;
    drop(conn);
    let s = Pool::stats(&pool);
    assert_eq!((s.acquired_total, s.use_time.count), (1, 0));
    assert_eq!(s.create_time.count, 1, "create times are always counted");
}

#[tokio::test(start_paused = true)]
async fn keyed_sub_pools_report_under_their_own_names() {
    let seen = Arc::new(Recorder::default());
    let pool = KeyedPool::from_builder(
        "api",
        ConnectionPool::builder().max_size(2).observer(seen.clone()),
        4,
        |_: &&str| TestManager::new(),
    )
    .unwrap();
    drop(pool.get(&"a").await.unwrap());
    drop(pool.get(&"b").await.unwrap());
    // The returns were logged in the tick of their checkouts.
    assert_eq!(seen.0.lock().unwrap().len(), 4);
    pool.flush_events();
    let names: Vec<String> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    for key in ["api[\"a\"]", "api[\"b\"]"] {
        assert_eq!(names.iter().filter(|n| *n == key).count(), 3, "{names:?}");
    }
    assert_eq!(Pool::stats(&pool).use_time.count, 2);
}

/// A pool of one connection with a recorder installed.
fn observed_pool(manager: TestManager) -> (Arc<Recorder>, ConnectionPool<TestManager>) {
    let seen = Arc::new(Recorder::default());
    let pool = ConnectionPool::builder()
        .max_size(1)
        .observer(seen.clone())
        .build(manager)
        .unwrap();
    (seen, pool)
}

/// A busy connection hands its checkouts and returns over in batches: every
/// one of them, in order, at the latest on `flush_events` or the reaper's
/// pass; a quiet one at once.
#[tokio::test(start_paused = true)]
async fn a_busy_connection_hands_its_events_over_in_batches_in_order() {
    let (seen, pool) = observed_pool(TestManager::new());
    drop(pool.get().await.unwrap());
    pool.flush_events();
    seen.take();
    for _ in 0..100 {
        drop(pool.get().await.unwrap());
    }
    let early = seen.take().len();
    assert!(
        early < 200,
        "all in one tick: not one call per event ({early})"
    );
    pool.flush_events();
    let mut events = seen.take();
    assert_eq!(early + events.len(), 200);
    assert_eq!(
        Pool::stats(&pool).use_time.count,
        101,
        "use times at hand-over"
    );
    events.drain(..early % 2);
    assert!(
        events.chunks(2).all(|p| matches!(
            p,
            [Event::CheckedOut { .. }, Event::CheckedIn { .. }] | [Event::CheckedIn { .. }]
        )),
        "{events:?}"
    );

    // Logged in the tick of the hand-over above; the reaper's pass hands it on.
    drop(pool.get().await.unwrap());
    assert_eq!(seen.take(), []);
    pool.reap_now().await;
    assert_eq!(seen.take().len(), 2);

    // A quiet connection (past the clock's next tick since the last
    // hand-over) reports at once.
    tokio::time::sleep(2 * MS).await;
    let conn = pool.get().await.unwrap();
    assert_eq!(seen.take().len(), 1);
    tokio::time::sleep(2 * MS).await;
    drop(conn);
    assert_eq!(seen.take().len(), 1);
}

/// A checkout that waited (here for the connect) on a connection that never
/// reported goes out at once, with its wait.
#[tokio::test(start_paused = true)]
async fn a_checkout_that_waited_goes_out_at_once_with_its_wait() {
    let (seen, pool) = observed_pool(TestManager::new().connect_with(Act::Slow(5 * MS)));
    let conn = pool.get().await.unwrap();
    assert_eq!(
        seen.take(),
        [
            Event::Created {
                connect_time: 5 * MS
            },
            Event::CheckedOut { wait: 5 * MS }
        ]
    );
    tokio::time::sleep(2 * MS).await;
    drop(conn);
    // Use times are read from the coarse clock: within a tick of 2 ms.
    let events = seen.take();
    assert!(
        matches!(events[..], [Event::CheckedIn { used }] if (MS..=2 * MS).contains(&used)),
        "{events:?}"
    );
}

/// A pool dropped without `close` still hands over what its connections
/// logged.
#[tokio::test(start_paused = true)]
async fn a_dropped_pool_hands_over_what_its_connections_logged() {
    let (seen, pool) = observed_pool(TestManager::new());
    drop(pool.get().await.unwrap());
    drop(pool.get().await.unwrap());
    let returns = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::CheckedIn { .. }))
            .count()
    };
    assert_eq!(returns(&seen.take()), 0, "both logged in the same tick");
    drop(pool);
    assert_eq!(returns(&seen.take()), 2);
}
