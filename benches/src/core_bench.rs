//! `bench core`: the engine against the workload's limit (a minimal barging
//! pool) and the peers deadpool, bb8, qp and mobc, on the same do-nothing
//! manager, in one process.
//!
//! Throughput: N get()+drop split over W tasks, timed from before spawning to
//! after joining, each run under a watchdog that reports a deadlock. Three
//! modes:
//! - `warm`: every connection opened before the timed run;
//! - `cold`: the pool is built inside the timed run and hit at once, as a
//!   service does;
//! - `pinned`: warm, with the runtime's two workers pinned to one CPU, so no
//!   cross-core traffic hides a pool's own cost per operation.
//!
//! Within a run the pools go back to back in a rotating order, and every ratio
//! is the median of per-run ratios (this machine's speed moves by 2x within
//! minutes). Latency: 1000 tasks share 50 connections, each holding one ~500 µs
//! per turn; the distribution of waits shows starvation (max) and convoys (p50).

use std::fmt::Write as _;
use std::future::Future;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::core_pools::{
    Barging, Bb8, BenchPool, Deadpool, Mobc, Observed, Ours, Qp, RegistryObserved,
};
use crate::effort::Effort;
use crate::report::{median, Report, Row, Spread, RATIO_BEST};

pub use crate::core_pools::window_from_env;

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
/// The default run's cells: the corners and the middle of `CONFIGS`.
const DEFAULT_CONFIGS: &[(usize, usize)] = &[(2, 8), (8, 16), (16, 32), (32, 32)];
const WATCHDOG: Duration = Duration::from_secs(10);

/// Every pool of a cell; ours first, the limit second, then the peers.
const POOLS: [&str; 6] = ["unipool", "limit", "deadpool", "bb8", "qp", "mobc"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Warm,
    Cold,
    Pinned,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Warm => "warm",
            Mode::Cold => "cold",
            Mode::Pinned => "pinned to one CPU",
        }
    }
}

/// Runs `f` in its own thread; a run that does not finish within the
/// watchdog is reported as a deadlock.
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

/// A two-worker runtime whose workers run on CPU 0 only.
fn pinned_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(pin_to_cpu0)
        .build()
        .map_err(|e| e.to_string())
}

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only read and write the set given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// `workers` tasks, each doing `per` get()+drop on `pool`; returns when all
/// are done.
async fn hammer<P: BenchPool>(pool: &P, workers: usize, per: usize) {
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
}

/// Ops/s of one throughput run.
fn throughput_run<P: BenchPool>(
    size: usize,
    workers: usize,
    n: usize,
    mode: Mode,
) -> Result<f64, String> {
    let what = format!("{} pool={size} workers={workers} {}", P::NAME, mode.name());
    watched(what, WATCHDOG, move || {
        let rt = match mode {
            Mode::Pinned => pinned_runtime(),
            Mode::Warm | Mode::Cold => crate::report::runtime(),
        }
        .expect("tokio runtime");
        rt.block_on(async move {
            let per = n / workers;
            let cold_start = Instant::now();
            let pool = P::build(size).await;
            if mode != Mode::Cold {
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
            }
            let start = if mode == Mode::Cold {
                cold_start
            } else {
                Instant::now()
            };
            hammer(&pool, workers, per).await;
            (per * workers) as f64 / start.elapsed().as_secs_f64()
        })
    })
}

/// Runs `$run::<P>($args)` with `P` the pool named `$name` (one of `POOLS`).
macro_rules! with_pool {
    ($name:expr, $run:ident($($arg:expr),*)) => {
        match $name {
            "unipool" => $run::<Ours>($($arg),*),
            "limit" => $run::<Barging>($($arg),*),
            "deadpool" => $run::<Deadpool>($($arg),*),
            "bb8" => $run::<Bb8>($($arg),*),
            "qp" => $run::<Qp>($($arg),*),
            "unipool+observer" => $run::<Observed>($($arg),*),
            "unipool+registry observer" => $run::<RegistryObserved>($($arg),*),
            _ => $run::<Mobc>($($arg),*),
        }
    };
}

