//! The report's plots, drawn with plotters as SVG (inline in report.html)
//! and PNG, in DejaVu Sans shipped with the crate (`assets/`), so no system
//! font is needed: per suite, throughput of each pool across its
//! configurations; the wait-time distribution of the core fairness workload;
//! memory per idle connection.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::results::Row;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (960, 420);

/// One plot: grouped bars, a group per case, a bar per pool.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name without extension.
    pub file: String,
    pub suite: String,
    pub title: String,
    pub y_desc: String,
    pub cases: Vec<String>,
    pub pools: Vec<String>,
    pub values: BTreeMap<(String, String), f64>,
}

/// The charts of a run, in suite order.
pub fn charts(rows: &[Row]) -> Vec<Chart> {
    let mut suites: Vec<&str> = Vec::new();
    for r in rows {
        if !suites.contains(&r.suite.as_str()) {
            suites.push(&r.suite);
        }
    }
    let mut out = Vec::new();
    for suite in suites {
        let of = |keep: &dyn Fn(&Row) -> bool| -> Vec<&Row> {
            rows.iter()
                .filter(|r| r.suite == suite && keep(r))
                .collect()
        };
        // Throughput: one chart per family of cases (the word before the
        // first space when there are many cases, e.g. core's modes).
        let thr = of(&|r| r.metric.ends_with("_per_sec"));
        let mut families: Vec<String> = Vec::new();
        let many = distinct(thr.iter().map(|r| r.case.as_str())).len() > 6;
        let family = |case: &str| -> (String, String) {
            match case.split_once(' ') {
                Some((f, rest)) if many => (f.to_string(), rest.to_string()),
                _ => (String::new(), case.to_string()),
            }
        };
        for r in &thr {
            let f = family(&r.case).0;
            if !families.contains(&f) {
                families.push(f);
            }
        }
        for f in families {
            let mut chart = Chart {
                file: format!("{suite}-throughput{}", suffix(&f)),
                suite: suite.into(),
                title: format!(
                    "{suite}{}: throughput",
                    if f.is_empty() {
                        String::new()
                    } else {
                        format!(" ({f})")
                    }
                ),
                y_desc: thr.first().map_or(String::new(), |r| unit(&r.metric)),
                cases: Vec::new(),
                pools: Vec::new(),
                values: BTreeMap::new(),
            };
            for r in thr.iter().filter(|r| family(&r.case).0 == f) {
                chart.add(&family(&r.case).1, &r.pool, r.value);
            }
            out.push(chart);
        }
        // The fairness workload's wait times.
        let waits = of(&|r| r.case == "latency" && r.metric.starts_with("wait_"));
        if !waits.is_empty() {
            let mut chart = Chart::new(
                suite,
                "wait-times",
                "core: wait for get() under contention",
                "ms",
            );
            for r in waits {
                let pct = r.metric.trim_start_matches("wait_").trim_end_matches("_ms");
                chart.add(&pct.replace("p999", "p99.9"), &r.pool, r.value);
            }
            out.push(chart);
        }
        // Memory and descriptors.
        for (metric, what, title, unit, scale) in [
            (
                "rss_bytes_per_connection",
                "memory",
                "memory per idle connection",
                "KiB",
                1024.0,
            ),
            (
                "rss_bytes_peak",
                "memory-peak",
                "peak memory added by the clients",
                "KiB",
                1024.0,
            ),
            (
                "fds_peak",
                "fds-peak",
                "peak open descriptors added",
                "descriptors",
                1.0,
            ),
        ] {
            let rows = of(&|r| r.metric == metric);
            if rows.is_empty() {
                continue;
            }
            let mut chart = Chart::new(suite, what, &format!("{suite}: {title}"), unit);
            for r in rows {
                chart.add(&r.case, &r.pool, r.value / scale);
            }
            out.push(chart);
        }
    }
    out
}

fn suffix(family: &str) -> String {
    if family.is_empty() {
        String::new()
    } else {
        format!("-{family}")
    }
}

