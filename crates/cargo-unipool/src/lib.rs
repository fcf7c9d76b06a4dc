//! `cargo unipool audit`: finds clients, connections and pools created per
//! call in a Rust codebase — where a shared unipool pool belongs — scores
//! each finding by where it sits (a request handler, a loop, async code) and
//! ranks the files to migrate first. Parses Rust with `syn` (a full syntax
//! tree, not regular expressions). See `docs/audit.md`.
//!
//! The library is the binary's implementation, public for its tests.

pub mod config;
pub mod patterns;
pub mod report;
pub mod scan;
pub mod score;
pub mod walk;

use std::path::Path;

use config::Config;
use report::{FileReport, Problem, Report};

/// Audits every file under `root` (or the file `root`).
pub fn audit(root: &Path, config: &Config) -> Report {
    let found = walk::walk(root, config);
    let base = if root.is_file() {
        root.parent().unwrap_or(root)
    } else {
        root
    };
    let mut report = Report::default();
    for (dir, reason) in found.errors {
        report.errors.push(Problem {
            path: walk::relative(base, &dir),
            reason,
        });
    }
    for path in found.files {
        let rel = walk::relative(base, &path);
        match audit_file(&path) {
            Outcome::Findings(findings) => {
                report.scanned += 1;
                if !findings.is_empty() {
                    report.files.push(FileReport {
                        path: rel,
                        score: findings.iter().map(|f| f.score).sum(),
                        findings,
                    });
                }
            }
            Outcome::Generated => report.generated.push(rel),
            Outcome::Failed(reason) => report.errors.push(Problem { path: rel, reason }),
        }
    }
    report.rank();
    report
}

enum Outcome {
    Findings(Vec<scan::Finding>),
    Generated,
    Failed(String),
}

fn audit_file(path: &Path) -> Outcome {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("cannot read: {e}")),
    };
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            return Outcome::Failed(format!(
                "not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        }
    };
    if walk::is_generated(&source) {
        return Outcome::Generated;
    }
    match scan::scan(&source) {
        Ok(f) => Outcome::Findings(f),
        Err(e) => Outcome::Failed(format!(
            "does not parse at {}:{}: {}",
            e.line, e.column, e.message
        )),
    }
}
