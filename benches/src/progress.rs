//! What the terminal shows while the suites run: one bar per suite, filled by
//! time against the suite's expected duration (measured on the 2-core
//! development machine, docs/benchmarks.md), with the cell being measured
//! and an estimate of the time left; tables are printed above the bars.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::effort::Effort;

/// The bars of a run.
#[derive(Debug)]
pub struct Progress {
    bars: MultiProgress,
    current: Option<ProgressBar>,
}

/// Expected wall time of a suite, in seconds, at an effort.
fn expected(suite: &str, effort: Effort) -> u64 {
    let default = match suite {
        "core" => 30,
        "sql" => 25,
        "redis" => 10,
        "http" => 10,
        "ws" | "zmq" => 7,
        "resources" => 10,
        "mongo" => 13,
        "scale" => 75,
        "telemetry" => 1,
        _ => 30,
    };
    match effort {
        Effort::Quick => (default / 6).max(1),
        Effort::Default => default,
        Effort::Thorough => default * 3,
    }
}

impl Progress {
    /// Bars on stderr when it is a terminal; hidden otherwise (CI logs get
    /// the tables only).
    pub fn new() -> Progress {
        let target = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            bars: MultiProgress::with_draw_target(target),
            current: None,
        }
    }

    /// A suite starts: its bar, ticking every 200 ms.
    pub fn suite(&mut self, name: &str, effort: Effort) {
        self.finish();
        let secs = expected(name, effort);
        let bar = self.bars.add(ProgressBar::new(secs * 10));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {elapsed:>4} ~{eta:>4} left  {wide_msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        let ticker = bar.clone();
        std::thread::spawn(move || {
            // Time fills the bar up to 99 %: a suite that runs long waits there.
            while !ticker.is_finished() {
                std::thread::sleep(Duration::from_millis(100));
                if ticker.position() + 1 < ticker.length().unwrap_or(0) {
                    ticker.inc(1);
                }
            }
        });
        self.current = Some(bar);
    }

    /// The cell being measured now.
    pub fn cell(&self, what: impl Into<std::borrow::Cow<'static, str>>) {
        if let Some(bar) = &self.current {
            bar.set_message(what);
        }
    }

    /// Prints above the bars.
    pub fn println(&self, text: &str) {
        if self.bars.is_hidden() {
            println!("{text}");
        } else {
            let _ = self.bars.println(text);
        }
    }

    /// The current suite is done.
    pub fn finish(&mut self) {
        if let Some(bar) = self.current.take() {
            bar.set_message("done");
            bar.finish();
        }
    }
}
