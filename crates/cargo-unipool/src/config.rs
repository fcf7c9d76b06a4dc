//! What the audit skips and when it fails: `.unipool-audit.toml` at the
//! audited root (or `--config FILE`), then the command-line flags on top.
//!
//! ```toml
//! exclude = ["benches", "examples/legacy"]   # paths under the root
//! exclude_crates = ["load-tests"]            # crates by package name
//! fail_above = 20                            # total score CI accepts
//! include_tests = false                      # audit `tests/` directories
//! ```

use std::path::Path;

/// The audit's settings.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Paths (relative to the root, `/`-separated) not audited: a path is
    /// skipped when it equals one of these or lies under it.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Crates not audited, by their `[package] name`.
    #[serde(default)]
    pub exclude_crates: Vec<String>,
    /// Fail (exit status 1) when the total score is above this.
    pub fail_above: Option<u32>,
    /// Audit `tests/` directories too (integration tests and their support
    /// code, skipped by default: a test making its own client is fine).
    #[serde(default)]
    pub include_tests: bool,
}

/// The name of the file read from the audited root.
pub const FILE: &str = ".unipool-audit.toml";

impl Config {
    /// Reads a configuration file.
    ///
    /// # Errors
    /// The file cannot be read, or is not valid (TOML's message names the
    /// line and the key).
    pub fn read(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether the relative path `rel` is excluded.
    pub fn excludes_path(&self, rel: &str) -> bool {
        self.exclude.iter().any(|x| {
            let x = x.trim_start_matches("./").trim_end_matches('/');
            !x.is_empty() && (rel == x || rel.starts_with(&format!("{x}/")))
        })
    }

    /// Whether `dir` holds an excluded crate (its `Cargo.toml` names it).
    pub fn excludes_crate(&self, dir: &Path) -> bool {
        if self.exclude_crates.is_empty() {
            return false;
        }
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            return false;
        };
        let Ok(manifest) = text.parse::<toml::Table>() else {
            return false;
        };
        manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .is_some_and(|name| self.exclude_crates.iter().any(|x| x == name))
    }
}
