//! Every open connection cut while 100 tasks keep a pool of 10 busy: the
//! proxy cuts them all twice, 300 ms apart, during 1.5 s of traffic. For each
//! pool: calls that succeeded (and after the first cut), failed, or hung past
//! 10 s; a connection held by two tasks at once (told apart by
//! `pg_backend_pid()`); whether it refilled and ended with nothing in use.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use unipool_tests::proxy::{addr_of, through, Proxy};

use crate::support::{Holders, Kind, Knobs, Subject, ALL};

const TASKS: i32 = 100;
/// A call still running after this is counted as hung (and abandoned).
const HUNG: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Tally {
    cut: AtomicBool,
    ok: AtomicUsize,
    ok_after_cut: AtomicUsize,
    failed: AtomicUsize,
    hung: AtomicUsize,
    wrong: AtomicUsize,
    holders: Holders,
}

/// One call: the connection's server pid, held while a second query runs.
async fn call(subject: &Subject, tally: &Tally, v: i32) -> bool {
    let Ok(c) = subject.get().await else {
        return false;
    };
    let Ok(row) = c.query_one("SELECT pg_backend_pid()", &[]).await else {
        return false;
    };
    let pid: i32 = row.get(0);
    tally.holders.hold(pid);
    let r = c.query_one("SELECT $1::int, pg_sleep(0.002)", &[&v]).await;
    tally.holders.release(pid);
    match r {
        Ok(row) if row.get::<_, i32>(0) != v => {
            tally.wrong.fetch_add(1, SeqCst);
            false
        }
        r => r.is_ok(),
    }
}

async fn cut_under_load(proxy: &Proxy, subject: Arc<Subject>) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let until = Instant::now() + Duration::from_millis(1500);
    let mut set = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let (subject, tally) = (subject.clone(), tally.clone());
        set.spawn(async move {
            let mut i = 0;
            while Instant::now() < until {
                i += 1;
                let v = t * 100_000 + i;
                match tokio::time::timeout(HUNG, call(&subject, &tally, v)).await {
                    Ok(true) => {
                        tally.ok.fetch_add(1, SeqCst);
                        if tally.cut.load(SeqCst) {
                            tally.ok_after_cut.fetch_add(1, SeqCst);
                        }
                    }
                    Ok(false) => _ = tally.failed.fetch_add(1, SeqCst),
                    Err(_) => _ = tally.hung.fetch_add(1, SeqCst),
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tally.cut.store(true, SeqCst);
    proxy.cut_all();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut_all();
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_cut_under_100_busy_tasks_side_by_side() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let knobs = Knobs::new(10, Duration::from_secs(5), Duration::from_secs(1));
    for kind in ALL {
        let proxy = Proxy::start(addr_of(&url)).await;
        let subject = Arc::new(Subject::build(kind, &through(&url, &proxy), &knobs).await);
        let tally = cut_under_load(&proxy, subject.clone()).await;
        let counts = subject.counts();
        let next = tokio::time::timeout(HUNG, subject.call()).await;
        let (ok, after, failed, hung, wrong, twice) = (
            tally.ok.load(SeqCst),
            tally.ok_after_cut.load(SeqCst),
            tally.failed.load(SeqCst),
            tally.hung.load(SeqCst),
            tally.wrong.load(SeqCst),
            tally.holders.twice.load(SeqCst),
        );
        eprintln!(
            "{}: {ok} ok ({after} after the first cut), {failed} failed, {hung} hung past {HUNG:?}, \
             {wrong} wrong replies, {twice} connections held twice; {} connects; \
             afterwards {counts:?}, next call {next:?}",
            kind.name(),
            proxy.accepted()
        );
        if kind == Kind::Ours {
            assert_eq!((hung, wrong, twice), (0, 0, 0));
            assert!(failed > 0, "the cuts hit no call");
            assert!(after > 0, "pool-sql did not refill after the cuts");
            assert_eq!(
                counts.size, counts.idle,
                "something still in use: {counts:?}"
            );
            assert_eq!(counts.waiting, Some(0));
            assert!(matches!(next, Ok(Ok(()))), "{next:?}");
        }
    }
}
