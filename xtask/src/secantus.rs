//! SecantusDB, the MongoDB-wire server the MongoDB tests and bench start: no
//! `mongod` is packaged for these machines. Installed from PyPI into a venv
//! under `target/` the first time (about 15 s), then reused. The tests and the
//! bench start their own servers from it (free port, stopped by pid); this
//! only tells them where the binary is (`SECANTUSD_BIN`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::services::ok;
use crate::Result;

/// The release checked with the official Rust driver on this machine kind.
const PACKAGE: &str = "secantusdb==0.7.0b3";

/// The venv's server binary, installing it first if needed.
pub fn ensure(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target").join("secantus-venv");
    let server = venv.join("bin").join("secantusd-py");
    let marker = venv.join(".installed");
    if server.exists() && std::fs::read_to_string(&marker).is_ok_and(|m| m == PACKAGE) {
        return Ok(server);
    }
    eprintln!(
        "xtask: installing {PACKAGE} (the MongoDB-wire test server) into {}",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    ok(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    ok(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--pre",
        PACKAGE,
    ]))?;
    if !server.exists() {
        return Err(format!("{PACKAGE} installed no {}", server.display()));
    }
    std::fs::write(&marker, PACKAGE).map_err(|e| e.to_string())?;
    Ok(server)
}
