//! `/metrics` and `/health/connections` of a registry, over real HTTP:
//! series and values after known traffic, the exposition checked by
//! Prometheus's own `promtool`, health turning 503 while a throwaway
//! PostgreSQL is down and 200 once it is back, and no password anywhere.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use unipool::{Registry, RegistryConfig};
use unipool_tests::zmq_peer::{Echo, ZmqPeer};
use unipool_tests::{pg, require};

/// Serves the registry's endpoints on a side port (`telemetry::serve`);
/// its address, once it accepts.
async fn serve(registry: Registry) -> std::net::SocketAddr {
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], unipool_tests::free_port()).into();
    tokio::spawn(unipool::telemetry::serve(addr, registry));
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(5), "not serving");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    addr
}

/// `GET path` over HTTP/1.0: the status code and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{exposition}"))
        .parse()
        .unwrap()
}

fn promtool_check(exposition: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 0: clean; 3: it parsed, with lint remarks; anything else: it
    // did not parse. The two remarks allowed are explained in
    // docs/metrics.md: the convention's own name `db_client_connection_count`,
    // and promtool 2.42 reading OpenMetrics counters (`# HELP x` for the
    // samples `x_total`) as the classic format.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool could not parse the exposition:\n{said}\n{exposition}"
    );
    for remark in said.lines().filter(|l| !l.trim().is_empty()) {
        let allowed = remark.starts_with("db_client_connection_count non-histogram")
            || (remark.ends_with("_total no help text")
                && exposition.contains(&format!(
                    "# TYPE {} counter",
                    remark.trim_end_matches("_total no help text")
                )));
        assert!(allowed, "promtool: {remark}\n{exposition}");
    }
}

