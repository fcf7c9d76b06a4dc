//! A server gone silent: the proxy forwards nothing and closes nothing, as a
//! peer gone without FIN. Warm pools of 2, idle past pool-sql's
//! `validate_after` (500 ms; its clock is coarse, so 1 s), then three calls each under a caller's deadline
//! of 3 s: how each ended and when; then, once traffic passes again, the
//! calls until one succeeds (at most three).

use std::time::{Duration, Instant};

use unipool_tests::proxy::{addr_of, through, Mode, Proxy};

use crate::support::{Kind, Knobs, Subject, ALL};

const WAIT: Duration = Duration::from_secs(2);
const CONNECT: Duration = Duration::from_secs(1);
/// The caller's own deadline on each call.
const CALLER: Duration = Duration::from_secs(3);

/// How one call ended.
enum End {
    Ok(Duration),
    Failed(Duration, String),
    /// Still running at the caller's deadline.
    Hung,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Ok(d) => write!(f, "ok in {d:.1?}"),
            End::Failed(d, e) => write!(f, "failed in {d:.1?}: {e:?}"),
            End::Hung => write!(f, "hung until the caller's {CALLER:?} deadline"),
        }
    }
}

async fn timed(subject: &Subject) -> End {
    let start = Instant::now();
    match tokio::time::timeout(CALLER, subject.call()).await {
        Ok(Ok(())) => End::Ok(start.elapsed()),
        Ok(Err(e)) => End::Failed(start.elapsed(), e),
        Err(_) => End::Hung,
    }
}

fn list(ends: &[End]) -> String {
    ends.iter()
        .map(End::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_silent_side_by_side() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let knobs = Knobs::new(2, WAIT, CONNECT);
    let mut ours = None;
    for kind in ALL {
        let proxy = Proxy::start(addr_of(&url)).await;
        let subject = Subject::build(kind, &through(&url, &proxy), &knobs).await;
        subject.warm(2).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        proxy.set_mode(Mode::Blackhole);
        let mut silent = Vec::new();
        for _ in 0..3 {
            silent.push(timed(&subject).await);
        }
        proxy.set_mode(Mode::Pass);
        let mut after = Vec::new();
        for _ in 0..3 {
            let end = timed(&subject).await;
            let served = matches!(end, End::Ok(_));
            after.push(end);
            if served {
                break;
            }
        }
        eprintln!(
            "{}: while silent: {}. Once traffic passes: {}",
            kind.name(),
            list(&silent),
            list(&after)
        );
        if kind == Kind::Ours {
            ours = Some((silent, after));
        }
    }
    let (silent, after) = ours.unwrap();
    for end in &silent {
        let End::Failed(took, _) = end else {
            panic!(
                "pool-sql: a call on a silent server did not fail by the pool's deadline: {end}"
            );
        };
        assert!(*took <= WAIT + Duration::from_millis(300), "{end}");
    }
    assert!(
        matches!(after[0], End::Ok(_)),
        "pool-sql did not serve at once when traffic passed again: {}",
        list(&after)
    );
}
