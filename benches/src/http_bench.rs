//! `bench http`: pool-http against one bare shared reqwest client (the ceiling)
//! and a new client per request (the anti-pattern, the floor), on an in-process
//! hyper server, over HTTP/1.1 and h2c, with 64 concurrent tasks.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use pool_http::{HttpConfig, HttpPool};
use unipool_tests::http_server;

use crate::report::{ms, Report, Row, Run, Spread, RATIO};

const TASKS: usize = 64;

trait Target: Clone + Send + Sync + 'static {
    fn get(&self, url: &str) -> impl Future<Output = ()> + Send;
}

#[derive(Clone)]
struct Ours(HttpPool);

impl Target for Ours {
    async fn get(&self, url: &str) {
        let r = self
            .0
            .send(self.0.get(url).expect("url"))
            .await
            .expect("send");
        r.bytes().await.expect("body");
    }
}

#[derive(Clone)]
struct Bare(reqwest::Client);

impl Target for Bare {
    async fn get(&self, url: &str) {
        let r = self.0.get(url).send().await.expect("send");
        r.bytes().await.expect("body");
    }
}

#[derive(Clone)]
struct PerRequest(bool);

impl Target for PerRequest {
    async fn get(&self, url: &str) {
        let mut b = reqwest::Client::builder();
        if self.0 {
            b = b.http2_prior_knowledge();
        }
        let client = b.build().expect("client");
        let r = client.get(url).send().await.expect("send");
        r.bytes().await.expect("body");
    }
}

async fn drive<T: Target>(t: &T, url: &str, total: usize) -> Run {
    let per = (total / TASKS).max(1);
    Run::measure(TASKS, |_| {
        let (t, url) = (t.clone(), url.to_string());
        async move {
            let mut lat = Vec::with_capacity(per);
            for _ in 0..per {
                let s = Instant::now();
                t.get(&url).await;
                lat.push(s.elapsed());
            }
            lat
        }
    })
    .await
}

/// One measured run and the connections the server accepted during it.
async fn run_counted<T: Target>(
    t: &T,
    server: &http_server::TestServer,
    url: &str,
    total: usize,
) -> (Run, usize) {
    let before = server.seen.connections.load(SeqCst);
    let run = drive(t, url, total).await;
    (run, server.seen.connections.load(SeqCst) - before)
}

/// The run of median throughput, and connections per 1000 requests over all.
fn summarize(runs: Vec<(Run, usize)>, total: usize) -> (Run, f64) {
    let n = runs.len();
    let opened: usize = runs.iter().map(|(_, c)| c).sum();
    let run = Run::median_of(runs.into_iter().map(|(r, _)| r).collect());
    (run, opened as f64 * 1000.0 / (total * n) as f64)
}