#[tokio::test]
async fn metrics_after_known_traffic_pass_promtool_and_hold_no_password() {
    require!("postgres");
    // Trust authentication ignores the password: it is here to be hidden.
    let url = pg::url().replacen("postgres://postgres@", "postgres://postgres:s3cret-pw@", 1);
    assert!(url.contains("s3cret-pw"), "{url}");
    let peer = ZmqPeer::echo(Echo::Rep, Duration::ZERO);
    let web = unipool_tests::http_server::start().await;
    let registry = RegistryConfig::new()
        .toml(
            &format!(
                "[pools.main]\nurl = \"{url}\"\nmax_size = 3\n\
                 [pools.bus]\nurl = \"{}\"\nkind = \"zmq\"\nsocket = \"req\"\n\
                 [pools.api]\nurl = \"{}\"\n",
                peer.endpoint,
                web.url("/")
            ),
            "test.toml",
        )
        .unwrap()
        .build()
        .unwrap();
    let pool = registry.postgres("main").unwrap();
    for _ in 0..5 {
        let c = pool.get().await.unwrap();
        c.query_one("SELECT 1", &[]).await.unwrap();
    }
    let bus = registry.zmq("bus").unwrap();
    for _ in 0..3 {
        bus.request([b"ping".to_vec()]).await.unwrap();
    }
    let api = registry.http("api").unwrap();
    for _ in 0..4 {
        let resp = api.send(api.get("ok").unwrap()).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let addr = serve(registry).await;
    let (code, text) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    let main = "{db_client_connection_pool_name=\"main\"}";
    let count = |state: &str| {
        sample(
            &text,
            &format!(
                "db_client_connection_count{{db_client_connection_pool_name=\"main\",db_client_connection_state=\"{state}\"}}"
            ),
        )
    };
    assert_eq!((count("idle"), count("used")), (1.0, 0.0));
    assert_eq!(
        sample(&text, &format!("db_client_connection_max{main}")),
        3.0
    );
    assert_eq!(sample(&text, &format!("unipool_acquired_total{main}")), 5.0);
    assert_eq!(
        sample(&text, &format!("unipool_connections_created_total{main}")),
        1.0
    );
    assert_eq!(sample(&text, &format!("unipool_reuse_ratio{main}")), 0.8);
    assert_eq!(sample(&text, &format!("unipool_circuits_open{main}")), 0.0);
    assert_eq!(
        sample(
            &text,
            &format!("db_client_connection_create_time_seconds_count{main}")
        ),
        1.0
    );
    assert!(
        sample(
            &text,
            &format!("db_client_connection_create_time_seconds_sum{main}")
        ) > 0.0
    );
    // Distributions from the pool's events (the registry's observer): every
    // checkout and every return, in buckets.
    let bucket = |what: &str, le: &str| {
        sample(
            &text,
            &format!(
                "db_client_connection_{what}_time_seconds_bucket{{le=\"{le}\",db_client_connection_pool_name=\"main\"}}"
            ),
        )
    };
    assert_eq!(bucket("wait", "+Inf"), 5.0);
    assert_eq!(bucket("use", "+Inf"), 5.0);
    assert_eq!(bucket("create", "+Inf"), 1.0);
    assert!(
        bucket("wait", "0.001") >= 4.0,
        "idle connections are handed out at once"
    );
    assert!(
        bucket("use", "0.001") <= bucket("use", "0.01"),
        "cumulative"
    );
    // A pool built by a protocol crate (pool-zmq) records them too.
    assert_eq!(
        sample(
            &text,
            "db_client_connection_use_time_seconds_bucket{le=\"+Inf\",db_client_connection_pool_name=\"bus\"}"
        ),
        3.0
    );
    // Per host of the HTTP pool: four requests over one connection.
    let (address, port) = web
        .host()
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    let host = format!(
        "{{db_client_connection_pool_name=\"api\",server_address=\"{address}\",server_port=\"{port}\"}}"
    );
    assert_eq!(
        sample(&text, &format!("unipool_http_requests_total{host}")),
        4.0
    );
    assert_eq!(
        sample(&text, &format!("http_client_active_requests{host}")),
        0.0
    );
    let open = |state: &str| {
        sample(
            &text,
            &format!(
                "http_client_open_connections{{db_client_connection_pool_name=\"api\",server_address=\"{address}\",server_port=\"{port}\",http_connection_state=\"{state}\"}}"
            ),
        )
    };
    assert_eq!((open("idle"), open("active")), (1.0, 0.0));
    assert_eq!(
        sample(
            &text,
            &format!("unipool_http_connections_opened_total{host}")
        ),
        1.0
    );
    assert_eq!(
        sample(&text, &format!("unipool_http_reuse_ratio{host}")),
        0.75
    );
    promtool_check(&text);

    let (code, health) = get(addr, "/health/connections").await;
    assert_eq!(code, 200, "{health}");
    // Compared as JSON values: the order of keys is serde_json's business
    // (the mongodb driver turns on its `preserve_order`).
    let parsed: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(
        parsed["components"]["api"]["details"]["hosts"],
        serde_json::json!([{
            "connections_opened": 1, "error_rate": 0.0, "host": format!("{address}:{port}"),
            "open_connections": 1, "requests": 4, "reuse_rate": 0.75,
        }]),
        "{health}"
    );
    assert!(
        health.contains(r#""target":"postgres://postgres:***@127.0.0.1"#),
        "the target, redacted: {health}"
    );
    for body in [&text, &health] {
        assert!(!body.contains("s3cret-pw"), "a password in\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_postgres_is_down_and_200_when_it_is_back() {
    require!("postgres");
    let server = pg::ThrowawayPg::start(None);
    let registry = RegistryConfig::new()
        .toml(
            &format!(
                "[pools.main]\nurl = \"{}\"\nconnect_timeout = \"1s\"\nacquire_timeout = \"2s\"\n",
                server.url()
            ),
            "test.toml",
        )
        .unwrap()
        .build()
        .unwrap();
    let pool = registry.postgres("main").unwrap();
    drop(pool.get().await.unwrap());
    let addr = serve(registry).await;
    let (code, body) = get(addr, "/health/connections").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""status":"UP""#), "{body}");

    server.stop_immediate();
    // The idle connection is dead: a query on it fails and it is dropped
    // (its return may still be under way for a moment, counted in use);
    // then a new connect is refused and health turns DOWN.
    let down = Instant::now();
    let (code, body) = loop {
        if let Ok(c) = pool.get().await {
            let _ = c.query_one("SELECT 1", &[]).await;
        }
        let _ = pool.get().await;
        let (code, body) = get(addr, "/health/connections").await;
        if code == 503 || down.elapsed() > Duration::from_secs(5) {
            break (code, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, 503, "{body}");
    assert!(body.contains(r#""status":"DOWN""#), "{body}");
    assert!(body.contains("last_error"), "{body}");

    server.start_again();
    let back = Instant::now();
    loop {
        if let Ok(c) = pool.get().await {
            if c.query_one("SELECT 1", &[]).await.is_ok() {
                break;
            }
        }
        assert!(back.elapsed() < Duration::from_secs(20), "never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, body) = get(addr, "/health/connections").await;
    assert_eq!(code, 200, "{body}");
}

/// The rules block of docs/metrics.md.
fn example_rules() -> String {
    let doc = include_str!("../../docs/metrics.md");
    let after = doc
        .split("<!-- rules -->")
        .nth(1)
        .expect("the rules marker");
    let body = after.split("```yaml\n").nth(1).expect("a yaml block");
    body.split("```").next().unwrap().to_string()
}

fn promtool(args: &[&str]) -> String {
    let out = std::process::Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (Debian package `prometheus`; .ci/run installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{said}");
    said
}

#[test]
fn the_example_alert_rules_pass_promtool() {
    let dir = unipool_tests::temp_dir("rules");
    let rules = dir.join("rules.yml");
    std::fs::write(&rules, example_rules()).unwrap();
    let said = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(said.contains("5 rules found"), "{said}");

    // Series under which each alert must fire (and the pool that is fine
    // must not): exhausted with waiters, failing connects, timeouts, down.
    let pool = "db_client_connection_pool_name";
    let tests = format!(
        r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'db_client_connection_count{{{pool}="main",db_client_connection_state="used"}}'
        values: '10x10'
      - series: 'db_client_connection_max{{{pool}="main"}}'
        values: '10x10'
      - series: 'db_client_connection_pending_requests{{{pool}="main"}}'
        values: '3x10'
      - series: 'db_client_connection_count{{{pool}="ok",db_client_connection_state="used"}}'
        values: '1x10'
      - series: 'db_client_connection_max{{{pool}="ok"}}'
        values: '10x10'
      - series: 'db_client_connection_pending_requests{{{pool}="ok"}}'
        values: '0x10'
      - series: 'unipool_connect_failures_total{{{pool}="main"}}'
        values: '0+10x10'
      - series: 'unipool_connections_created_total{{{pool}="main"}}'
        values: '0+1x10'
      - series: 'db_client_connection_timeouts_total{{{pool}="main"}}'
        values: '0+2x10'
      - series: 'unipool_pool_up{{{pool}="main",unipool_pool_kind="postgres"}}'
        values: '0x10'
      - series: 'unipool_fleet_connections_planned{{server_address="db",server_port="5432",unipool_pool_kind="postgres"}}'
        values: '300x10'
      - series: 'unipool_fleet_connections_allowed{{server_address="db",server_port="5432",unipool_pool_kind="postgres"}}'
        values: '97x10'
      - series: 'unipool_fleet_connections_planned{{server_address="cache",server_port="6379",unipool_pool_kind="redis"}}'
        values: '20x10'
      - series: 'unipool_fleet_connections_allowed{{server_address="cache",server_port="6379",unipool_pool_kind="redis"}}'
        values: '10000x10'
    alert_rule_test:
      - eval_time: 9m
        alertname: UnipoolPoolExhausted
        exp_alerts:
          - exp_labels: {{severity: warning, {pool}: main}}
            exp_annotations:
              summary: "main: every connection in use and callers waiting"
      - eval_time: 9m
        alertname: UnipoolConnectErrors
        exp_alerts:
          - exp_labels: {{severity: warning, {pool}: main}}
            exp_annotations:
              summary: "main: more than 5% of connects fail"
      - eval_time: 9m
        alertname: UnipoolAcquireTimeouts
        exp_alerts:
          - exp_labels: {{severity: warning, {pool}: main}}
            exp_annotations:
              summary: "main: get() calls time out"
      - eval_time: 9m
        alertname: UnipoolPoolDown
        exp_alerts:
          - exp_labels: {{severity: critical, {pool}: main, unipool_pool_kind: postgres}}
            exp_annotations:
              summary: "main (postgres) cannot reach its server"
      - eval_time: 9m
        alertname: UnipoolFleetOverBudget
        exp_alerts:
          - exp_labels: {{severity: warning, server_address: db, server_port: "5432", unipool_pool_kind: postgres}}
            exp_annotations:
              summary: "the fleet may open 300 connections to db:5432, more than it allows (docs/scaling.md)"
"#
    );
    let test = dir.join("rules_test.yml");
    std::fs::write(&test, tests).unwrap();
    promtool(&["test", "rules", test.to_str().unwrap()]);
}

#[tokio::test]
async fn a_mongo_pool_shows_in_metrics_and_health_like_the_others() {
    require!("mongo");
    let server = unipool_tests::mongo_server::Secantus::start();
    let dead = unipool_tests::free_port();
    let registry = RegistryConfig::new()
        .toml(
            &format!(
                "[pools.docs]\nurl = \"{}\"\nmax_size = 3\n\
                 [pools.gone]\nurl = \"mongodb://127.0.0.1:{dead}/x\"\nacquire_timeout = \"1s\"\n\
                 heartbeat_interval = \"500ms\"\n",
                server.url()
            ),
            "test.toml",
        )
        .unwrap()
        .build()
        .unwrap();
    let docs = registry.mongo("docs").unwrap();
    let coll = docs
        .default_database()
        .await
        .unwrap()
        .collection::<mongodb::bson::Document>("t");
    coll.insert_one(mongodb::bson::doc! { "_id": 1 })
        .await
        .unwrap();
    for _ in 0..3 {
        coll.find_one(mongodb::bson::doc! { "_id": 1 })
            .await
            .unwrap()
            .unwrap();
    }
    // The driver checks a connection in on its own task, just after the
    // operation returns.
    let started = std::time::Instant::now();
    while docs.stats().in_use > 0 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(registry.mongo("gone").unwrap().ping().await.is_err());
    let addr = serve(registry).await;
    let (code, text) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    let docs = "{db_client_connection_pool_name=\"docs\"}";
    let count = |state: &str| {
        sample(
            &text,
            &format!(
                "db_client_connection_count{{db_client_connection_pool_name=\"docs\",db_client_connection_state=\"{state}\"}}"
            ),
        )
    };
    assert_eq!((count("idle"), count("used")), (1.0, 0.0));
    assert_eq!(
        sample(&text, &format!("db_client_connection_max{docs}")),
        3.0
    );
    assert_eq!(sample(&text, &format!("unipool_acquired_total{docs}")), 4.0);
    assert_eq!(sample(&text, &format!("unipool_reuse_ratio{docs}")), 0.75);
    assert_eq!(
        sample(
            &text,
            "db_client_connection_use_time_seconds_bucket{le=\"+Inf\",db_client_connection_pool_name=\"docs\"}"
        ),
        4.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("db_client_connection_create_time_seconds_count{docs}")
        ),
        1.0
    );
    promtool_check(&text);
    // The pool whose server is down makes the service unhealthy, with why.
    let (code, health) = get(addr, "/health/connections").await;
    assert_eq!(code, 503, "{health}");
    assert!(health.contains(r#""kind":"mongo""#), "{health}");
    assert!(health.to_lowercase().contains("refused"), "{health}");
}

#[tokio::test]
async fn the_fleet_budget_is_exported_after_prewarm() {
    require!("postgres");
    let registry = RegistryConfig::new()
        .toml(
            &format!(
                "[fleet]\nreplicas = 40\n[pools.main]\nurl = \"{}\"\nmax_size = 3\nserver_limit = 90\n",
                pg::url()
            ),
            "test.toml",
        )
        .unwrap()
        .build()
        .unwrap();
    assert!(registry.prewarm().await.is_ok());
    let server = unipool_tests::proxy::addr_of(&pg::url());
    let addr = serve(registry).await;
    let (code, text) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    let labels = format!(
        "{{server_address=\"{}\",server_port=\"{}\",unipool_pool_kind=\"postgres\"}}",
        server.ip(),
        server.port()
    );
    assert_eq!(
        sample(&text, &format!("unipool_fleet_connections_planned{labels}")),
        120.0
    );
    assert_eq!(
        sample(&text, &format!("unipool_fleet_connections_allowed{labels}")),
        90.0
    );
    promtool_check(&text);
    let (code, health) = get(addr, "/health/connections").await;
    // Degraded is still up: the service serves, its fleet is over budget.
    assert_eq!(code, 200, "{health}");
    assert!(health.contains("fleet budget exceeded"), "{health}");
}
