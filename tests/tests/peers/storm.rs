//! A cancellation storm: 40 waves of 50 calls on a pool of 5, each call under
//! a random deadline of 0–5 ms (the same sequence of deadlines for every
//! pool). For each pool: calls completed and cut, replies that reached the
//! wrong caller, the most sessions the server saw, what the pool reports once
//! settled, and whether every connection it kept answers its own next query.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use unipool_tests::rng::Rng;

use unipool_tests::pg::{named, ServerCount};

use crate::support::{Counts, Kind, Knobs, Subject, ALL};

const MAX: usize = 5;
const WAVES: i32 = 40;
const PER_WAVE: i32 = 50;
const SQL: &str = "SELECT $1::int, pg_sleep(0.0005)";

#[derive(Debug, Default)]
struct Tally {
    done: AtomicUsize,
    cut: AtomicUsize,
    failed: AtomicUsize,
    wrong: AtomicUsize,
    last_error: Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, v: i32, r: Option<Result<i32, String>>) {
        let n = match r {
            None => &self.cut,
            Some(Ok(got)) if got != v => &self.wrong,
            Some(Ok(_)) => &self.done,
            Some(Err(e)) => {
                *self.last_error.lock().unwrap() = Some(e);
                &self.failed
            }
        };
        n.fetch_add(1, SeqCst);
    }

    fn read(&self) -> [usize; 4] {
        [&self.done, &self.cut, &self.failed, &self.wrong].map(|n| n.load(SeqCst))
    }
}

async fn storm(subject: &Arc<Subject>, mut rng: Rng) -> [usize; 4] {
    let tally = Arc::new(Tally::default());
    for wave in 0..WAVES {
        let mut set = tokio::task::JoinSet::new();
        for k in 0..PER_WAVE {
            let (subject, tally, deadline) = (subject.clone(), tally.clone(), rng.deadline());
            let v = wave * PER_WAVE + k;
            set.spawn(async move {
                let r = tokio::time::timeout(deadline, subject.echo(SQL, v)).await;
                tally.record(v, r.ok());
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    }
    tally.read()
}

/// What the pool reports once nothing should be in use (at most 5 s).
async fn settled(subject: &Subject) -> Counts {
    let start = Instant::now();
    loop {
        let c = subject.counts();
        let idle = c.size == c.idle && c.waiting.unwrap_or(0) == 0;
        if idle || start.elapsed() > Duration::from_secs(5) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_storm_side_by_side() {
    unipool_tests::require!("postgres");
    let base = unipool_tests::pg::url();
    let knobs = Knobs::new(MAX, Duration::from_secs(10), Duration::from_secs(1));
    let rng = Rng::new();
    for kind in ALL {
        let (url, app) = named(&base, &format!("peers_storm_{kind:?}"));
        let server = ServerCount::start(&base, &app).await;
        let subject = Arc::new(Subject::build(kind, &url, &knobs).await);
        let [done, cut, failed, wrong] = storm(&subject, rng.clone()).await;
        let counts = settled(&subject).await;
        // Every connection left answers its own query.
        let next = Tally::default();
        let mut set = tokio::task::JoinSet::new();
        for v in 0..(4 * MAX as i32) {
            let subject = subject.clone();
            set.spawn(async move { (v, subject.echo("SELECT $1::int", v).await) });
        }
        while let Some(r) = set.join_next().await {
            let (v, r) = r.unwrap();
            next.record(v, Some(r));
        }
        let server_max = server.stop().await;
        let [next_ok, _, next_failed, next_wrong] = next.read();
        eprintln!(
            "{}: {done} done, {cut} cut, {failed} failed, {wrong} wrong replies; the server saw \
             at most {server_max}; settled {counts:?}; then {next_ok} ok, {next_failed} failed, \
             {next_wrong} wrong (last error: {:?})",
            kind.name(),
            next.last_error.lock().unwrap()
        );
        if kind == Kind::Ours {
            assert_eq!((failed, wrong), (0, 0));
            assert!(server_max <= MAX, "the server saw {server_max}");
            assert_eq!(
                (counts.size, counts.waiting),
                (counts.idle, Some(0)),
                "{counts:?}"
            );
            assert_eq!((next_failed, next_wrong), (0, 0));
        }
    }
}
