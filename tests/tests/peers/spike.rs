//! A spike: 200 tasks at once on a pool of 10 (`min_idle` 2, `idle_timeout`
//! 1 s, reaper every 100 ms where the pool has one) whose connects take
//! 150 ms (the proxy dials the server only after that delay). For each pool:
//! how long until all were served, the most connections the pool held and the
//! server saw (its own count of the pool's sessions), the connects made, and
//! how long after the spike the pool was back to `min_idle`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use unipool_tests::proxy::{addr_of, through, Proxy};

use unipool_tests::pg::{named, ServerCount};

use crate::support::{Kind, Knobs, Subject, ALL};

const TASKS: i32 = 200;
const MAX: usize = 10;
const MIN_IDLE: usize = 2;
const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// Waits until the pool holds `MIN_IDLE` connections, for at most
/// `IDLE_TIMEOUT` + 3 s; how long that took.
async fn back_to_min_idle(subject: &Subject) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < IDLE_TIMEOUT + Duration::from_secs(3) {
        if subject.counts().size <= MIN_IDLE {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_on_slow_connects_side_by_side() {
    unipool_tests::require!("postgres");
    let base = unipool_tests::pg::url();
    let knobs = Knobs {
        min_idle: MIN_IDLE,
        idle_timeout: Some(IDLE_TIMEOUT),
        reap: Duration::from_millis(100),
        ..Knobs::new(MAX, Duration::from_secs(30), Duration::from_secs(1))
    };
    for kind in ALL {
        let proxy = Proxy::start(addr_of(&base)).await;
        proxy.set_connect_delay(Duration::from_millis(150));
        let (url, app) = named(&through(&base, &proxy), &format!("peers_spike_{kind:?}"));
        let server = ServerCount::start(&base, &app).await;
        let subject = Arc::new(Subject::build(kind, &url, &knobs).await);
        let pool_max = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..TASKS {
            let (subject, pool_max) = (subject.clone(), pool_max.clone());
            set.spawn(async move {
                let v = subject.echo("SELECT $1::int", i).await;
                pool_max.fetch_max(subject.counts().size, SeqCst);
                v
            });
        }
        let mut failed = 0;
        while let Some(r) = set.join_next().await {
            failed += usize::from(r.unwrap().is_err());
        }
        let served_in = start.elapsed();
        let shrank_in = back_to_min_idle(&subject).await;
        let server_max = server.stop().await;
        let (held, connects) = (pool_max.load(SeqCst), proxy.accepted());
        eprintln!(
            "{}: {TASKS} calls done in {served_in:.0?} ({failed} failed); the pool held at most \
             {held}, the server saw at most {server_max}; {connects} connects; back to min_idle \
             {shrank_in:.2?} after the spike ({:?})",
            kind.name(),
            subject.counts()
        );
        if kind == Kind::Ours {
            assert_eq!(failed, 0);
            assert!(held <= MAX && server_max <= MAX, "{held} / {server_max}");
            assert!(connects as usize <= MAX, "{connects} connects");
            let shrank_in = shrank_in.expect("pool-sql did not shrink back to min_idle");
            assert!(
                shrank_in <= IDLE_TIMEOUT + Duration::from_secs(1),
                "{shrank_in:?}"
            );
        }
    }
}
