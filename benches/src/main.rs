//! Benchmark workloads driven by `cargo xtask bench`. Every figure is measured
//! against its peers in the same process and reported as a ratio.

mod core_bench;
mod core_pools;
mod effort;
mod html;
mod http_bench;
mod mongo_bench;
mod plots;
mod progress;
mod redis_bench;
mod report;
mod resources_bench;
mod results;
mod scale_bench;
mod sql_bench;
mod telemetry_bench;
mod ws_bench;
mod zmq_bench;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("core-cost") {
        // `core-cost POOL N`: N sequential get()+drop on a current-thread
        // runtime, for instruction counting (docs/benchmarks.md).
        let pool = args.get(1).map_or("unipool", String::as_str);
        let n = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100_000);
        core_bench::cost(pool, n);
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("core-cold") {
        // `core-cold SIZE WORKERS RUNS`: our pool, built and hit at once, run
        // after run: throughput and how many get()s waited (convoys show here).
        let arg = |i: usize, d: usize| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
        core_bench::cold_runs(arg(1, 2), arg(2, 8), arg(3, 20));
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("ws-server") {
        // The echo server of `bench ws`, in its own process.
        ws_bench::server();
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("http-server") {
        // The HTTP server of `bench resources`, in its own process.
        resources_bench::http_server();
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("zmq-server") {
        // The ZeroMQ peer of `bench resources`, in its own process.
        resources_bench::zmq_server();
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("resources-child") {
        // `resources-child PROTO CLIENT TARGET`: one client kind's load.
        let arg = |i: usize| args.get(i).map_or("", String::as_str);
        resources_bench::child(arg(1), arg(2), arg(3));
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("ws-cost") {
        let n = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(32_000);
        ws_bench::cost(args.get(1).map_or("pool", String::as_str), n);
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("ws-memory") {
        // `ws-memory KIND URL`: memory per idle connection, in its own process.
        let arg = |i: usize| args.get(i).map_or("", String::as_str);
        ws_bench::memory_child(arg(1), arg(2));
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("check-results") {
        // `check-results PATH`: PATH is a results.json of schema version 1.
        let path = args.get(1).map_or_else(
            || report::out_dir().join("results.json"),
            std::path::PathBuf::from,
        );
        let path = path.display().to_string();
        return match results::check(std::path::Path::new(&path)) {
            Ok(r) => {
                println!(
                    "{path}: schema version {}, {} suites, {} figures",
                    r.version,
                    r.suites.len(),
                    r.rows.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let effort = match effort::Effort::from_args(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let suites: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let suites = if suites.is_empty() {
        SUITES.to_vec()
    } else {
        suites
    };
    if let Some(bad) = suites
        .iter()
        .find(|s| !SUITES.contains(s) && !OPT_IN.contains(s))
    {
        eprintln!(
            "unknown bench suite `{bad}` (known: {}, {})",
            SUITES.join(", "),
            OPT_IN.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let mut report = report::Report::new(effort, suites.iter().map(|s| s.to_string()).collect());
    for suite in suites {
        report.start(suite);
        let result = match suite {
            "core" => core_bench::run(&mut report),
            "sql" => sql_bench::run(&mut report),
            "redis" => redis_bench::run(&mut report),
            "http" => http_bench::run(&mut report),
            "ws" => ws_bench::run(&mut report),
            "zmq" => zmq_bench::run(&mut report),
            "mongo" => mongo_bench::run(&mut report),
            "resources" => resources_bench::run(&mut report),
            "scale" => scale_bench::run(&mut report),
            _ => telemetry_bench::run(&mut report),
        };
        report.end(result.err());
    }
    if let Err(e) = report.write() {
        eprintln!("could not write the report: {e}");
        return ExitCode::FAILURE;
    }
    if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Suites run only when named: `scale` starts its own PostgreSQL, PgBouncer
/// and Redis Cluster and takes a minute on its own.
const OPT_IN: &[&str] = &["scale"];

/// Every suite, in the order a default run takes them.
const SUITES: &[&str] = &[
    "core",
    "sql",
    "redis",
    "http",
    "ws",
    "zmq",
    "mongo",
    "resources",
    "telemetry",
];
