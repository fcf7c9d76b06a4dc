//! `bench core`: the engine against deadpool and bb8 on the same do-nothing
//! manager, in one process.
//!
//! Throughput: N get()+drop split over W tasks, timed from before spawning to after
//! joining, median of R runs, each run under a watchdog that reports a deadlock.
//! Latency: 1000 tasks share 50 connections, each holding one ~500 µs per turn;
//! the distribution of waits shows starvation (max) and convoys (p50).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::report::{median, Report, Row};

const CONFIGS: &[(usize, usize)] = &[
    (2, 8),
    (4, 8),
    (8, 8),
    (4, 16),
    (8, 16),
    (16, 16),
    (8, 32),
    (16, 32),
    (32, 32),
];
const QUICK_CONFIGS: &[(usize, usize)] = &[(2, 8), (16, 16), (16, 32)];
const WATCHDOG: Duration = Duration::from_secs(5);

/// The same tiny surface over each pool under test.
trait BenchPool: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    /// The pool's guard.
    type Conn<'a>: Send
    where
        Self: 'a;
    fn build(size: usize) -> impl Future<Output = Self> + Send;
    /// One checkout (panics on error: a bench run has none).
    fn acquire(&self) -> impl Future<Output = Self::Conn<'_>> + Send;

    /// One get() and drop.
    fn once(&self) -> impl Future<Output = ()> + Send {
        async {
            let c = self.acquire().await;
            std::hint::black_box(&c);
        }
    }

    /// One get(), hold for `hold`, drop; returns the wait.
    fn held(&self, hold: Duration) -> impl Future<Output = Duration> + Send {
        async move {
            let t = Instant::now();
            let c = self.acquire().await;
            let waited = t.elapsed();
            tokio::time::sleep(hold).await;
            drop(c);
            waited
        }
    }
}

// ----- unipool -------------------------------------------------------------------

struct Noop;

impl pool_core::Manager for Noop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn check(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
}

#[derive(Clone)]
struct Ours(pool_core::ConnectionPool<Noop>);

