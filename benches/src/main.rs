//! Benchmark workloads driven by `cargo xtask bench`. Every figure is measured
//! against its peers in the same process and reported as a ratio.

mod core_bench;
mod http_bench;
mod redis_bench;
mod report;
mod sql_bench;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let suites: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let suites = if suites.is_empty() {
        vec!["core", "sql", "redis", "http"]
    } else {
        suites
    };
    let mut report = report::Report::default();
    for suite in suites {
        let result = match suite {
            "core" => core_bench::run(quick, &mut report),
            "sql" => sql_bench::run(quick, &mut report),
            "redis" => redis_bench::run(quick, &mut report),
            "http" => http_bench::run(quick, &mut report),
            other => Err(format!(
                "unknown bench suite `{other}` (known: core, sql, redis, http)"
            )),
        };
        if let Err(e) = result {
            eprintln!("bench {suite} failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = report.write() {
        eprintln!("could not write the report: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
