//! `bench zmq`: pooled REQ sockets against a new socket per request (the
//! floor) and one dedicated REQ socket per task (the ceiling), 16 tasks, each
//! request echoed by an in-process ROUTER peer (its own thread and context:
//! the tests' `ZmqPeer`).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pool_zmq::{SocketConfig, SocketKind, ZmqConfig, ZmqPool};
use unipool_tests::zmq_peer::{Echo, ZmqPeer};

use crate::report::{ms, Report, Row, Run, Spread, RATIO};

const TASKS: usize = 16;

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Pool,
    Dedicated,
    PerRequest,
}

/// One request and its reply on a dedicated socket (no pool), awaited with
/// the same readiness code as the pool's: a pool socket leased for the whole
/// task, so that only the per-request lease differs.
async fn drive(client: Client, pool: &ZmqPool, cfg: &SocketConfig, total: usize) -> Run {
    let per = (total / TASKS).max(1);
    Run::measure(TASKS, |i| {
        let (pool, cfg) = (pool.clone(), cfg.clone());
        async move {
            let mut lat = Vec::with_capacity(per);
            let mut own = match client {
                Client::Dedicated => Some(pool.get(&cfg).await.expect("socket")),
                _ => None,
            };
            for n in 0..per {
                let msg = format!("{i}:{n}").into_bytes();
                let s = Instant::now();
                match client {
                    Client::Pool => {
                        pool.request(&cfg, [msg]).await.expect("request");
                    }
                    Client::Dedicated => {
                        let sock = own.as_mut().expect("own socket");
                        sock.send([msg]).await.expect("send");
                        sock.recv().await.expect("reply");
                    }
                    Client::PerRequest => {
                        // A socket per request, as the code it replaces did;
                        // the context is shared (a context per call is
                        // slower still), and no monitor (that code had none).
                        let mut bare = cfg.clone();
                        bare.options.monitor = false;
                        let mut sock = pool.get(&bare).await.expect("socket");
                        sock.send([msg]).await.expect("send");
                        sock.recv().await.expect("reply");
                        sock.retire();
                    }
                }
                lat.push(s.elapsed());
            }
            lat
        }
    })
    .await
}

async fn bench(quick: bool, report: &mut Report, table: &mut String) -> Result<(), String> {
    let peer = ZmqPeer::echo(Echo::Router, Duration::ZERO);
    let (total, runs) = if quick {
        (1_600, 1)
    } else {
        (16_000, report.effort.pick(1, 9, 9))
    };
    let mut config = ZmqConfig::default();
    config.pool.max_size = TASKS;
    config.max_total = TASKS;
    let pool = ZmqPool::new(config).map_err(|e| e.to_string())?;
    let cfg = SocketConfig::connect(SocketKind::Req, &peer.endpoint);
    drive(Client::Pool, &pool, &cfg, total / 10).await;
    let (mut pv, mut dv, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let (p, d) = if i % 2 == 0 {
            let p = drive(Client::Pool, &pool, &cfg, total).await;
            (p, drive(Client::Dedicated, &pool, &cfg, total).await)
        } else {
            let d = drive(Client::Dedicated, &pool, &cfg, total).await;
            (drive(Client::Pool, &pool, &cfg, total).await, d)
        };
        ratios.push(p.rps / d.rps);
        pv.push(p);
        dv.push(d);
    }
    let vs_ceiling = Spread::of(&mut ratios);
    report.spread_rows("zmq", "req-echo", "pool-zmq", RATIO, vs_ceiling);
    let (p, d) = (Run::median_of(pv), Run::median_of(dv));
    let floor_total = total / 10;
    let f = drive(Client::PerRequest, &pool, &cfg, floor_total).await;
    let _ = writeln!(
        table,
        "## zmq\n\nREQ request echoed by an in-process ROUTER peer (its own thread and context), {TASKS} tasks, \
         {total} requests per run, median of {runs} (the floor: {floor_total} requests, a new socket and TCP \
         connection each). pool-zmq vs the ceiling: median of the per-run ratios, the two run back to back in \
         alternating order\n\n| client | round trips/s | p50 ms | p99 ms | pool-zmq vs it |\n|---|---:|---:|---:|---:|"
    );
    for (name, key, r, ratio) in [
        ("pool-zmq (`request`)", "pool-zmq", &p, None),
        (
            "dedicated socket per task (ceiling)",
            "dedicated",
            &d,
            Some(vs_ceiling.times()),
        ),
        (
            "socket per request (floor)",
            "per-request",
            &f,
            Some(format!("{:.2}x", p.rps / f.rps)),
        ),
    ] {
        let ratio = ratio.unwrap_or_default();
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.3} | {:.3} | {ratio} |",
            r.rps,
            ms(r.p50),
            ms(r.p99)
        );
        for (metric, value) in [
            ("round_trips_per_sec", r.rps),
            ("p50_ms", ms(r.p50)),
            ("p99_ms", ms(r.p99)),
        ] {
            report.rows.push(Row {
                suite: "zmq",
                case: "req-echo".into(),
                pool: key,
                metric,
                value,
            });
        }
    }
    pool.close(Duration::from_secs(2)).await;
    Ok(())
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let quick = report.effort.is_quick();
    let mut table = String::new();
    crate::report::runtime()?.block_on(bench(quick, report, &mut table))?;
    report.finish(table);
    Ok(())
}
