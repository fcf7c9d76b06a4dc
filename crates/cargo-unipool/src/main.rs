//! `cargo unipool audit [PATH] [--format table|json|sarif] [--fail-above SCORE]
//! [--exclude PATH].. [--exclude-crate NAME].. [--include-tests] [--config FILE]`
//!
//! Exit status: 0 when the audit ran (and the total score is not above
//! `--fail-above`), 1 when it is above, 2 for a usage or configuration error.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use cargo_unipool::config::{self, Config};

const USAGE: &str =
    "usage: cargo unipool audit [PATH] [--format table|json|sarif] [--fail-above SCORE]
                           [--exclude PATH]... [--exclude-crate NAME]... [--include-tests]
                           [--config FILE]

Finds clients, connections and pools created per call (reqwest, tokio-postgres,
postgres, sqlx, rusqlite, redis, tokio-tungstenite, zmq, mongodb, bb8, r2d2,
deadpool), scores each by where it sits and ranks the files to migrate.
PATH defaults to the current directory; .unipool-audit.toml there is read
(see docs/audit.md). Exit status: 0 ok, 1 total score above --fail-above,
2 usage or configuration error.";

#[derive(Clone, Copy)]
enum Format {
    Table,
    Json,
    Sarif,
}

struct Args {
    root: PathBuf,
    format: Format,
    config_file: Option<PathBuf>,
    fail_above: Option<u32>,
    exclude: Vec<String>,
    exclude_crates: Vec<String>,
    include_tests: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        root: PathBuf::from("."),
        format: Format::Table,
        config_file: None,
        fail_above: None,
        exclude: Vec::new(),
        exclude_crates: Vec::new(),
        include_tests: false,
    };
    let mut root = None;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--format" => {
                a.format = match value("--format")?.as_str() {
                    "table" => Format::Table,
                    "json" => Format::Json,
                    "sarif" => Format::Sarif,
                    other => {
                        return Err(format!(
                            "unknown format {other:?} (expected table, json or sarif)"
                        ))
                    }
                }
            }
            "--fail-above" => {
                let v = value("--fail-above")?;
                a.fail_above = Some(
                    v.parse()
                        .map_err(|_| format!("--fail-above {v:?}: expected a whole number ≥ 0"))?,
                );
            }
            "--exclude" => a.exclude.push(value("--exclude")?),
            "--exclude-crate" => a.exclude_crates.push(value("--exclude-crate")?),
            "--config" => a.config_file = Some(PathBuf::from(value("--config")?)),
            "--include-tests" => a.include_tests = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag:?}")),
            path if root.is_none() => root = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    if let Some(r) = root {
        a.root = r;
    }
    Ok(a)
}

fn run(args: Args) -> Result<bool, String> {
    if !args.root.exists() {
        return Err(format!(
            "{}: no such file or directory",
            args.root.display()
        ));
    }
    let mut config = match &args.config_file {
        Some(f) => Config::read(f)?,
        None => {
            let default = args.root.join(config::FILE);
            if default.is_file() {
                Config::read(&default)?
            } else {
                Config::default()
            }
        }
    };
    config.exclude.extend(args.exclude);
    config.exclude_crates.extend(args.exclude_crates);
    config.include_tests |= args.include_tests;
    if args.fail_above.is_some() {
        config.fail_above = args.fail_above;
    }
    let report = cargo_unipool::audit(&args.root, &config);
    let text = match args.format {
        Format::Table => report.table(),
        Format::Json => report.json(),
        Format::Sarif => report.sarif(),
    };
    // A closed pipe (`| head`) is not an error of the audit.
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
    Ok(config.fail_above.is_some_and(|limit| report.total > limit))
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    // `cargo unipool …` runs `cargo-unipool unipool …`.
    if argv.peek().map(String::as_str) == Some("unipool") {
        argv.next();
    }
    match argv.next().as_deref() {
        Some("audit") => {}
        Some("-h" | "--help") | None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        Some(other) => {
            eprintln!("unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let args = match parse(argv) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cargo unipool audit: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => {
            eprintln!("cargo unipool audit: the total score is above --fail-above");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("cargo unipool audit: {e}");
            ExitCode::from(2)
        }
    }
}
