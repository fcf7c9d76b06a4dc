//! MongoDB for tests: throwaway SecantusDB servers (the MongoDB wire protocol
//! on WiredTiger storage; no `mongod` is packaged for these machines), each
//! started as a child on a free port with its own data directory and killed
//! by pid. `cargo xtask test` installs the server and names its binary in
//! `SECANTUSD_BIN`; without it the tests skip loudly (`UNIPOOL_SKIP_MONGO`),
//! or, under `CI`, xtask fails first.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary: `SECANTUSD_BIN`, else the venv `cargo xtask`
/// installs under `target/`.
fn binary() -> PathBuf {
    std::env::var_os("SECANTUSD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/secantus-venv/bin/secantusd-py")
        })
}

/// A SecantusDB child on a free port; killed on drop.
#[derive(Debug)]
pub struct Secantus {
    pub port: u16,
    /// `--auth`: SCRAM-SHA-256 required.
    auth: bool,
    dir: PathBuf,
    child: Option<Child>,
}

impl Secantus {
    /// A server without authentication.
    pub fn start() -> Secantus {
        Secantus::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A server without authentication, or why there is none (the binary is
    /// not installed).
    pub fn try_start() -> Result<Secantus, String> {
        if !binary().exists() {
            return Err(format!(
                "no MongoDB-wire server at {} (`cargo xtask test` / `cargo xtask bench` install it)",
                binary().display()
            ));
        }
        let mut s = Secantus {
            port: crate::free_port(),
            auth: false,
            dir: crate::temp_dir("secantus"),
            child: None,
        };
        s.start_again();
        Ok(s)
    }

    /// A server that requires `user` / `password` (created on a first start
    /// without authentication, as SecantusDB's docs say, then restarted with
    /// `--auth` on the same data).
    pub async fn start_with_user(user: &str, password: &str) -> Secantus {
        let mut s = Secantus::start();
        let client = mongodb::Client::with_uri_str(s.url()).await.unwrap();
        client
            .database("admin")
            .run_command(mongodb::bson::doc! {
                "createUser": user, "pwd": password, "roles": ["root"],
            })
            .await
            .expect("createUser");
        client.shutdown().immediate(true).await;
        s.stop();
        s.auth = true;
        s.start_again();
        s
    }

    /// Starts the server (again) on the same port and data.
    pub fn start_again(&mut self) {
        let mut c = Command::new(binary());
        c.args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--storage-path")
            .arg(self.dir.join("data"))
            .args([
                "--standalone",
                "--log-level",
                "WARNING",
                "--cache-size",
                "64M",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.auth {
            c.arg("--auth");
        }
        self.child = Some(c.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); `cargo xtask test` installs it",
                binary().display()
            )
        }));
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "SecantusDB did not start listening on {} within 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server cleanly (SIGTERM, by pid), so that what was written
    /// is on disk for the next start.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let start = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.wait();
        }
    }

    /// Kills the server (no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `mongodb://127.0.0.1:<port>/unipool`, with `user:password@` if given
    /// (users live in `admin`).
    pub fn url_with(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!(
                "mongodb://{u}:{p}@127.0.0.1:{}/unipool?authSource=admin",
                self.port
            ),
            None => format!("mongodb://127.0.0.1:{}/unipool", self.port),
        }
    }

    pub fn url(&self) -> String {
        self.url_with(None)
    }
}

impl Drop for Secantus {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
