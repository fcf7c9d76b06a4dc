//! `cargo xtask <task>`: the project's two commands and CI.
//!
//! - `cargo xtask bench [SUITE..] [--quick|--thorough]` — run the benchmarks
//!   (release build) and write `target/bench-report/`;
//! - `cargo xtask test` — run every test of the workspace, with the servers the
//!   suites need (PostgreSQL, Redis) found or started; `--soak` runs only the
//!   soak, for 10 minutes;
//! - `cargo xtask ci` — what `.ci/run` runs: fmt, clippy, a quick bench of every
//!   suite and a check of its results.json, tests.

mod secantus;
mod services;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    match task.as_deref() {
        Some("bench") => bench(&rest),
        Some("test") => test(&rest),
        Some("ci") => ci(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 bench [SUITE..] [--quick|--thorough]\n                           benchmarks against peers (suites: core sql redis http ws zmq mongo resources telemetry;\n                           all by default); report in target/bench-report/\n  \
                 test [-- ARGS]           every test of the workspace (finds or starts PostgreSQL/Redis,\n                           installs the MongoDB-wire server)\n  \
                 test --soak              only the soak, for 10 minutes (20 s in every test run)\n  \
                 ci [checks]              fmt, clippy (all features, then each umbrella feature alone),\n                           quick bench, then test; `checks` stops before test (.ci/run)"
            );
            Err("no task given".into())
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn bench(args: &[String]) -> Result<()> {
    // The mongo suite starts its own MongoDB-wire server from this venv. On a
    // fresh clone its install (pip, ~13 s) runs while cargo builds, not before.
    let venv = std::thread::spawn(|| secantus::ensure(&root()));
    // Not `--quiet`: the release build takes minutes on a fresh clone, and
    // cargo's own progress is what shows that something happens.
    let mut build = cargo();
    build.args(["build", "--release", "-p", "unipool-benches"]);
    let built = run(build);
    let server = venv
        .join()
        .map_err(|_| "the MongoDB-wire server's install panicked".to_string())?;
    built?;
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--release", "-p", "unipool-benches", "--"]);
    cmd.args(args);
    match server {
        Ok(path) => {
            cmd.env("SECANTUSD_BIN", path);
        }
        Err(e) if std::env::var_os("CI").is_some() => {
            return Err(format!("the MongoDB-wire server cannot be installed: {e}"))
        }
        Err(e) => eprintln!("xtask: WARNING: {e}; the mongo suite will be skipped"),
    }
    run(cmd)
}

fn test(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--soak") {
        return soak();
    }
    let ci = std::env::var_os("CI").is_some();
    let services = services::Services::ensure(ci)?;
    let mut cmd = cargo();
    let nextest = Command::new("cargo-nextest")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if nextest {
        cmd.args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-fail-fast",
        ]);
    } else {
        cmd.args(["test", "--workspace", "--all-features", "--no-fail-fast"]);
    }
    cmd.args(args.iter().filter(|a| *a != "--"));
    services.export(&mut cmd);
    // Doctests first (nextest does not run them), so that the run closes on the
    // test runner's summary of every other test.
    let doc = if nextest {
        let mut doc = cargo();
        doc.args(["test", "--workspace", "--all-features", "--doc"]);
        services.export(&mut doc);
        run(doc)
    } else {
        Ok(())
    };
    let result = doc.and_then(|()| model_check()).and_then(|()| run(cmd));
    drop(services);
    result
}

/// pool-core's model check of the hand-over protocol under shuttle
/// (crates/pool-core/src/model.rs): built with `--cfg shuttle`, in a target
/// directory of its own so that the flag does not rebuild the main one.
fn model_check() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["test", "-p", "pool-core", "--lib", "model"]);
    cmd.env("RUSTFLAGS", "--cfg shuttle");
    cmd.env("CARGO_TARGET_DIR", root().join("target").join("shuttle"));
    run(cmd)
}

/// `test --soak`: only the soak test (tests/tests/soak.rs), for 10 minutes
/// instead of the 20 seconds of every run.
fn soak() -> Result<()> {
    let ci = std::env::var_os("CI").is_some();
    let services = services::Services::ensure(ci)?;
    let mut cmd = cargo();
    cmd.args([
        "test",
        "-p",
        "unipool-tests",
        "--all-features",
        "--test",
        "soak",
        "--",
        "--nocapture",
    ]);
    cmd.env("UNIPOOL_SOAK_SECS", "600");
    services.export(&mut cmd);
    let result = run(cmd);
    drop(services);
    result
}

/// The umbrella's features, each built alone by CI (a feature that only
/// compiles, or only lints clean, next to another is a bug for its users).
const UMBRELLA_FEATURES: &[&str] = &[
    "postgres",
    "sqlite",
    "redis",
    "http",
    "ws",
    "zmq",
    "mongo",
    "bb8",
    "serde",
    "prometheus",
    "otel",
];

fn ci(args: &[String]) -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)?;
    for feature in UMBRELLA_FEATURES {
        let mut alone = cargo();
        alone.args([
            "clippy",
            "-p",
            "unipool",
            "--no-default-features",
            "--features",
            feature,
            "--",
            "-D",
            "warnings",
        ]);
        run(alone)?;
    }
    bench(&["--quick".into()])?;
    // The run's results.json, against its schema (docs/benchmarks.md).
    let mut check = cargo();
    check.args([
        "run",
        "--release",
        "-q",
        "-p",
        "unipool-benches",
        "--",
        "check-results",
    ]);
    run(check)?;
    if args.iter().any(|a| a == "checks") {
        return Ok(());
    }
    test(&[])
}
