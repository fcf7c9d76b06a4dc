//! The bench report: what the suites record as they run, and the outputs in
//! `target/bench-report/`: `report.md`, `report.html`, `results.json` and
//! `plots/` (SVG and PNG).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use crate::effort::Effort;
use crate::progress::Progress;
use crate::results::{self, Results};

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub suite: &'static str,
    pub case: String,
    pub pool: &'static str,
    pub metric: &'static str,
    pub value: f64,
}

/// What a run has measured so far.
#[derive(Debug)]
pub struct Report {
    pub rows: Vec<Row>,
    pub effort: Effort,
    pub progress: Progress,
    /// Each suite's tables, in order.
    tables: Vec<(String, String)>,
    suites: Vec<results::Suite>,
    current: Option<(String, Instant)>,
    args: Vec<String>,
}

/// A fresh multi-thread runtime for one suite.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

impl Report {
    pub fn new(effort: Effort, args: Vec<String>) -> Report {
        Report {
            rows: Vec::new(),
            effort,
            progress: Progress::new(),
            tables: Vec::new(),
            suites: Vec::new(),
            current: None,
            args,
        }
    }

    /// A suite starts.
    pub fn start(&mut self, suite: &str) {
        self.progress.suite(suite, self.effort);
        self.current = Some((suite.to_string(), Instant::now()));
    }

    /// The current suite ended, with its error if it failed.
    pub fn end(&mut self, error: Option<String>) {
        self.progress.finish();
        if let Some((name, start)) = self.current.take() {
            if let Some(e) = &error {
                self.progress.println(&format!("bench {name} failed: {e}"));
            }
            self.suites.push(results::Suite {
                name,
                seconds: start.elapsed().as_secs_f64(),
                status: if error.is_some() { "failed" } else { "ok" }.into(),
                error,
            });
        }
    }

    /// The cell being measured (shown on the suite's bar).
    pub fn cell(&self, what: impl Into<std::borrow::Cow<'static, str>>) {
        self.progress.cell(what);
    }

    /// Prints a suite's table and keeps it for the report.
    pub fn finish(&mut self, table: String) {
        self.progress.println(&table);
        let suite = self.current.as_ref().map_or(String::new(), |c| c.0.clone());
        self.tables.push((suite, table));
    }

    /// Whether every suite passed.
    pub fn all_ok(&self) -> bool {
        self.suites.iter().all(|s| s.error.is_none())
    }

    /// The run as results.json has it.
    pub fn results(&self) -> Results {
        Results {
            schema: results::SCHEMA.into(),
            version: results::VERSION,
            generated_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            effort: self.effort.name().into(),
            args: self.args.clone(),
            machine: results::Machine::detect(),
            peers: results::peers(include_str!("../../Cargo.lock")),
            suites: self.suites.clone(),
            rows: self
                .rows
                .iter()
                .map(|r| results::Row {
                    suite: r.suite.into(),
                    case: r.case.clone(),
                    pool: r.pool.into(),
                    metric: r.metric.into(),
                    value: r.value,
                })
                .collect(),
        }
    }

    /// Writes the four outputs and prints the summary.
    ///
    /// # Errors
    /// A file that cannot be written, or a plot that cannot be drawn.
    pub fn write(&self) -> Result<PathBuf, String> {
        let dir = out_dir();
        let plots = dir.join("plots");
        // The report is one run's: plots of an earlier run go.
        let _ = std::fs::remove_dir_all(&plots);
        std::fs::create_dir_all(&plots).map_err(|e| format!("{}: {e}", plots.display()))?;
        let results = self.results();
        let charts = crate::plots::charts(&results.rows);
        let mut svgs: Vec<(String, String, String)> = Vec::new();
        for c in &charts {
            let svg = c.svg()?;
            let file = |ext: &str| plots.join(format!("{}.{ext}", c.file));
            std::fs::write(file("svg"), &svg).map_err(|e| e.to_string())?;
            c.png(&file("png"))?;
            svgs.push((c.suite.clone(), c.title.clone(), svg));
        }
        let mut md = String::from("# unipool bench report\n\n");
        let m = &results.machine;
        let _ = writeln!(
            md,
            "{} effort; {} cores, {}, {} {}.\n\nPeers: {}.\n",
            results.effort,
            m.cores,
            m.cpu_model,
            m.os,
            m.arch,
            results
                .peers
                .iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (_, t) in &self.tables {
            md.push_str(t);
            md.push('\n');
        }
        for c in &charts {
            let _ = writeln!(md, "![{}](plots/{}.png)\n", c.title, c.file);
        }
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
        };
        write("report.md", &md)?;
        let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
        write("results.json", &json)?;
        let mut sections = Vec::new();
        for s in &results.suites {
            let markdown: Vec<String> = self
                .tables
                .iter()
                .filter(|(suite, _)| *suite == s.name)
                .map(|(_, t)| t.clone())
                .collect();
            let svgs: Vec<(String, String)> = svgs
                .iter()
                .filter(|(suite, _, _)| *suite == s.name)
                .map(|(_, title, svg)| (title.clone(), svg.clone()))
                .collect();
            sections.push((s.name.clone(), markdown, svgs));
        }
        let sections: Vec<crate::html::Section<'_>> = sections
            .iter()
            .map(|(suite, markdown, svgs)| crate::html::Section {
                suite,
                markdown,
                svgs: svgs.clone(),
            })
            .collect();
        write("report.html", &crate::html::page(&results, &sections))?;
        let dir = dir.canonicalize().unwrap_or(dir);
        self.summary(&results, &dir, charts.len());
        Ok(dir)
    }