fn run_pool(name: &str, size: usize, workers: usize, n: usize, mode: Mode) -> Result<f64, String> {
    with_pool!(name, throughput_run(size, workers, n, mode))
}

/// Medians of each pool's throughput, and of our per-run ratios against each
/// pool and against the best peer of the run.
struct Cell {
    /// ops/s per pool, in `POOLS` order.
    ops: [f64; 6],
    /// ours / pool, in `POOLS` order (the first is 1).
    ratio: [f64; 6],
    vs_best_peer: Spread,
}

fn throughput_cell(
    size: usize,
    workers: usize,
    n: usize,
    runs: usize,
    mode: Mode,
) -> Result<Cell, String> {
    let mut ops: [Vec<f64>; 6] = Default::default();
    let mut ratio: [Vec<f64>; 6] = Default::default();
    let mut best = Vec::new();
    for r in 0..runs {
        let mut this = [0.0; 6];
        for k in 0..POOLS.len() {
            let i = (r + k) % POOLS.len();
            this[i] = match run_pool(POOLS[i], size, workers, n / share(POOLS[i], mode), mode) {
                Ok(v) => v,
                // Ours must never hang; a peer that does is reported, not fatal.
                Err(e) if i != 0 => {
                    eprintln!("\n    {e}");
                    f64::NAN
                }
                Err(e) => return Err(e),
            };
        }
        for i in 0..POOLS.len() {
            ops[i].push(this[i]);
            ratio[i].push(this[0] / this[i]);
        }
        let best_peer = this[2..]
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        best.push(this[0] / best_peer);
    }
    Ok(Cell {
        ops: ops.map(|mut v| median(&mut v)),
        ratio: ratio.map(|mut v| median(&mut v)),
        vs_best_peer: Spread::of(&mut best),
    })
}

/// The fraction of N a pool runs: mobc runs at a twentieth of the others'
/// rate, deadpool and bb8 at about a seventh, so that with all of N their runs
/// were most of the suite's time; with an eighth and a quarter each run
/// still lasts 20 ms or more. Cold runs time the pool's build too, so there
/// every pool runs all of N.
fn share(pool: &str, mode: Mode) -> usize {
    match pool {
        _ if mode == Mode::Cold => 1,
        "mobc" => 8,
        "deadpool" | "bb8" => 4,
        _ => 1,
    }
}