impl BenchPool for Ours {
    const NAME: &'static str = "unipool";
    type Conn<'a> = pool_core::PooledConnection<'a, Noop>;
    async fn build(size: usize) -> Self {
        let pool = pool_core::ConnectionPool::builder()
            .max_size(size)
            .acquire_timeout(Duration::from_secs(60))
            .fairness_window(window_from_env())
            .build(Noop)
            .expect("valid bench config");
        Ours(pool)
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}

/// `fairness_window` for our pools: the default 1 ms, or `UNIPOOL_BENCH_WINDOW_US`
/// to compare (0 = strict FIFO hand-off).
pub fn window_from_env() -> Duration {
    std::env::var("UNIPOOL_BENCH_WINDOW_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_millis(1), Duration::from_micros)
}

// ----- deadpool ------------------------------------------------------------------

struct DpNoop;

impl deadpool::managed::Manager for DpNoop {
    type Type = u64;
    type Error = Infallible;
    async fn create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn recycle(
        &self,
        _: &mut u64,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

#[derive(Clone)]
struct Deadpool(deadpool::managed::Pool<DpNoop>);

impl BenchPool for Deadpool {
    const NAME: &'static str = "deadpool";
    type Conn<'a> = deadpool::managed::Object<DpNoop>;
    async fn build(size: usize) -> Self {
        Deadpool(
            deadpool::managed::Pool::builder(DpNoop)
                .max_size(size)
                .build()
                .expect("valid deadpool config"),
        )
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}

// ----- bb8 -----------------------------------------------------------------------

struct Bb8Noop;

impl bb8::ManageConnection for Bb8Noop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn is_valid(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

#[derive(Clone)]
struct Bb8(bb8::Pool<Bb8Noop>);

impl BenchPool for Bb8 {
    const NAME: &'static str = "bb8";
    type Conn<'a> = bb8::PooledConnection<'a, Bb8Noop>;
    async fn build(size: usize) -> Self {
        Bb8(bb8::Pool::builder()
            .max_size(size as u32)
            .connection_timeout(Duration::from_secs(60))
            .build(Bb8Noop)
            .await
            .expect("valid bb8 config"))
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}

// ----- harness -------------------------------------------------------------------

/// Runs `f` on a fresh multi-thread runtime in its own thread; a run that does not
/// finish within the watchdog is reported as a deadlock.
fn watched<T: Send + 'static>(
    what: String,
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout)
        .map_err(|_| format!("DEADLOCK? {what} did not finish within {timeout:?}"))
}

/// Ops/s of one throughput run.
fn throughput_run<P: BenchPool>(size: usize, workers: usize, n: usize) -> Result<f64, String> {
    let what = format!("{} pool={size} workers={workers}", P::NAME);
    watched(what, WATCHDOG, move || {
        crate::report::runtime()
            .expect("tokio runtime")
            .block_on(async move {
                let pool = P::build(size).await;
                // Open every connection first, so that no pool pays connects in the run.
                let warm: Vec<_> = (0..size)
                    .map(|_| {
                        let p = pool.clone();
                        tokio::spawn(async move { p.held(Duration::from_millis(2)).await })
                    })
                    .collect();
                for w in warm {
                    let _ = w.await;
                }
                let per = n / workers;
                let start = Instant::now();
                let tasks: Vec<_> = (0..workers)
                    .map(|_| {
                        let p = pool.clone();
                        tokio::spawn(async move {
                            for _ in 0..per {
                                p.once().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("worker panicked");
                }
                (per * workers) as f64 / start.elapsed().as_secs_f64()
            })
    })
}

/// Medians of the three pools' throughput and of the per-run ratios. Within a
/// run the pools go back to back in a rotating order, so that a change of speed
/// of this shared machine (it moves by 2x within minutes) hits all alike.
struct Cell {
    ours: f64,
    deadpool: f64,
    bb8: f64,
    vs_deadpool: f64,
    vs_bb8: f64,
}

fn throughput_cell(size: usize, workers: usize, n: usize, runs: usize) -> Result<Cell, String> {
    let (mut o, mut d, mut b, mut vd, mut vb) = (vec![], vec![], vec![], vec![], vec![]);
    for r in 0..runs {
        let (mut ours, mut dp, mut bb) = (0.0, 0.0, 0.0);
        for k in 0..3 {
            match (r + k) % 3 {
                0 => ours = throughput_run::<Ours>(size, workers, n)?,
                1 => dp = throughput_run::<Deadpool>(size, workers, n)?,
                _ => bb = throughput_run::<Bb8>(size, workers, n)?,
            }
        }
        vd.push(ours / dp);
        vb.push(ours / bb);
        o.push(ours);
        d.push(dp);
        b.push(bb);
    }
    Ok(Cell {
        ours: median(&mut o),
        deadpool: median(&mut d),
        bb8: median(&mut b),
        vs_deadpool: median(&mut vd),
        vs_bb8: median(&mut vb),
    })
}

struct Latency {
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

fn latency_run<P: BenchPool>(tasks: usize, size: usize, turns: usize) -> Result<Latency, String> {
    let what = format!("{} latency", P::NAME);
    watched(what, Duration::from_secs(60), move || {
        crate::report::runtime()
            .expect("tokio runtime")
            .block_on(async move {
                let pool = P::build(size).await;
                let hold = Duration::from_micros(500);
                let handles: Vec<_> = (0..tasks)
                    .map(|_| {
                        let p = pool.clone();
                        tokio::spawn(async move {
                            let mut waits = Vec::with_capacity(turns);
                            for _ in 0..turns {
                                waits.push(p.held(hold).await);
                            }
                            waits
                        })
                    })
                    .collect();
                let mut all = Vec::new();
                for h in handles {
                    all.extend(h.await.expect("task panicked"));
                }
                all.sort();
                let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
                Latency {
                    p50: at(0.5),
                    p99: at(0.99),
                    p999: at(0.999),
                    max: *all.last().expect("some waits"),
                }
            })
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(quick: bool, report: &mut Report) -> Result<(), String> {
    let (configs, n, runs) = if quick {
        (QUICK_CONFIGS, 1 << 16, 3)
    } else {
        (CONFIGS, 1 << 20, 15)
    };
    let mut table = String::new();
    let _ = writeln!(
        table,
        "## core: throughput\n\nN = {n} get()+drop over W tasks, median of {runs} runs, M ops/s; \
         ratio = median of the per-run ratios unipool / peer (the three back to back in each \
         run, in a rotating order)\n"
    );
    let _ = writeln!(
        table,
        "| pool | workers | unipool | deadpool | bb8 | vs deadpool | vs bb8 |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    println!("core throughput: N={n}, {runs} runs per cell");
    for &(size, workers) in configs {
        eprint!("  pool {size:>2} / workers {workers:>2} ... ");
        let c = throughput_cell(size, workers, n, runs)?;
        eprintln!("done");
        let case = format!("pool={size} workers={workers}");
        for (pool, v) in [
            ("unipool", c.ours),
            ("deadpool", c.deadpool),
            ("bb8", c.bb8),
        ] {
            report.rows.push(Row {
                suite: "core",
                case: case.clone(),
                pool,
                metric: "ops_per_sec",
                value: v,
            });
        }
        let _ = writeln!(
            table,
            "| {size} | {workers} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x |",
            c.ours / 1e6,
            c.deadpool / 1e6,
            c.bb8 / 1e6,
            c.vs_deadpool,
            c.vs_bb8
        );
    }

    let (tasks, size, turns) = if quick { (1000, 50, 3) } else { (1000, 50, 20) };
    let _ = writeln!(
        table,
        "\n## core: latency\n\n{tasks} tasks share {size} connections, {turns} turns each, \
         holding ~500 µs; wait for get() in ms\n\n| pool | p50 | p99 | p99.9 | max | max vs deadpool |\n|---|---:|---:|---:|---:|---:|"
    );
    eprint!("  latency ... ");
    let lat = [
        ("unipool", latency_run::<Ours>(tasks, size, turns)?),
        ("deadpool", latency_run::<Deadpool>(tasks, size, turns)?),
        ("bb8", latency_run::<Bb8>(tasks, size, turns)?),
    ];
    eprintln!("done");
    let dp_max = lat[1].1.max;
    for (pool, l) in &lat {
        let _ = writeln!(
            table,
            "| {pool} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x |",
            ms(l.p50),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            ms(l.max) / ms(dp_max)
        );
        for (metric, v) in [
            ("wait_p50_ms", l.p50),
            ("wait_p99_ms", l.p99),
            ("wait_p999_ms", l.p999),
            ("wait_max_ms", l.max),
        ] {
            report.rows.push(Row {
                suite: "core",
                case: "latency".into(),
                pool,
                metric,
                value: ms(v),
            });
        }
    }
    report.finish(table);
    Ok(())
}
