//! PostgreSQL for tests: the machine's server (`DATABASE_URL`, else the local
//! default), and throwaway clusters for tests that need a password or must stop
//! and restart a server — never the shared one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// The shared server's URL.
pub fn url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A cluster of our own on a free port, stopped and deleted on drop.
#[derive(Debug)]
pub struct ThrowawayPg {
    dir: PathBuf,
    pub port: u16,
    /// The `postgres` user's password when started with one.
    pub password: Option<String>,
    /// The server's `max_connections`.
    pub max_connections: u32,
}

fn bin(name: &str) -> PathBuf {
    // On PATH on these machines; Debian keeps them under /usr/lib/postgresql.
    if Command::new(name).arg("--version").output().is_ok() {
        return PathBuf::from(name);
    }
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.last()
        .map(|d| d.join("bin").join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(bin(program));
    c
}

fn run(mut c: Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl ThrowawayPg {
    /// Initialises and starts a cluster. With `password`, every login needs it
    /// (scram-sha-256); without, trust.
    pub fn start(password: Option<&str>) -> ThrowawayPg {
        Self::start_with(password, 40)
    }

    /// As [`start`](Self::start), with `max_connections` (3 of them are
    /// reserved for superusers, PostgreSQL's default).
    pub fn start_with(password: Option<&str>, max_connections: u32) -> ThrowawayPg {
        let dir = crate::temp_dir("pg");
        run({
            let mut c = Command::new("chown");
            c.arg("postgres").arg(&dir);
            c
        });
        let mut init = as_postgres("initdb");
        init.arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres"]);
        match password {
            Some(pw) => {
                let pwfile = dir.join("pw");
                std::fs::write(&pwfile, pw).expect("write pwfile");
                run({
                    let mut c = Command::new("chown");
                    c.arg("postgres").arg(&pwfile);
                    c
                });
                init.arg("--auth=scram-sha-256")
                    .arg(format!("--pwfile={}", pwfile.display()));
            }
            None => {
                init.arg("--auth=trust");
            }
        }
        run(init);
        let pg = ThrowawayPg {
            dir,
            port: crate::free_port(),
            password: password.map(str::to_string),
            max_connections,
        };
        pg.start_again();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts the (stopped) cluster, waiting until it accepts connections.
    pub fn start_again(&self) {
        let mut c = as_postgres("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections={}",
                self.port,
                self.dir.display(),
                self.max_connections
            ))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "start"]);
        run(c);
    }

    /// A crash: every connection is cut without goodbye.
    pub fn stop_immediate(&self) {
        self.stop("immediate");
    }

    fn stop(&self, mode: &str) {
        let mut c = as_postgres("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .args(["-m", mode, "-w", "stop"]);
        let _ = c.output();
    }

    /// A URL to database `postgres` as user `postgres`, with `password` if given.
    pub fn url_with(&self, password: Option<&str>) -> String {
        match password {
            Some(pw) => format!("postgres://postgres:{pw}@127.0.0.1:{}/postgres", self.port),
            None => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
        }
    }

    /// The URL with the right password.
    pub fn url(&self) -> String {
        self.url_with(self.password.as_deref())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `url` with an `application_name` unique to this process and `tag`, so
/// that the server's count of a pool's sessions can be read.
pub fn named(url: &str, tag: &str) -> (String, String) {
    let app = format!("unipool_{tag}_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    (format!("{url}{sep}application_name={app}"), app)
}

/// Samples the server's count of sessions named `app` every 2 ms, from a
/// connection of its own, until [`ServerCount::stop`].
#[derive(Debug)]
pub struct ServerCount {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerCount {
    pub async fn start(url: &str, app: &str) -> ServerCount {
        let (watch, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let (stop, max) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let task = {
            let (stop, max, app) = (stop.clone(), max.clone(), app.to_owned());
            tokio::spawn(async move {
                while !stop.load(SeqCst) {
                    let row = watch
                        .query_one(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                            &[&app],
                        )
                        .await
                        .unwrap();
                    max.fetch_max(row.get::<_, i64>(0) as usize, SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        };
        ServerCount { stop, max, task }
    }

    /// Stops sampling; the largest count seen.
    pub async fn stop(self) -> usize {
        self.stop.store(true, SeqCst);
        self.task.await.unwrap();
        self.max.load(SeqCst)
    }
}
