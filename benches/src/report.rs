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

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
