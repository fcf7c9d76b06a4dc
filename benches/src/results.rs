//! `results.json`: the machine-readable report, schema version 1
//! (docs/benchmarks.md, "results.json"). The types below are the schema:
//! unknown fields are refused, so a file that passes [`check`] has exactly
//! this shape.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The schema's name and version, in every file.
pub const SCHEMA: &str = "unipool-bench-results";
pub const VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Results {
    pub schema: String,
    pub version: u32,
    /// Seconds since the Unix epoch when the run ended.
    pub generated_unix: u64,
    /// `quick`, `default` or `thorough`.
    pub effort: String,
    /// The suites asked for, in order.
    pub args: Vec<String>,
    pub machine: Machine,
    /// Every peer crate (and the clients under the pools) at the version the
    /// run was built with, from Cargo.lock.
    pub peers: Vec<Peer>,
    pub suites: Vec<Suite>,
    pub rows: Vec<Row>,
}

/// Where the run ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub os: String,
    pub arch: String,
}

/// One crate and its version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub name: String,
    pub version: String,
}

/// One suite of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    /// Wall time of the suite.
    pub seconds: f64,
    /// `ok` or `failed`.
    pub status: String,
    /// The error of a failed suite.
    pub error: Option<String>,
}

/// One measured figure. `metric` names its unit by its suffix: `_per_sec`
/// (throughput), `_ms`, `_bytes…`, `seconds`, or none (a count or a ratio).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub suite: String,
    pub case: String,
    pub pool: String,
    pub metric: String,
    pub value: f64,
}

impl Machine {
    /// This machine: the cores the process may use and the CPU model from
    /// `/proc/cpuinfo` (`unknown` elsewhere).
    pub fn detect() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        }
    }
}

/// The crates a reader needs the versions of: the peers and what they and
/// unipool's pools drive.
const PEERS: &[&str] = &[
    "bb8",
    "deadpool",
    "qp",
    "mobc",
    "bb8-postgres",
    "deadpool-postgres",
    "bb8-redis",
    "deadpool-redis",
    "tokio-postgres",
    "rusqlite",
    "redis",
    "reqwest",
    "hyper",
    "tokio-tungstenite",
    "zmq",
    "mongodb",
    "tokio",
];

/// The versions of [`PEERS`] in a Cargo.lock (every version when a crate
/// appears twice).
pub fn peers(lock: &str) -> Vec<Peer> {
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"'));
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if PEERS.contains(&n) {
                out.push(Peer {
                    name: n.into(),
                    version: v.trim_matches('"').into(),
                });
            }
        }
    }
    out.sort_by_key(|p| PEERS.iter().position(|&n| n == p.name));
    out
}

/// Reads and checks a results file: its shape (the types above, strictly),
/// then what types cannot say.
///
/// # Errors
/// The file cannot be read, is not this schema, or is inconsistent (the
/// message says which field).
pub fn check(path: &Path) -> Result<Results, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let r: Results = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if r.schema != SCHEMA || r.version != VERSION {
        return Err(format!(
            "schema {:?} version {}, expected {SCHEMA:?} version {VERSION}",
            r.schema, r.version
        ));
    }
    if !["quick", "default", "thorough"].contains(&r.effort.as_str()) {
        return Err(format!("effort {:?}", r.effort));
    }
    for s in &r.suites {
        if !["ok", "failed"].contains(&s.status.as_str()) {
            return Err(format!("suite {}: status {:?}", s.name, s.status));
        }
        if (s.status == "failed") != s.error.is_some() {
            return Err(format!("suite {}: status and error disagree", s.name));
        }
    }
    for row in &r.rows {
        if !r.suites.iter().any(|s| s.name == row.suite) {
            return Err(format!("row of unknown suite {:?}", row.suite));
        }
        if !row.value.is_finite() {
            return Err(format!(
                "{} {} {} {}: not a number",
                row.suite, row.case, row.pool, row.metric
            ));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Results {
        Results {
            schema: SCHEMA.into(),
            version: VERSION,
            generated_unix: 1,
            effort: "quick".into(),
            args: vec!["core".into()],
            machine: Machine::detect(),
            peers: peers(include_str!("../../Cargo.lock")),
            suites: vec![Suite {
                name: "core".into(),
                seconds: 1.5,
                status: "ok".into(),
                error: None,
            }],
            rows: vec![Row {
                suite: "core".into(),
                case: "warm".into(),
                pool: "unipool".into(),
                metric: "ops_per_sec".into(),
                value: 1e6,
            }],
        }
    }

    fn write(dir: &Path, json: &str) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("results.json");
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn a_written_file_passes_and_reads_back_equal() {
        let dir = std::env::temp_dir().join(format!("unipool-results-{}", std::process::id()));
        let r = sample();
        let path = write(&dir, &serde_json::to_string_pretty(&r).unwrap());
        assert_eq!(check(&path).unwrap(), r);
        assert!(r.peers.iter().any(|p| p.name == "bb8"), "{:?}", r.peers);
        assert!(r.machine.cores >= 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn files_off_the_schema_are_refused_naming_the_fault() {
        let dir = std::env::temp_dir().join(format!("unipool-results-bad-{}", std::process::id()));
        let good = serde_json::to_value(sample()).unwrap();
        type Spoil = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: [(&str, Spoil); 5] = [
            ("unknown field", Box::new(|v| v["extra"] = 1.into())),
            (
                "missing field",
                Box::new(|v| drop(v["machine"].as_object_mut().unwrap().remove("cores"))),
            ),
            ("version 2", Box::new(|v| v["version"] = 2.into())),
            (
                "status and error disagree",
                Box::new(|v| v["suites"][0]["status"] = "failed".into()),
            ),
            (
                "unknown suite",
                Box::new(|v| v["rows"][0]["suite"] = "nope".into()),
            ),
        ];
        for (what, spoil) in cases {
            let mut v = good.clone();
            spoil(&mut v);
            let path = write(&dir, &v.to_string());
            let e = check(&path).expect_err(what);
            eprintln!("{what}: {e}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
