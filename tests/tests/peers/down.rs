//! The "database down" contract: one throwaway PostgreSQL stopped
//! (`-m immediate`, a crash) under each warm pool and started again. For
//! each: how long a call takes to fail while the server is down and what its
//! error says, and how long after the restart the pool serves again.

use std::time::{Duration, Instant};

use unipool_tests::pg::ThrowawayPg;

use crate::support::{Knobs, Subject, ALL};

const MAX: usize = 4;
/// How long any of them may wait for a connection.
const WAIT: Duration = Duration::from_secs(2);
const CONNECT: Duration = Duration::from_secs(1);

/// What one pool did around the outage.
struct Contract {
    name: &'static str,
    /// The first call after the crash that failed: its duration and error.
    failed_in: Duration,
    error: String,
    /// The calls after it, once the connections that died with the server
    /// are gone and a call needs a connect: the longest and the last error.
    then_in: Duration,
    then_error: String,
    /// From `pg_ctl start` returning to the first successful call.
    recovered_in: Option<Duration>,
}

async fn measure(pg: &ThrowawayPg, subject: Subject) -> Contract {
    for _ in 0..MAX {
        subject.call().await.expect("serves before the crash");
    }
    pg.stop_immediate();
    // The first call that fails, within 10 calls (a pool may hand out a
    // connection that has not noticed yet).
    let (mut failed_in, mut error) = (Duration::ZERO, String::from("(no call failed)"));
    for _ in 0..10 {
        let start = Instant::now();
        if let Err(e) = subject.call().await {
            failed_in = start.elapsed();
            error = e;
            break;
        }
    }
    let (mut then_in, mut then_error) = (Duration::ZERO, String::new());
    for _ in 0..MAX + 2 {
        let start = Instant::now();
        if let Err(e) = subject.call().await {
            then_in = then_in.max(start.elapsed());
            then_error = e;
        }
    }
    pg.start_again();
    let restarted = Instant::now();
    let mut recovered_in = None;
    while restarted.elapsed() < Duration::from_secs(15) {
        if subject.call().await.is_ok() {
            recovered_in = Some(restarted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Contract {
        name: subject.name(),
        failed_in,
        error,
        then_in,
        then_error,
        recovered_in,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_side_by_side_with_bb8_and_deadpool() {
    let pg = ThrowawayPg::start(None);
    let knobs = Knobs::new(MAX, WAIT, CONNECT);
    let mut results = Vec::new();
    for kind in ALL {
        let subject = Subject::build(kind, &pg.url(), &knobs).await;
        results.push(measure(&pg, subject).await);
    }
    for r in &results {
        eprintln!(
            "{}: first failure in {:?}: {:?}; then up to {:?}: {:?}; served again {:?} after the restart",
            r.name, r.failed_in, r.error, r.then_in, r.then_error, r.recovered_in
        );
    }
    let ours = &results[0];
    assert!(
        ours.failed_in <= CONNECT + Duration::from_millis(500),
        "pool-sql took {:?} to fail",
        ours.failed_in
    );
    assert!(
        ours.error.contains("refused")
            || ours.error.contains("closed")
            || ours.error.contains("terminat"),
        "pool-sql's error does not name the cause: {}",
        ours.error
    );
    assert!(
        ours.then_in <= CONNECT + Duration::from_millis(500),
        "pool-sql took {:?} to fail a call that needs a connect",
        ours.then_in
    );
    assert!(
        ours.then_error.contains("refused"),
        "a connect to a stopped server is not named as refused: {}",
        ours.then_error
    );
    let back = ours.recovered_in.expect("pool-sql never served again");
    assert!(
        back < Duration::from_secs(1),
        "pool-sql served again only after {back:?}"
    );
}