    fn summary(&self, results: &Results, dir: &std::path::Path, plots: usize) {
        let mut t =
            String::from("\n| suite | status | wall time | figures |\n|---|---|---:|---:|\n");
        for s in &results.suites {
            let n = results.rows.iter().filter(|r| r.suite == s.name).count();
            let status = s
                .error
                .as_deref()
                .map_or("ok".to_string(), |e| format!("failed: {e}"));
            let _ = writeln!(t, "| {} | {status} | {:.0} s | {n} |", s.name, s.seconds);
        }
        let _ = write!(
            t,
            "\nreport: {0}/report.md, {0}/report.html, {0}/results.json, {plots} plots in {0}/plots/",
            dir.display()
        );
        self.progress.println(&t);
    }
}

/// `target/bench-report/` (under `CARGO_TARGET_DIR` when set).
pub fn out_dir() -> PathBuf {
    let target = match std::env::var("CARGO_TARGET_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
    };
    target.join("bench-report")
}

/// One measured run of a request/response workload.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub rps: f64,
    pub p50: std::time::Duration,
    pub p99: std::time::Duration,
}

impl Run {
    /// From every request's latency and the run's wall time.
    pub fn from_latencies(mut all: Vec<std::time::Duration>, elapsed: std::time::Duration) -> Run {
        let rps = all.len() as f64 / elapsed.as_secs_f64();
        all.sort();
        Run {
            rps,
            p50: all[all.len() / 2],
            p99: all[(all.len() * 99 / 100).min(all.len() - 1)],
        }
    }

    /// Runs `tasks` tasks at once, each made by `task(i)` and returning the
    /// latencies of its requests; the run over all of them.
    pub async fn measure<F>(tasks: usize, task: impl Fn(usize) -> F) -> Run
    where
        F: std::future::Future<Output = Vec<std::time::Duration>> + Send + 'static,
    {
        let start = std::time::Instant::now();
        let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(task(i))).collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.expect("task panicked"));
        }
        Run::from_latencies(all, start.elapsed())
    }

    /// The run of median throughput.
    pub fn median_of(runs: Vec<Run>) -> Run {
        let mut rps: Vec<f64> = runs.iter().map(|r| r.rps).collect();
        let m = median(&mut rps);
        runs.into_iter()
            .min_by(|a, b| (a.rps - m).abs().total_cmp(&(b.rps - m).abs()))
            .expect("at least one run")
    }
}

/// Milliseconds, for tables.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Metric names of a ratio to the ceiling and of its range.
pub const RATIO: [&str; 3] = ["vs_ceiling", "vs_ceiling_min", "vs_ceiling_max"];
/// The same against the best peer.
pub const RATIO_BEST: [&str; 3] = ["vs_best_peer", "vs_best_peer_min", "vs_best_peer_max"];

/// The median of per-run values (ratios, mostly) with their range, so that a
/// reader sees how far one run is from the next.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// Of `v` (sorted in place).
    pub fn of(v: &mut [f64]) -> Spread {
        let median = median(v);
        Spread {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// `0.92x (0.87–0.95)`; the range only when there was more than one run.
    pub fn times(&self) -> String {
        if self.min == self.max {
            return format!("{:.2}x", self.median);
        }
        format!("{:.2}x ({:.2}–{:.2})", self.median, self.min, self.max)
    }

    /// `92% (87–95)`.
    pub fn percent(&self) -> String {
        if self.min == self.max {
            return format!("{:.0}%", self.median * 100.0);
        }
        format!(
            "{:.0}% ({:.0}–{:.0})",
            self.median * 100.0,
            self.min * 100.0,
            self.max * 100.0
        )
    }
}

impl Report {
    /// Records a spread as three rows: `names` = the median's metric, the
    /// minimum's and the maximum's.
    pub fn spread_rows(
        &mut self,
        suite: &'static str,
        case: &str,
        pool: &'static str,
        names: [&'static str; 3],
        s: Spread,
    ) {
        for (metric, value) in names.into_iter().zip([s.median, s.min, s.max]) {
            self.rows.push(Row {
                suite,
                case: case.to_string(),
                pool,
                metric,
                value,
            });
        }
    }
}