fn distinct<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for s in it {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

fn unit(metric: &str) -> String {
    metric.replace('_', " ")
}

impl Chart {
    fn new(suite: &str, what: &str, title: &str, y_desc: &str) -> Chart {
        Chart {
            file: format!("{suite}-{what}"),
            suite: suite.into(),
            title: title.into(),
            y_desc: y_desc.into(),
            cases: Vec::new(),
            pools: Vec::new(),
            values: BTreeMap::new(),
        }
    }

    fn add(&mut self, case: &str, pool: &str, value: f64) {
        if !self.cases.iter().any(|c| c == case) {
            self.cases.push(case.into());
        }
        if !self.pools.iter().any(|p| p == pool) {
            self.pools.push(pool.into());
        }
        self.values.insert((case.into(), pool.into()), value);
    }

    /// The chart as an SVG document.
    ///
    /// # Errors
    /// plotters' error, as text.
    pub fn svg(&self) -> Result<String, String> {
        register_font()?;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    /// The chart as a PNG file.
    ///
    /// # Errors
    /// plotters' error, as text.
    pub fn png(&self, path: &std::path::Path) -> Result<(), String> {
        register_font()?;
        let (w, h) = SIZE;
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| e.to_string())?;
        }
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let failed = |e: png::EncodingError| format!("{}: {e}", path.display());
        let mut png = png::Encoder::new(std::io::BufWriter::new(file), w, h);
        png.set_color(png::ColorType::Rgb);
        png.set_depth(png::BitDepth::Eight);
        let mut writer = png.write_header().map_err(failed)?;
        writer.write_image_data(&rgb).map_err(failed)?;
        writer.finish().map_err(failed)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        // Headroom for the legend, which sits in the upper right corner.
        let headroom = 1.15 + 0.06 * self.pools.len() as f64;
        let top = self
            .values
            .values()
            .copied()
            .fold(0.0_f64, f64::max)
            .max(1e-9)
            * headroom;
        let n = self.cases.len();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..n as f64, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(0)
            .y_desc(self.y_desc.as_str())
            .y_label_formatter(&|v| human(*v))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        // Bars of one case side by side within 80 % of its slot.
        let width = 0.8 / self.pools.len().max(1) as f64;
        for (j, pool) in self.pools.iter().enumerate() {
            let color = Palette99::pick(j).to_rgba();
            let bars: Vec<_> = self
                .cases
                .iter()
                .enumerate()
                .filter_map(|(i, case)| {
                    let v = *self.values.get(&(case.clone(), pool.clone()))?;
                    let x = i as f64 + 0.1 + j as f64 * width;
                    Some(Rectangle::new(
                        [(x, 0.0), (x + width * 0.9, v)],
                        color.filled(),
                    ))
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(pool.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        // Case names under their groups (plotters' tick labels sit on round
        // numbers, not on group centres).
        let style = TextStyle::from(("sans-serif", 12)).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, case) in self.cases.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(case.clone(), (x, y + 6), style.clone()))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// 12345678 → "12.3M".
fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| "the shipped font does not load".to_string())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(case: &str, pool: &str, value: f64) -> Row {
        Row {
            suite: "redis".into(),
            case: case.into(),
            pool: pool.into(),
            metric: "ops_per_sec".into(),
            value,
        }
    }

    /// The PNG is a valid image of the chart's size, with the bars drawn in
    /// the palette's colours (not only the white background and black text).
    #[test]
    fn a_chart_renders_as_a_png_that_decodes() {
        let rows = [
            row("a", "unipool", 3.0),
            row("a", "bb8", 1.0),
            row("b", "unipool", 2.0),
        ];
        let charts = charts(&rows);
        assert_eq!(charts.len(), 1);
        let path = std::env::temp_dir().join(format!("unipool-plot-{}.png", std::process::id()));
        charts[0].png(&path).expect("png");
        let file = std::fs::File::open(&path).expect("the PNG was written");
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .expect("a PNG header");
        let mut rgb = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut rgb).expect("the image data");
        let _ = std::fs::remove_file(&path);
        assert_eq!((info.width, info.height), SIZE);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let coloured = rgb[..info.buffer_size()]
            .chunks(3)
            .filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 64)
            .count();
        assert!(coloured > 1000, "only {coloured} coloured pixels: no bars");
    }
}
