//! The example runs as a user runs it, and says what it did: with the
//! machine's PostgreSQL and Redis, and with both unreachable.

use std::process::Command;

fn run(vars: &[(&str, String)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_unipool-example-service"))
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn it_serves_every_reachable_kind_and_shuts_down_cleanly() {
    let mut vars = Vec::new();
    if let Ok(url) = std::env::var("DATABASE_URL") {
        vars.push(("UNIPOOL_MAIN_URL", url));
    }
    if let Ok(url) = std::env::var("REDIS_URL") {
        vars.push(("UNIPOOL_CACHE_URL", url));
    }
    let out = run(&vars);
    for line in [
        "notes        sqlite   ok, 2 open",
        "50 of 50 requests served",
        "all closed in",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    if std::env::var_os("UNIPOOL_SKIP_POSTGRES").is_none() {
        assert!(out.contains("a PostgreSQL query each"), "{out}");
    }
    if std::env::var_os("UNIPOOL_SKIP_REDIS").is_none() {
        assert!(out.contains("a Redis INCR each"), "{out}");
    }
}

#[test]
fn unreachable_servers_are_reported_and_the_rest_still_serves() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let out = run(&[
        (
            "UNIPOOL_MAIN_URL",
            format!("postgres://postgres:pw@127.0.0.1:{dead}/test"),
        ),
        ("UNIPOOL_CACHE_URL", format!("redis://127.0.0.1:{dead}")),
    ]);
    assert!(
        out.contains("main         postgres FAILED: cannot connect"),
        "{out}"
    );
    assert!(out.contains("cache        redis    FAILED"), "{out}");
    assert!(
        out.contains("50 of 50 requests served: 50 notes written, 50 upstream calls\n"),
        "{out}"
    );
    assert!(out.contains("overall: unhealthy"), "{out}");
    assert!(out.contains("all closed in"), "{out}");
    assert!(!out.contains(":pw@"), "{out}");
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:`port` over HTTP/1.0; the body, if it answered.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Kills a child process by its pid when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_example_service() {
    let (metrics, web) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("unipool-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _service = Killed(
        Command::new(env!("CARGO_BIN_EXE_unipool-example-service"))
            .env("EXAMPLE_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
            .env("EXAMPLE_SERVE_SECS", "60")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run the example"),
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: example\n    static_configs:\n      - targets: ['127.0.0.1:{metrics}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian package `prometheus`; .ci/run installs it)"),
    );
    // The example's SQLite pool served its traffic: Prometheus must have
    // scraped a nonzero count of checkouts for it.
    let query = "/api/v1/query?query=unipool_acquired_total%7Bdb_client_connection_pool_name%3D%22notes%22%7D";
    let start = std::time::Instant::now();
    let answer = loop {
        if let Some(body) = http_get(web, query) {
            if body.contains("\"notes\"") && !body.contains("\"0\"]") {
                break body;
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(40),
            "Prometheus never returned the series"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert!(answer.contains("\"status\":\"success\""), "{answer}");
    assert!(answer.contains("\"job\":\"example\""), "{answer}");
    let _ = std::fs::remove_dir_all(&dir);
}
