//! The audit's result and its three forms: a table for the terminal, JSON
//! (schema version 1) and SARIF 2.1.0 for code-scanning tools.

use std::fmt::Write as _;

use serde_json::json;

use crate::patterns;
use crate::scan::Finding;

/// The findings of one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileReport {
    /// Relative to the audited root, `/`-separated.
    pub path: String,
    /// The sum of its findings' scores.
    pub score: u32,
    pub findings: Vec<Finding>,
}

/// A file that was not audited, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// Everything one audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Files with findings, highest score first (then by path).
    pub files: Vec<FileReport>,
    /// Files scanned, with or without findings.
    pub scanned: usize,
    /// Generated files skipped.
    pub generated: Vec<String>,
    /// Files (or directories) that could not be read or parsed.
    pub errors: Vec<Problem>,
    /// The sum of every file's score.
    pub total: u32,
}

impl Report {
    /// Ranks the files and sums the total.
    pub fn rank(&mut self) {
        self.files
            .sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.path.cmp(&b.path)));
        self.total = self.files.iter().map(|f| f.score).sum();
    }

    fn findings(&self) -> usize {
        self.files.iter().map(|f| f.findings.len()).sum()
    }

    /// The table printed on a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cargo unipool audit: {} findings in {} files ({} scanned), total score {}",
            self.findings(),
            self.files.len(),
            self.scanned,
            self.total
        );
        if !self.files.is_empty() {
            let _ = writeln!(out, "\n rank  score  findings  file");
            for (i, f) in self.files.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{:>5}  {:>5}  {:>8}  {}",
                    i + 1,
                    f.score,
                    f.findings.len(),
                    f.path
                );
            }
        }
        for f in &self.files {
            let _ = writeln!(out, "\n{} (score {})", f.path, f.score);
            for x in &f.findings {
                let _ = writeln!(
                    out,
                    "  {}:{}:{}  [{} · score {}] {}\n      → {}",
                    f.path, x.line, x.column, x.rule, x.score, x.reason, x.replacement
                );
            }
        }
        if !self.generated.is_empty() {
            let _ = writeln!(out, "\nskipped as generated: {}", self.generated.join(", "));
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nnot audited:");
            for e in &self.errors {
                let _ = writeln!(out, "  {}: {}", e.path, e.reason);
            }
        }
        out
    }

    /// The JSON form (schema version 1, documented in docs/audit.md).
    pub fn json(&self) -> String {
        let value = json!({
            "version": 1,
            "tool": { "name": "cargo-unipool", "version": env!("CARGO_PKG_VERSION") },
            "total_score": self.total,
            "scanned": self.scanned,
            "files": self.files,
            "generated": self.generated,
            "errors": self.errors,
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    /// The SARIF 2.1.0 form: one result per finding (level `warning`, its
    /// score in `properties`), files not audited as tool notifications.
    pub fn sarif(&self) -> String {
        let rules: Vec<_> = patterns::rules()
            .into_iter()
            .map(|(id, help)| {
                json!({
                    "id": id,
                    "shortDescription": { "text": format!("per-call creation ({id})") },
                    "help": { "text": help },
                })
            })
            .collect();
        let results: Vec<_> = self
            .files
            .iter()
            .flat_map(|f| {
                f.findings.iter().map(move |x| {
                    json!({
                        "ruleId": x.rule,
                        "level": "warning",
                        "message": { "text": format!("{} → {}", x.reason, x.replacement) },
                        "locations": [location(&f.path, x.line, x.column)],
                        "properties": { "score": x.score, "function": x.function },
                    })
                })
            })
            .collect();
        let notifications: Vec<_> = self
            .errors
            .iter()
            .map(|e| {
                json!({
                    "level": "warning",
                    "message": { "text": format!("not audited: {}", e.reason) },
                    "locations": [location(&e.path, 1, 1)],
                })
            })
            .collect();
        let value = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": {
                    "name": "cargo-unipool",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://example.invalid/unipool/docs/audit.md",
                    "rules": rules,
                }},
                "results": results,
                "invocations": [{
                    "executionSuccessful": true,
                    "toolExecutionNotifications": notifications,
                }],
            }],
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

fn location(path: &str, line: usize, column: usize) -> serde_json::Value {
    json!({
        "physicalLocation": {
            "artifactLocation": { "uri": path, "uriBaseId": "%SRCROOT%" },
            "region": { "startLine": line, "startColumn": column },
        }
    })
}