struct Latency {
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

fn latency_run<P: BenchPool>(
    tasks: usize,
    size: usize,
    turns: usize,
    limit: Duration,
) -> Result<Latency, String> {
    let what = format!("{} latency", P::NAME);
    watched(what, limit, move || {
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

fn latency_of(
    name: &str,
    tasks: usize,
    size: usize,
    turns: usize,
    limit: Duration,
) -> Result<Latency, String> {
    with_pool!(name, latency_run(tasks, size, turns, limit))
}

/// N sequential get()+drop of one pool of 2 on a current-thread runtime: the
/// pool's own cost per operation, for callgrind (no other thread, no wake-up).
pub fn cost(pool: &str, n: usize) {
    // Boxed once per run, so that every pool's loop has the same type.
    fn go<P: BenchPool>(n: usize) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let p = P::build(2).await;
            for _ in 0..n {
                p.once().await;
            }
        })
    }
    // `UNIPOOL_BENCH_COST_WORKERS=N`: a multi-thread runtime with N workers,
    // the loop spawned on it (compare with the current-thread default).
    let workers: usize = std::env::var("UNIPOOL_BENCH_COST_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rt = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    }
    .enable_all()
    .build()
    .expect("runtime");
    let pool = pool.to_string();
    rt.block_on(async move {
        let task = async move { with_pool!(pool.as_str(), go(n)).await };
        if workers == 0 {
            task.await;
        } else {
            tokio::spawn(task).await.expect("cost task");
        }
    });
}

/// Our pool with an observer that counts every event against our pool
/// without one, back to back in alternating order, warm and pinned: the
/// price of metrics (target: at least 0.95x).
fn observer_overhead(
    effort: Effort,
    n: usize,
    runs: usize,
    table: &mut String,
    report: &mut Report,
) -> Result<(), String> {
    const POOLS: [&str; 3] = ["unipool", "unipool+observer", "unipool+registry observer"];
    let _ = writeln!(
        table,
        "## core: with an observer\n\nunipool without an observer, with one counting every event \
         (striped counters), and with the registry's (time buckets for the exporters); \
         N = {n} get()+drop, {runs} runs, the three back to back in a rotating order; M ops/s \
         (medians), ratios = medians of per-run ratios to the pool without\n\n\
         | mode | pool | workers | without | counting | ratio | registry's | ratio |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for mode in [Mode::Warm, Mode::Pinned] {
        for (size, workers) in configs(effort) {
            report.cell(format!(
                "with an observer, {} pool {size} / workers {workers}",
                mode.name()
            ));
            let mut ops: [Vec<f64>; 3] = Default::default();
            let mut ratio: [Vec<f64>; 2] = Default::default();
            for r in 0..runs {
                let mut this = [0.0; 3];
                for k in 0..POOLS.len() {
                    let i = (r + k) % POOLS.len();
                    this[i] = run_pool(POOLS[i], size, workers, n, mode)?;
                }
                for i in 0..3 {
                    ops[i].push(this[i]);
                }
                ratio[0].push(this[1] / this[0]);
                ratio[1].push(this[2] / this[0]);
            }
            let ops = ops.map(|mut v| median(&mut v));
            let ratio = ratio.map(|mut v| median(&mut v));
            for (i, pool) in POOLS.iter().enumerate().skip(1) {
                report.rows.push(Row {
                    suite: "core",
                    case: format!("{} pool={size} workers={workers}", mode.name()),
                    pool,
                    metric: "ops_per_sec",
                    value: ops[i],
                });
            }
            let _ = writeln!(
                table,
                "| {} | {size} | {workers} | {:.2} | {:.2} | {:.2}x | {:.2} | {:.2}x |",
                mode.name(),
                ops[0] / 1e6,
                ops[1] / 1e6,
                ratio[0],
                ops[2] / 1e6,
                ratio[1]
            );
        }
    }
    let _ = writeln!(table);
    Ok(())
}

/// Our pool cold, run after run: M ops/s, waited acquisitions and total wait.
pub fn cold_runs(size: usize, workers: usize, runs: usize) {
    let n = 1 << 19;
    for _ in 0..runs {
        let rt = crate::report::runtime().expect("runtime");
        let (ops, stats) = rt.block_on(async move {
            let start = Instant::now();
            let pool = Ours::build(size).await;
            let per = n / workers;
            hammer(&pool, workers, per).await;
            (
                (per * workers) as f64 / start.elapsed().as_secs_f64(),
                pool.0.stats(),
            )
        });
        println!(
            "{:6.2} M/s  waited {:6}  wait total {:8.1} ms",
            ops / 1e6,
            stats.acquired_waited,
            stats.wait_time.total.as_secs_f64() * 1e3
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `UNIPOOL_BENCH_CORE_MODES=cold,pinned` runs some modes only.
fn modes() -> Vec<Mode> {
    let all = [Mode::Warm, Mode::Cold, Mode::Pinned];
    match std::env::var("UNIPOOL_BENCH_CORE_MODES") {
        Ok(list) => all
            .into_iter()
            .filter(|m| list.split(',').any(|w| m.name().starts_with(w.trim())))
            .collect(),
        Err(_) => all.to_vec(),
    }
}

/// `UNIPOOL_BENCH_CORE_CELL=2:8` runs one cell only.
fn configs(effort: Effort) -> Vec<(usize, usize)> {
    if let Ok(cell) = std::env::var("UNIPOOL_BENCH_CORE_CELL") {
        if let Some((s, w)) = cell.split_once(':') {
            if let (Ok(s), Ok(w)) = (s.parse(), w.parse()) {
                return vec![(s, w)];
            }
        }
    }
    effort
        .pick(QUICK_CONFIGS, DEFAULT_CONFIGS, CONFIGS)
        .to_vec()
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let (n, runs) = report.effort.pick((1 << 16, 3), (1 << 18, 5), (1 << 19, 7));
    let mut table = String::new();
    for mode in modes() {
        let _ = writeln!(
            table,
            "## core: throughput, {}\n\nN = {n} get()+drop over W tasks (mobc N/{}, deadpool and bb8 N/{}), {runs} runs; M ops/s \
             (medians); ratios = medians of the per-run ratios unipool / pool (all six back to \
             back in each run, in a rotating order); limit = a minimal barging pool, the \
             workload's limit\n",
            mode.name(),
            share("mobc", mode),
            share("deadpool", mode)
        );
        let _ = writeln!(
            table,
            "| pool | workers | unipool | limit | vs limit | vs deadpool | vs bb8 | vs qp | vs mobc | vs best peer |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (size, workers) in configs(report.effort) {
            report.cell(format!("{} pool {size} / workers {workers}", mode.name()));
            let c = throughput_cell(size, workers, n, runs, mode)?;
            let case = format!("{} pool={size} workers={workers}", mode.name());
            for (i, pool) in POOLS.iter().enumerate() {
                report.rows.push(Row {
                    suite: "core",
                    case: case.clone(),
                    pool,
                    metric: "ops_per_sec",
                    value: c.ops[i],
                });
            }
            let _ = writeln!(
                table,
                "| {size} | {workers} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {} |",
                c.ops[0] / 1e6,
                c.ops[1] / 1e6,
                c.ratio[1],
                c.ratio[2],
                c.ratio[3],
                c.ratio[4],
                c.ratio[5],
                c.vs_best_peer.times(),
            );
            report.spread_rows("core", &case, "unipool", RATIO_BEST, c.vs_best_peer);
        }
        let _ = writeln!(table);
    }

    observer_overhead(report.effort, n, runs, &mut table, report)?;

    // qp 0.2 never finishes this workload: its semaphore registers a waiter's
    // waker only on the first pending poll (sync.rs, `waiting`), so a waiter
    // woken and then overtaken by a barging task sleeps for ever. Its run ends
    // at the watchdog, kept short but for the thorough run.
    let (tasks, size) = (1000, 50);
    let (turns, limit) = report.effort.pick((3, 10), (20, 4), (20, 60));
    let limit = Duration::from_secs(limit);
    let _ = writeln!(
        table,
        "## core: latency\n\n{tasks} tasks share {size} connections, {turns} turns each, \
         holding ~500 µs; wait for get() in ms\n\n| pool | p50 | p99 | p99.9 | max | max vs deadpool |\n|---|---:|---:|---:|---:|---:|"
    );
    report.cell("latency");
    let mut lat = Vec::new();
    for pool in POOLS {
        match latency_of(pool, tasks, size, turns, limit) {
            Ok(l) => lat.push((pool, l)),
            Err(e) if pool != "unipool" => {
                report.progress.println(&format!("    {e}"));
                let _ = writeln!(
                    table,
                    "| {pool} | did not finish within {} s | | | | |",
                    limit.as_secs()
                );
            }
            Err(e) => return Err(e),
        }
    }
    let dp_max = lat
        .iter()
        .find(|(p, _)| *p == "deadpool")
        .map_or(Duration::MAX, |(_, l)| l.max);
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
