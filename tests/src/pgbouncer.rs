//! PgBouncer for tests: a throwaway `pgbouncer` (Debian's package, 1.18) in
//! transaction mode on a free port, in front of a PostgreSQL server; stopped by
//! the pid in its pidfile on drop.
//!
//! PgBouncer refuses to run as root: it runs as `postgres` through `runuser`
//! (the user the machine's PostgreSQL and the throwaway clusters run as).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A PgBouncer daemon of our own.
#[derive(Debug)]
pub struct ThrowawayPgBouncer {
    dir: PathBuf,
    pub port: u16,
}

/// How the daemon is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The PostgreSQL server it forwards to.
    pub upstream_port: u16,
    /// `transaction` (the point of these tests) or `session`.
    pub pool_mode: &'static str,
    /// Server connections per database/user pair.
    pub pool_size: u32,
    /// Client connections it accepts in all.
    pub max_client_conn: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            upstream_port: 5432,
            pool_mode: "transaction",
            pool_size: 4,
            max_client_conn: 1000,
        }
    }
}

/// Whether this machine has PgBouncer (`.ci/run` installs Debian's package).
pub fn available() -> bool {
    Command::new("pgbouncer").arg("--version").output().is_ok()
        || std::path::Path::new("/usr/sbin/pgbouncer").exists()
}

fn program() -> &'static str {
    if Command::new("pgbouncer").arg("--version").output().is_ok() {
        "pgbouncer"
    } else {
        "/usr/sbin/pgbouncer"
    }
}

impl ThrowawayPgBouncer {
    /// Starts the daemon and waits until it accepts connections. Every
    /// database name is forwarded to `upstream_port` as user `postgres`
    /// (`auth_type = any`); `server_round_robin` is on, so consecutive
    /// transactions of one client land on different server connections as soon
    /// as there are several — what a busy PgBouncer does anyway.
    pub fn start(settings: Settings) -> ThrowawayPgBouncer {
        let dir = crate::temp_dir("pgbouncer");
        let port = crate::free_port();
        let ini = format!(
            "[databases]\n\
             * = host=127.0.0.1 port={up} user=postgres\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = any\n\
             pool_mode = {mode}\n\
             default_pool_size = {size}\n\
             max_client_conn = {clients}\n\
             server_round_robin = 1\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             pidfile = {dir}/pgbouncer.pid\n\
             logfile = {dir}/pgbouncer.log\n",
            up = settings.upstream_port,
            mode = settings.pool_mode,
            size = settings.pool_size,
            clients = settings.max_client_conn,
            dir = dir.display(),
        );
        let conf = dir.join("pgbouncer.ini");
        std::fs::write(&conf, ini).expect("write pgbouncer.ini");
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown {} failed", dir.display());
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--", program(), "-d", "-q"])
            .arg(&conf)
            .output()
            .expect("run pgbouncer");
        let bouncer = ThrowawayPgBouncer { dir, port };
        assert!(
            out.status.success(),
            "pgbouncer failed to start: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            bouncer.log()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer does not listen on {port}:\n{}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bouncer
    }

    /// A URL to `database` through this PgBouncer.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pgbouncer.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for ThrowawayPgBouncer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            // SIGTERM makes it close its sockets and exit; wait so that the
            // next test's server connections are not counted twice.
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::path::Path::new(&format!("/proc/{pid}")).exists()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
