//! The bench report: `target/bench-report/report.md` and `results.json`.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub suite: &'static str,
    pub case: String,
    pub pool: &'static str,
    pub metric: &'static str,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub tables: Vec<String>,
}

/// A fresh multi-thread runtime for one suite.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

impl Report {
    /// Prints a suite's table and keeps it for `report.md`.
    pub fn finish(&mut self, table: String) {
        println!("{table}");
        self.tables.push(table);
    }

    pub fn write(&self) -> std::io::Result<()> {
        let dir = target_dir().join("bench-report");
        std::fs::create_dir_all(&dir)?;
        let mut md = String::from("# unipool bench report\n\n");
        for t in &self.tables {
            md.push_str(t);
            md.push('\n');
        }
        std::fs::write(dir.join("report.md"), md)?;
        let mut json = String::from("[\n");
        for (i, r) in self.rows.iter().enumerate() {
            let sep = if i + 1 == self.rows.len() { "" } else { "," };
            let _ = writeln!(
                json,
                "  {{\"suite\": {:?}, \"case\": {:?}, \"pool\": {:?}, \"metric\": {:?}, \"value\": {}}}{sep}",
                r.suite, r.case, r.pool, r.metric, r.value
            );
        }
        json.push_str("]\n");
        std::fs::write(dir.join("results.json"), json)?;
        println!("report: {}", dir.join("report.md").display());
        Ok(())
    }
}

fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
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