async fn bench(quick: bool, report: &mut Report, table: &mut String) {
    // Many short runs: the closer in time the two runs of a pair, the less a
    // change of this shared machine's speed shows in their ratio.
    let (total, runs) = if quick {
        (4_000, 1)
    } else {
        (20_000, report.effort.pick(1, 7, 19))
    };
    // The floor runs at a hundredth of the pool's rate: a fortieth of the
    // requests is enough for its rate and latencies.
    let floor_total = total / 40;
    let _ = writeln!(
        table,
        "## http\n\nGET on an in-process hyper server, {TASKS} tasks, {total} requests per run, median of {runs}; \
         floor with {floor_total} requests. pool-http vs the ceiling: median of the {runs} per-run ratios \
         (the two run back to back, in alternating order); req/s and latencies are those of each \
         client's median run, which on a busy machine may come from different moments\n\n| protocol | client | req/s | p50 ms | p99 ms | connections / 1000 req | pool-http vs it |\n|---|---|---:|---:|---:|---:|---:|",
    );
    // UNIPOOL_BENCH_HTTP_PROTO=h1 or h2c runs one protocol only (for profiling).
    let only = std::env::var("UNIPOOL_BENCH_HTTP_PROTO").ok();
    for h2 in [false, true] {
        if only
            .as_deref()
            .is_some_and(|p| p != if h2 { "h2c" } else { "h1" })
        {
            continue;
        }
        let proto = if h2 { "h2c" } else { "HTTP/1.1" };
        report.cell(proto.to_string());
        let server = http_server::start().await;
        let url = server.url("/ok");
        let config = HttpConfig {
            http2_prior_knowledge: h2,
            max_in_flight: 1024,
            max_in_flight_per_host: 1024,
            max_idle_per_host: 128,
            // Each client sits idle while the other runs (seconds when the
            // machine is busy): the default 4 s would close its connections
            // between runs and count the reconnects against it.
            pool_idle_timeout: Duration::from_secs(60),
            retry: pool_http::RetryPolicy {
                max_attempts: std::env::var("UNIPOOL_BENCH_HTTP_ATTEMPTS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(3),
                ..Default::default()
            },
            ..HttpConfig::default()
        };
        let ours = Ours(HttpPool::new("bench", config.clone()).expect("pool"));
        // The ceiling is the same reqwest client without the pool-http layer:
        // the same timeouts (a per-request timer is reqwest's own cost, not the
        // layer's), idle policy and user agent.
        let mut bare = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(config.pool_idle_timeout)
            .user_agent(config.user_agent.clone());
        if h2 {
            bare = bare.http2_prior_knowledge();
        }
        let bare = Bare(bare.build().expect("client"));
        // Warm both, then measure in turn.
        drive(&ours, &url, total / 10).await;
        drive(&bare, &url, total / 10).await;
        // In turn within each run, so that a change of load on this shared
        // machine hits both alike.
        let (mut ov, mut bv, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..runs {
            let (o, b) = if i % 2 == 0 {
                let o = run_counted(&ours, &server, &url, total).await;
                (o, run_counted(&bare, &server, &url, total).await)
            } else {
                let b = run_counted(&bare, &server, &url, total).await;
                (run_counted(&ours, &server, &url, total).await, b)
            };
            ratios.push(o.0.rps / b.0.rps);
            ov.push(o);
            bv.push(b);
        }
        if only.is_some() {
            report
                .progress
                .println(&format!("per-run vs ceiling: {ratios:.3?}"));
        }
        let vs_ceiling = Spread::of(&mut ratios);
        report.spread_rows("http", proto, "pool-http", RATIO, vs_ceiling);
        let (o, oc) = summarize(ov, total);
        let (b, bc) = summarize(bv, total);
        let floor_total = if only.is_some() { 64 } else { floor_total };
        let (f, fc) = summarize(
            vec![run_counted(&PerRequest(h2), &server, &url, floor_total).await],
            floor_total,
        );
        for (name, r, c, ratio) in [
            ("pool-http", &o, oc, None),
            (
                "bare shared reqwest (ceiling)",
                &b,
                bc,
                Some(vs_ceiling.percent()),
            ),
            (
                "client per request (floor)",
                &f,
                fc,
                Some(format!("{:.0}%", o.rps / f.rps * 100.0)),
            ),
        ] {
            let ratio = ratio.unwrap_or_default();
            let _ = writeln!(
                table,
                "| {proto} | {name} | {:.0} | {:.2} | {:.2} | {c:.2} | {ratio} |",
                r.rps,
                ms(r.p50),
                ms(r.p99)
            );
            for (metric, v) in [
                ("req_per_sec", r.rps),
                ("p50_ms", ms(r.p50)),
                ("p99_ms", ms(r.p99)),
                ("connections_per_1000", c),
            ] {
                report.rows.push(Row {
                    suite: "http",
                    case: proto.to_string(),
                    pool: match name {
                        "pool-http" => "pool-http",
                        n if n.starts_with("bare") => "bare-reqwest",
                        _ => "client-per-request",
                    },
                    metric,
                    value: v,
                });
            }
        }
        if h2 {
            let _ = writeln!(
                table,
                "\nh2c: pool-http opened {} connection(s) for all its {} requests",
                ours.0.stats().connections_opened(),
                ours.0.stats().requests()
            );
        }
    }
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let quick = report.effort.is_quick();
    let mut table = String::new();
    crate::report::runtime()?.block_on(bench(quick, report, &mut table));
    report.finish(table);
    Ok(())
}
