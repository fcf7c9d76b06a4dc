//! Which files are audited: every `.rs` file under the root, in path order,
//! except build output and vendored code (`target/`, `vendor/`, hidden
//! directories), generated files (an `@generated` / "DO NOT EDIT" marker in
//! a comment of their first lines), and the paths and crates the configuration excludes.
//! Directory symlinks are not followed (no loops).

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Directories never entered.
const SKIPPED_DIRS: &[&str] = &["target", "vendor", "node_modules"];

/// Markers of generated code, looked for in the comments of a file's first
/// lines.
const GENERATED: &[&str] = &["@generated", "do not edit", "automatically generated"];

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Files to scan.
    pub files: Vec<PathBuf>,
    /// Directories that could not be listed, with why.
    pub errors: Vec<(PathBuf, String)>,
}

/// Lists the files to audit under `root` (or `root` itself if it is a file).
pub fn walk(root: &Path, config: &Config) -> Walk {
    let mut w = Walk::default();
    if root.is_file() {
        w.files.push(root.to_path_buf());
    } else {
        visit(root, root, config, &mut w);
    }
    w
}

fn visit(root: &Path, dir: &Path, config: &Config, w: &mut Walk) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            w.errors
                .push((dir.to_path_buf(), format!("cannot list: {e}")));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    if config.excludes_crate(dir) {
        return;
    }
    for path in entries {
        let rel = relative(root, &path);
        if config.excludes_path(&rel) {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let tests = name == "tests" && !config.include_tests;
            if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name) && !tests {
                visit(root, &path, config, w);
            }
        } else if name.ends_with(".rs") {
            // Files (and file symlinks, even dangling ones: reading them
            // reports why).
            w.files.push(path);
        }
    }
}

/// `path` relative to `root`, with `/` separators (as in reports and in the
/// configuration's `exclude`).
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let text = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    if text.is_empty() {
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    } else {
        text
    }
}

/// Whether `source` says it is generated: a marker in a plain comment (not
/// a doc comment, which may well talk about generated code) among its first
/// ten lines.
pub fn is_generated(source: &str) -> bool {
    source.lines().take(10).any(|line| {
        let line = line.trim_start();
        let doc = ["///", "//!", "/**", "/*!"]
            .iter()
            .any(|c| line.starts_with(c));
        let comment = !doc && ["//", "/*"].iter().any(|c| line.starts_with(c));
        let lower = line.to_ascii_lowercase();
        comment && GENERATED.iter().any(|m| lower.contains(m))
    })
}
