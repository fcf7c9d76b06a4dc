//! `bench telemetry`: what a scrape of `/metrics` costs with many pools —
//! a registry of 50 SQLite pools (temp files), each used once, and the
//! exposition rendered again and again. Target: a scrape under 5 ms.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::report::{median, Report, Row};

const POOLS: usize = 50;

pub fn run(report: &mut Report) -> Result<(), String> {
    let quick = report.effort.is_quick();
    let scrapes = if quick { 50 } else { 500 };
    let rt = crate::report::runtime()?;
    let (per_scrape, bytes) = rt.block_on(async move {
        let dir = unipool_tests::temp_dir("bench-telemetry");
        let mut toml = String::new();
        for i in 0..POOLS {
            let _ = writeln!(
                toml,
                "[pools.p{i:02}]\nurl = \"sqlite://{}\"\nmax_size = 2",
                dir.join(format!("p{i}.db")).display()
            );
        }
        let registry = unipool::RegistryConfig::new()
            .toml(&toml, "bench.toml")
            .and_then(|c| c.build())
            .map_err(|e| e.to_string())?;
        for i in 0..POOLS {
            let pool = registry
                .sqlite(&format!("p{i:02}"))
                .map_err(|e| e.to_string())?;
            drop(pool.get().await.map_err(|e| e.to_string())?);
        }
        let mut times = Vec::with_capacity(scrapes);
        let mut bytes = 0;
        for _ in 0..scrapes {
            let t = Instant::now();
            let text = unipool::telemetry::metrics_text(&registry);
            times.push(t.elapsed().as_secs_f64());
            bytes = text.len();
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok::<_, String>((Duration::from_secs_f64(median(&mut times)), bytes))
    })?;
    report.rows.push(Row {
        suite: "telemetry",
        case: format!("scrape of {POOLS} pools"),
        pool: "unipool",
        metric: "seconds",
        value: per_scrape.as_secs_f64(),
    });
    let ms = per_scrape.as_secs_f64() * 1e3;
    let verdict = if ms < 5.0 { "met" } else { "NOT met" };
    report.finish(format!(
        "## telemetry: a /metrics scrape\n\n{POOLS} SQLite pools of a registry, each used once; \
         median of {scrapes} renderings of the exposition ({bytes} bytes): **{ms:.2} ms** \
         (target < 5 ms: {verdict})\n"
    ));
    Ok(())
}
