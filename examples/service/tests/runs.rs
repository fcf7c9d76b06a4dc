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
