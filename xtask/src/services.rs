//! PostgreSQL, Redis and the MongoDB-wire server for the test suites: the ones named by `DATABASE_URL` /
//! `REDIS_URL` or on their default localhost ports; else throwaway instances
//! started from the locally installed binaries (temp dir, free port) and stopped
//! when the tests end; else the suites are skipped loudly — or, under `CI`, the
//! run fails. For MongoDB, the SecantusDB binary (`secantus.rs`): the tests
//! start their own servers from it.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS_DEFAULT: &str = "redis://127.0.0.1:6379";

/// The servers found or started; throwaway ones stop when this is dropped.
pub struct Services {
    database_url: Option<String>,
    redis_url: Option<String>,
    /// SecantusDB's server binary (MongoDB wire protocol).
    secantusd: Option<PathBuf>,
    owned: Vec<Owned>,
}

enum Owned {
    Postgres { dir: PathBuf },
    Redis { child: Child, dir: PathBuf },
}

impl Services {
    pub fn ensure(ci: bool) -> Result<Services> {
        let mut s = Services {
            database_url: None,
            redis_url: None,
            secantusd: None,
            owned: Vec::new(),
        };
        match crate::secantus::ensure(&crate::root()) {
            Ok(path) => s.secantusd = Some(path),
            Err(e) if ci => return Err(format!("the MongoDB-wire server cannot be installed: {e}")),
            Err(e) => eprintln!(
                "xtask: WARNING: the MongoDB-wire server cannot be installed ({e}); MongoDB suites will SKIP"
            ),
        }
        let pg = std::env::var("DATABASE_URL").unwrap_or_else(|_| PG_DEFAULT.into());
        if reachable(&pg) {
            s.database_url = Some(pg);
        } else {
            match start_postgres() {
                Ok((url, dir)) => {
                    eprintln!("xtask: started a throwaway PostgreSQL at {url}");
                    s.database_url = Some(url);
                    s.owned.push(Owned::Postgres { dir });
                }
                Err(e) if ci => {
                    return Err(format!("PostgreSQL unreachable and not startable: {e}"))
                }
                Err(e) => eprintln!(
                    "xtask: WARNING: PostgreSQL unreachable ({e}); PostgreSQL suites will SKIP"
                ),
            }
        }
        let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| REDIS_DEFAULT.into());
        if reachable(&redis) {
            s.redis_url = Some(redis);
        } else {
            match start_redis() {
                Ok((url, child, dir)) => {
                    eprintln!("xtask: started a throwaway Redis at {url}");
                    s.redis_url = Some(url);
                    s.owned.push(Owned::Redis { child, dir });
                }
                Err(e) if ci => return Err(format!("Redis unreachable and not startable: {e}")),
                Err(e) => {
                    eprintln!("xtask: WARNING: Redis unreachable ({e}); Redis suites will SKIP")
                }
            }
        }
        Ok(s)
    }

    pub fn export(&self, cmd: &mut Command) {
        match &self.database_url {
            Some(u) => cmd.env("DATABASE_URL", u),
            None => cmd.env("UNIPOOL_SKIP_POSTGRES", "1"),
        };
        match &self.redis_url {
            Some(u) => cmd.env("REDIS_URL", u),
            None => cmd.env("UNIPOOL_SKIP_REDIS", "1"),
        };
        match &self.secantusd {
            Some(p) => cmd.env("SECANTUSD_BIN", p),
            None => cmd.env("UNIPOOL_SKIP_MONGO", "1"),
        };
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for o in self.owned.drain(..) {
            match o {
                Owned::Postgres { dir } => {
                    let _ = Command::new("runuser")
                        .args(["-u", "postgres", "--", "pg_ctl", "-D"])
                        .arg(dir.join("data"))
                        .args(["-m", "fast", "-w", "stop"])
                        .stdout(Stdio::null())
                        .status();
                    let _ = std::fs::remove_dir_all(dir);
                }
                Owned::Redis { mut child, dir } => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
    }
}

/// host:port of a `scheme://[user@]host:port/...` URL.
fn host_port(url: &str) -> Option<String> {
    let rest = url.split("://").nth(1)?;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit('@').next()?;
    Some(hostport.to_string())
}

fn reachable(url: &str) -> bool {
    let Some(hp) = host_port(url) else {
        return false;
    };
    let Ok(mut addrs) = hp.to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn temp_dir(what: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("unipool-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Runs `cmd`; its stderr as the error when it fails.
pub(crate) fn ok(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn start_postgres() -> Result<(String, PathBuf)> {
    let port = free_port()?;
    let dir = temp_dir("pg")?;
    // PostgreSQL refuses to run as root: the cluster belongs to `postgres`.
    ok(Command::new("chown").arg("postgres").arg(&dir))?;
    ok(Command::new("runuser")
        .args([
            "-u", "postgres", "--", "initdb", "-A", "trust", "-U", "postgres", "-D",
        ])
        .arg(dir.join("data")))?;
    ok(Command::new("runuser")
        .args(["-u", "postgres", "--", "pg_ctl", "-w", "-D"])
        .arg(dir.join("data"))
        .arg("-o")
        .arg(format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            dir.display()
        ))
        .arg("-l")
        .arg(dir.join("log"))
        .arg("start"))?;
    ok(Command::new("runuser").args([
        "-u",
        "postgres",
        "--",
        "psql",
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        "CREATE DATABASE test",
    ]))?;
    Ok((format!("postgres://postgres@127.0.0.1:{port}/test"), dir))
}

fn start_redis() -> Result<(String, Child, PathBuf)> {
    let port = free_port()?;
    let dir = temp_dir("redis")?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server: {e}"))?;
    let url = format!("redis://127.0.0.1:{port}");
    let start = Instant::now();
    while !reachable(&url) {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("redis-server did not start listening within 10s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((url, child, dir))
}
