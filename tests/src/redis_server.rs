//! Redis for tests: the machine's server (`REDIS_URL`, else the local default),
//! and throwaway `redis-server` children for tests that need a password, a unix
//! socket, or must kill and restart the server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared server's URL.
pub fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// A `redis-server` child on a free port; killed on drop.
#[derive(Debug)]
pub struct ThrowawayRedis {
    pub port: u16,
    pub password: Option<String>,
    pub socket: PathBuf,
    /// With TLS: only a TLS port, with this certificate and key (PEM files).
    tls: Option<(PathBuf, PathBuf)>,
    dir: PathBuf,
    child: Option<Child>,
}

impl ThrowawayRedis {
    pub fn start(password: Option<&str>) -> ThrowawayRedis {
        let dir = crate::temp_dir("redis");
        let mut r = ThrowawayRedis {
            port: crate::free_port(),
            password: password.map(str::to_string),
            socket: dir.join("redis.sock"),
            tls: None,
            dir,
            child: None,
        };
        r.start_again();
        r
    }

    /// A server that speaks only TLS, with the given certificate and key (PEM).
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> ThrowawayRedis {
        let dir = crate::temp_dir("redis-tls");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        let mut r = ThrowawayRedis {
            port: crate::free_port(),
            password: None,
            socket: dir.join("redis.sock"),
            tls: Some((cert, key)),
            dir,
            child: None,
        };
        r.start_again();
        r
    }

    /// Starts the server (again) on the same port and socket.
    pub fn start_again(&mut self) {
        let mut c = Command::new("redis-server");
        match &self.tls {
            None => {
                c.args(["--port", &self.port.to_string()]);
            }
            Some((cert, key)) => {
                c.args(["--port", "0", "--tls-port", &self.port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(cert)
                    .arg("--tls-key-file")
                    .arg(key)
                    .arg("--tls-ca-cert-file")
                    .arg(cert)
                    .args(["--tls-auth-clients", "no"]);
            }
        }
        c.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--unixsocket")
            .arg(&self.socket)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pw) = &self.password {
            c.args(["--requirepass", pw]);
        }
        self.child = Some(c.spawn().expect("redis-server is installed"));
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url_with(&self, password: Option<&str>) -> String {
        match password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn url(&self) -> String {
        self.url_with(self.password.as_deref())
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
