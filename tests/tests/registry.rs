//! The umbrella's Registry against real servers: PostgreSQL and Redis of the
//! machine, SQLite files, in-process HTTP, WebSocket and ZeroMQ peers, a
//! throwaway MongoDB-wire server. Configuration from the
//! environment (as a variable list), from TOML files, and from both.

use std::time::{Duration, Instant};

use pool_core::{HealthStatus, PoolError};
use pool_sql::{PgPoolExt, SqlitePoolExt};
use unipool::{Kind, Registry, RegistryConfig, RegistryError};
use unipool_tests::mongo_server::Secantus;
use unipool_tests::zmq_peer::{Echo, ZmqPeer};
use unipool_tests::{free_port, http_server, pg, redis_server, require, temp_dir, ws_server};

/// The in-process peers and the SQLite file of the every-kind tests.
struct Peers {
    http: http_server::TestServer,
    ws: ws_server::WsServer,
    zmq: ZmqPeer,
    mongo: Secantus,
    sqlite: String,
    _dir: std::path::PathBuf,
}

async fn peers(what: &str) -> Peers {
    let dir = temp_dir(what);
    Peers {
        http: http_server::start().await,
        ws: ws_server::start().await,
        zmq: ZmqPeer::echo(Echo::Rep, Duration::ZERO),
        mongo: Secantus::start(),
        sqlite: dir.join("a.db").display().to_string(),
        _dir: dir,
    }
}

/// The pools of every kind that exists, as variables: `max` is each pool's
/// `max_size`.
fn every_kind_vars(p: &Peers, max: usize) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for (name, url) in [
        ("MAIN", pg::url()),
        ("LOCAL", format!("sqlite://{}", p.sqlite)),
        ("CACHE", redis_server::url()),
        ("API", p.http.url("/")),
        ("FEED", p.ws.url("/feed")),
        ("DOCS", p.mongo.url()),
    ] {
        vars.push((format!("UNIPOOL_{name}_URL"), url));
        vars.push((format!("UNIPOOL_{name}_MAX_SIZE"), max.to_string()));
    }
    vars.push(("UNIPOOL_BUS_URL".into(), p.zmq.endpoint.clone()));
    vars.push(("UNIPOOL_BUS_KIND".into(), "zmq".into()));
    vars.push(("UNIPOOL_BUS_SOCKET".into(), "req".into()));
    vars.push(("UNIPOOL_BUS_MAX_SIZE".into(), max.to_string()));
    vars
}

/// The same pools as TOML.
fn every_kind_toml(p: &Peers, max: usize) -> String {
    format!(
        r#"
        [defaults]
        acquire_timeout = "5s"

        [pools.main]
        url = "{pg}"
        max_size = {max}
        recycle = "verified"

        [pools.local]
        url = "sqlite://{sqlite}"
        max_size = {max}
        busy_timeout = "2s"

        [pools.cache]
        url = "{redis}"
        max_size = {max}
        shared_connections = 1

        [pools.api]
        url = "{http}"
        max_size = {max}
        headers = {{ "X-From" = "registry-test" }}

        [pools.feed]
        url = "{ws}"
        max_size = {max}
        max_total = 20
        ping_timeout = "3s"

        [pools.docs]
        url = "{mongo}"
        max_size = {max}
        heartbeat_interval = "1s"
        app_name = "registry-test"

        [pools.bus]
        url = "{zmq}"
        kind = "zmq"
        socket = "req"
        max_size = {max}
        linger = "0s"
        "#,
        pg = pg::url(),
        redis = redis_server::url(),
        http = p.http.url("/"),
        ws = p.ws.url("/feed"),
        zmq = p.zmq.endpoint,
        mongo = p.mongo.url(),
        sqlite = p.sqlite,
    )
}

/// Uses every pool once and returns each one's `max_size` as the registry
/// built it (HTTP: requests in flight).
async fn use_every_kind(registry: &Registry) -> [usize; 7] {
    let main = registry.postgres("main").unwrap();
    let rows = main.query("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    let local = registry.sqlite("local").unwrap();
    local
        .execute("CREATE TABLE IF NOT EXISTS t (x)", Vec::<i64>::new())
        .await
        .unwrap();
    let cache = registry.redis("cache").await.unwrap();
    let pong: String = cache.cmd(&redis::cmd("PING")).await.unwrap();
    assert_eq!(pong, "PONG");
    let api = registry.http("api").unwrap();
    let resp = api.send(api.get("ok").unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bus = registry.zmq("bus").unwrap();
    assert_eq!(
        bus.request([b"over zmq".to_vec()]).await.unwrap(),
        [b"over zmq".to_vec()]
    );
    let feed = registry.ws("feed").unwrap();
    let echo = feed.send_recv("hello").await.unwrap();
    assert_eq!(echo, unipool::ws::Message::text("hello"));
    let docs = registry.mongo("docs").unwrap();
    let coll = docs
        .default_database()
        .await
        .unwrap()
        .collection::<mongodb::bson::Document>("registry");
    coll.insert_one(mongodb::bson::doc! { "x": 1 })
        .await
        .unwrap();
    // The same pool on every call: the use above shows in a second lookup.
    assert_eq!(registry.mongo("DOCS").unwrap().stats().acquired_total, 1);
    assert_eq!(registry.postgres("MAIN").unwrap().stats().acquired_total, 1);
    assert_eq!(registry.http("api").unwrap().stats().requests(), 1);
    [
        main.config().max_size,
        local.config().max_size,
        cache.exclusive().config().max_size,
        api.config().max_in_flight,
        registry.ws("feed").unwrap().pool().config().pool.max_size,
        registry.zmq("bus").unwrap().pool().config().pool.max_size,
        docs.config().pool.max_size,
    ]
}

#[tokio::test]
async fn every_kind_from_the_environment_only() {
    require!("postgres");
    require!("redis");
    require!("mongo");
    let p = peers("registry-env").await;
    let registry = RegistryConfig::new()
        .vars(every_kind_vars(&p, 3))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        registry.names(),
        ["api", "bus", "cache", "docs", "feed", "local", "main"]
    );
    assert_eq!(registry.kind("main").unwrap(), Kind::Postgres);
    assert_eq!(registry.kind("bus").unwrap(), Kind::Zmq);
    assert_eq!(registry.kind("cache").unwrap(), Kind::Redis);
    assert_eq!(registry.kind("feed").unwrap(), Kind::Ws);
    assert_eq!(registry.kind("docs").unwrap(), Kind::Mongo);
    assert_eq!(use_every_kind(&registry).await, [3, 3, 3, 3, 3, 3, 3]);
    assert!(registry
        .close_all(Duration::from_secs(5))
        .await
        .all_closed());
}

#[tokio::test]
async fn every_kind_from_a_file_only() {
    require!("postgres");
    require!("redis");
    require!("mongo");
    let p = peers("registry-file").await;
    let file = p._dir.join("pools.toml");
    std::fs::write(&file, every_kind_toml(&p, 4)).unwrap();
    let registry = RegistryConfig::new().file(&file).unwrap().build().unwrap();
    assert_eq!(
        registry.names(),
        ["api", "bus", "cache", "docs", "feed", "local", "main"]
    );
    assert_eq!(use_every_kind(&registry).await, [4, 4, 4, 4, 4, 4, 4]);
    let bus = registry.zmq("bus").unwrap();
    assert_eq!(bus.config().options.linger, Duration::ZERO);
    let bus = registry.zmq("bus").unwrap();
    assert_eq!(
        bus.request([b"over zmq".to_vec()]).await.unwrap(),
        [b"over zmq".to_vec()]
    );
    let feed = registry.ws("feed").unwrap();
    assert_eq!(feed.pool().config().max_total, 20);
    assert_eq!(feed.pool().config().ping_timeout, Duration::from_secs(3));
    let docs = registry.mongo("docs").unwrap().config().clone();
    assert_eq!(docs.heartbeat_interval, Some(Duration::from_secs(1)));
    assert_eq!(docs.app_name.as_deref(), Some("registry-test"));
    assert_eq!(docs.pool.acquire_timeout, Duration::from_secs(5));
    let main = registry.postgres("main").unwrap();
    assert_eq!(main.config().acquire_timeout, Duration::from_secs(5));
    assert_eq!(
        registry.http("api").unwrap().config().default_headers,
        [("X-From".to_string(), "registry-test".to_string())]
    );
    assert!(registry
        .close_all(Duration::from_secs(5))
        .await
        .all_closed());
}

#[tokio::test]
async fn every_kind_from_both_the_environment_wins() {
    require!("postgres");
    require!("redis");
    require!("mongo");
    let p = peers("registry-both").await;
    let text = every_kind_toml(&p, 4);
    let mut vars = every_kind_vars(&p, 6);
    // A default from the environment does not beat a pool's own setting in
    // the file; it beats the file's default.
    vars.push(("UNIPOOL_DEFAULT_ACQUIRE_TIMEOUT".into(), "7s".into()));
    vars.push(("UNIPOOL_DEFAULT_RECYCLE".into(), "clean".into()));
    // The environment applied first, the file second: the order of the calls
    // does not change who wins.
    let registry = RegistryConfig::new()
        .vars(vars)
        .unwrap()
        .toml(&text, "pools.toml")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(use_every_kind(&registry).await, [6, 6, 6, 6, 6, 6, 6]);
    let main = registry.postgres("main").unwrap();
    assert_eq!(main.config().acquire_timeout, Duration::from_secs(7));
    assert!(
        format!("{:?}", main.manager()).contains("Verified"),
        "the pool's own recycle (file) beats the environment's default"
    );
    assert!(registry
        .close_all(Duration::from_secs(5))
        .await
        .all_closed());
}

#[tokio::test]
async fn typed_access_names_the_unknown_pool_and_the_wrong_kind() {
    let registry = RegistryConfig::new()
        .vars([("UNIPOOL_NOTES_URL", "sqlite::memory:typed")])
        .unwrap()
        .build()
        .unwrap();
    let e = registry.postgres("notes").unwrap_err();
    assert!(matches!(e, RegistryError::WrongKind { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "pool `notes` is a sqlite pool, not a postgres pool"
    );
    let e = registry.sqlite("nots").unwrap_err();
    assert_eq!(e.to_string(), "no pool named `nots` (declared: notes)");
    let e = registry.redis("notes").await.unwrap_err();
    assert!(matches!(e, RegistryError::WrongKind { .. }), "{e:?}");
}

/// Each bad input → the error naming where it was set and the value.
#[tokio::test]
async fn every_bad_input_names_its_file_or_variable_and_value() {
    let file_cases: &[(&str, &str)] = &[
        (
            "[pools.main]\nurl = \"ftp://h/x\"\n",
            "svc.toml: [pools.main] url: no pool kind speaks `ftp:` URLs",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nkind = \"oracle\"\n",
            "svc.toml: [pools.main] kind: unknown kind \"oracle\"",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nkind = \"redis\"\n",
            "svc.toml: [pools.main] kind: kind \"redis\" does not match the URL's scheme `postgres:`",
        ),
        (
            "[pools.main]\nurl = \"http://[::1/x\"\n",
            "svc.toml: [pools.main] url: \"http://[::1/x\" is not a URL",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nmax_size = 0\n",
            "svc.toml: [pools.main] max_size: pool `main`: invalid `max_size`: must be at least 1",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nmax_size = -3\n",
            "svc.toml: [pools.main] max_size: invalid value \"-3\" for `max_size`",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nacquire_timeout = \"soon\"\n",
            "svc.toml: [pools.main] acquire_timeout: invalid value \"soon\" for `acquire_timeout`",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nmin_idle = 20\n",
            "svc.toml: [pools.main] min_idle: pool `main`: invalid `min_idle`: 20 is larger than max_size (10)",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nmax_sise = 3\n",
            "svc.toml: [pools.main] max_sise: unknown key `max_sise`",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\n[pools.Main]\nurl = \"postgres://h/db\"\n",
            "differs only in case from pool `",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\ncommand_timeout = \"1s\"\n",
            "svc.toml: [pools.main] command_timeout: `command_timeout` does not apply to a postgres pool (it applies to: redis)",
        ),
        (
            "[pools.api]\nurl = \"http://h/\"\nmin_idle = 2\n",
            "svc.toml: [pools.api] min_idle: `min_idle` does not apply to a http pool",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nrecycle = \"sometimes\"\n",
            "svc.toml: [pools.main] recycle: invalid value \"sometimes\" for `recycle`: expected `fast`, `verified` or `clean`",
        ),
        (
            "[pools.cache]\nurl = \"redis+cluster://:s3cret@h1:7000,h2:x\"\n",
            "invalid port \"x\" of seed node h2",
        ),
        (
            "[pools.cache]\nurl = \"redis+cluster://h1:7000/2\"\n",
            "a cluster has database 0 only",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\npgbouncer = \"maybe\"\n",
            "svc.toml: [pools.main] pgbouncer: invalid value \"maybe\" for `pgbouncer`: expected `true` or `false`",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db?pgbouncer=true\"\nrecycle = \"clean\"\n",
            "`recycle = clean` sends DISCARD ALL, which PgBouncer in transaction mode",
        ),
        (
            "[pools.main]\nurl = \"postgres://h/db?pgbouncer=sure\"\n",
            "pgbouncer=sure is not `true` or `false`",
        ),
        (
            "[pools.docs]\nurl = \"mongodb://h/db\"\nmax_lifetime = \"1h\"\n",
            "svc.toml: [pools.docs] max_lifetime: `max_lifetime` does not apply to a mongo pool",
        ),
        (
            "[pools.docs]\nurl = \"mongodb://u:s3cret@h1:27017,h2:port/db\"\n",
            "invalid MongoDB URI mongodb://u:***@h1:27017,h2:port/db",
        ),
        (
            "[pools.docs]\nurl = \"mongodb://h/db\"\nheartbeat_interval = \"100ms\"\n",
            "invalid value \"100ms\" for `heartbeat_interval`: the driver needs at least 500ms",
        ),
        (
            "[pools.feed]\nurl = \"wss://h/feed\"\nmax_size = 8\nmax_total = 4\n",
            "svc.toml: [pools.feed] max_total: pool `feed`: invalid `max_total`: 4 is below the per-key max_size (8)",
        ),
        (
            "[pools.bus]\nurl = \"tcp://127.0.0.1:5555\"\nkind = \"zmq\"\n",
            "pool `bus` is a zmq pool and needs `socket`",
        ),
        (
            "[pools.bus]\nurl = \"tcp://127.0.0.1:5555\"\nkind = \"zmq\"\nsocket = \"star\"\n",
            "svc.toml: [pools.bus] socket: invalid value \"star\" for `socket`",
        ),
        (
            "[pools.bus]\nurl = \"tcp://127.0.0.1:5555\"\n",
            "svc.toml: [pools.bus] url: no pool kind speaks `tcp:` URLs",
        ),
        (
            "[pools.main]\nmax_size = 3\n",
            "svc.toml: [pools.main] max_size: pool `main` has no url: set UNIPOOL_MAIN_URL or `url` under [pools.main]",
        ),
        (
            "[pools.user-db]\nurl = \"postgres://h/db\"\n",
            "svc.toml: [pools.user-db] : \"user-db\" is not a pool name",
        ),
        ("[pools.default]\nurl = \"postgres://h/db\"\n", "\"default\" is reserved"),
        (
            "[defaults]\nurl = \"postgres://h/db\"\n",
            "svc.toml: [defaults] url: `url` cannot be a default",
        ),
        ("[poolz.main]\nurl = 1\n", "svc.toml: [poolz] : unknown table"),
        (
            "[pools.main]\nurl = \"postgres://h/db\"\nmax_size = [1, 2]\n",
            "svc.toml: [pools.main] max_size: expected a string, a number or a boolean, found array",
        ),
        ("[pools.main\nurl = 1\n", "svc.toml: invalid TOML at line 1, column"),
    ];
    for (text, want) in file_cases {
        let got = RegistryConfig::new()
            .toml(text, "svc.toml")
            .and_then(RegistryConfig::build)
            .map(|_| ())
            .expect_err(text)
            .to_string();
        assert!(
            got.contains(want),
            "{text:?}\n  got:  {got}\n  want: {want}"
        );
    }
    let var_cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("UNIPOOL_MAIN_URL", "postgres://h/db"), ("UNIPOOL_MAIN_MAX_SIZ", "3")],
            "environment variable UNIPOOL_MAIN_MAX_SIZ: not a pool setting",
        ),
        (
            &[("UNIPOOL_MAIN_URL", "postgres://h/db"), ("UNIPOOL_MAIN_MAX_SIZE", "0")],
            "environment variable UNIPOOL_MAIN_MAX_SIZE: pool `main`: invalid `max_size`: must be at least 1",
        ),
        (
            &[("UNIPOOL_MAIN_URL", "postgres://h/db"), ("UNIPOOL_MAIN_IDLE_TIMEOUT", "10")],
            "environment variable UNIPOOL_MAIN_IDLE_TIMEOUT: invalid value \"10\" for `idle_timeout`",
        ),
        (
            &[("UNIPOOL_DEFAULT_MAX_SIZE", "many"), ("UNIPOOL_MAIN_URL", "postgres://h/db")],
            "environment variable UNIPOOL_DEFAULT_MAX_SIZE: invalid value \"many\" for `max_size`",
        ),
        (
            &[("UNIPOOL_DEFAULT_MAXSIZE", "3")],
            "environment variable UNIPOOL_DEFAULT_MAXSIZE: unknown key `MAXSIZE`",
        ),
        (
            &[("UNIPOOL_MIAN_MAX_SIZE", "3")],
            "environment variable UNIPOOL_MIAN_MAX_SIZE: pool `mian` has no url",
        ),
        (
            &[("UNIPOOL_MAIN_URL", "mysql://h/db")],
            "environment variable UNIPOOL_MAIN_URL: no pool kind speaks `mysql:` URLs",
        ),
        (
            &[("UNIPOOL_MAIN_URL", "postgres://h/db"), ("UNIPOOL_MAIN_MIN_IDLE", "11")],
            "environment variable UNIPOOL_MAIN_MIN_IDLE: pool `main`: invalid `min_idle`: 11 is larger than max_size (10)",
        ),
        (
            &[("UNIPOOL_API_URL", "http://h/"), ("UNIPOOL_API_HEADERS", "X-A 1")],
            "environment variable UNIPOOL_API_HEADERS: \"X-A 1\" is not `Name: value`",
        ),
    ];
    for (vars, want) in var_cases {
        let got = RegistryConfig::new()
            .vars(vars.iter().copied())
            .and_then(RegistryConfig::build)
            .map(|_| ())
            .expect_err(want)
            .to_string();
        assert!(
            got.contains(want),
            "{vars:?}\n  got:  {got}\n  want: {want}"
        );
    }
}

/// A password (and a bearer token) set anywhere never shows: not in errors,
/// `Debug`, health, stats, prewarm reports.
#[tokio::test]
async fn a_password_never_shows() {
    const SECRET: &str = "s3cretpw";
    let dead = free_port();
    let vars = [
        (
            "UNIPOOL_MAIN_URL".to_string(),
            format!("postgres://app:{SECRET}@127.0.0.1:{dead}/db"),
        ),
        ("UNIPOOL_MAIN_CONNECT_TIMEOUT".into(), "1s".into()),
        ("UNIPOOL_MAIN_ACQUIRE_TIMEOUT".into(), "2s".into()),
        (
            "UNIPOOL_CACHE_URL".into(),
            format!("redis://:{SECRET}@127.0.0.1:{dead}"),
        ),
        ("UNIPOOL_CACHE_CONNECT_TIMEOUT".into(), "1s".into()),
        (
            "UNIPOOL_API_URL".into(),
            format!("http://u:{SECRET}@127.0.0.1:{dead}/"),
        ),
        ("UNIPOOL_API_BEARER_TOKEN".into(), SECRET.into()),
        ("UNIPOOL_API_CONNECT_TIMEOUT".into(), "1s".into()),
        (
            "UNIPOOL_FEED_URL".into(),
            format!("ws://u:{SECRET}@127.0.0.1:{dead}/feed"),
        ),
        ("UNIPOOL_FEED_BEARER_TOKEN".into(), SECRET.into()),
        ("UNIPOOL_FEED_CONNECT_TIMEOUT".into(), "1s".into()),
        ("UNIPOOL_FEED_CONNECT_RETRIES".into(), "0".into()),
    ];
    let config = RegistryConfig::new().vars(vars.clone()).unwrap();
    let mut outputs = vec![format!("{config:?}")];
    let registry = config.build().unwrap();
    outputs.push(format!("{registry:?}"));
    let report = registry.prewarm().await;
    assert!(!report.is_ok());
    outputs.push(format!("{report}\n{report:?}"));
    let api = registry.http("api").unwrap();
    outputs.push(format!("{api:?}"));
    outputs.push(format!(
        "{:?}",
        api.send(api.get("x").unwrap()).await.unwrap_err()
    ));
    outputs.push(format!("{:?}", registry.postgres("main").unwrap()));
    let feed = registry.ws("feed").unwrap();
    outputs.push(format!("{feed:?}\n{}", feed.url()));
    outputs.push(format!("{:?}", feed.send_recv("x").await.unwrap_err()));
    outputs.push(format!(
        "{}",
        registry.postgres("main").unwrap().get().await.unwrap_err()
    ));
    outputs.push(format!("{}", registry.redis("cache").await.unwrap_err()));
    outputs.push(format!("{:?}", registry.redis("cache").await.unwrap_err()));
    let health = registry.health();
    outputs.push(format!("{health}\n{health:?}"));
    outputs.push(format!("{:?}", registry.stats()));
    // Errors that quote the URL or the token.
    for (k, v) in [
        ("UNIPOOL_MAIN_KIND", "redis"),
        ("UNIPOOL_MAIN_MAX_SIZE", "0"),
        ("UNIPOOL_API_MIN_IDLE", "1"),
    ] {
        let mut bad = vars.to_vec();
        bad.push((k.into(), v.into()));
        let e = RegistryConfig::new()
            .vars(bad)
            .and_then(RegistryConfig::build)
            .unwrap_err();
        outputs.push(format!("{e}\n{e:?}"));
    }
    let e = RegistryConfig::new()
        .vars([(
            "UNIPOOL_MAIN_URL",
            format!("postgres://app:{SECRET}@[bad/db"),
        )])
        .and_then(RegistryConfig::build)
        .unwrap_err();
    outputs.push(format!("{e}\n{e:?}"));
    let e = RegistryConfig::new()
        .toml(
            &format!("[pools.main]\nurl = \"postgres://app:{SECRET}@h/db\n"),
            "svc.toml",
        )
        .unwrap_err();
    outputs.push(format!("{e}\n{e:?}"));
    let e = registry
        .http_for(&format!("ftp://u:{SECRET}@h/"))
        .unwrap_err();
    outputs.push(format!("{e}\n{e:?}"));
    for out in &outputs {
        assert!(!out.contains(SECRET), "secret in: {out}");
    }
    // The outputs did say something about each pool.
    let all = outputs.join("\n");
    for needle in ["main", "cache", "api", "***", "cannot connect"] {
        assert!(all.contains(needle), "{needle} missing from the outputs");
    }
    registry.close_all(Duration::from_secs(2)).await;
}

/// One failing pool among healthy ones: `prewarm` says which and why, opens
/// `min_idle` in the others, and `health` agrees.
#[tokio::test]
async fn prewarm_reports_the_one_failing_pool() {
    let server = http_server::start().await;
    let dead = free_port();
    let dir = temp_dir("registry-prewarm");
    let registry = RegistryConfig::new()
        .toml(
            &format!(
                r#"
                [defaults]
                connect_timeout = "1s"
                acquire_timeout = "2s"
                [pools.local]
                url = "sqlite://{db}"
                min_idle = 3
                [pools.broken]
                url = "postgres://postgres@127.0.0.1:{dead}/test"
                min_idle = 2
                [pools.api]
                url = "{http}"
                "#,
                db = dir.join("w.db").display(),
                http = server.url("/"),
            ),
            "prewarm.toml",
        )
        .unwrap()
        .build()
        .unwrap();
    let start = Instant::now();
    let report = registry.prewarm().await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(!report.is_ok());
    let failures: Vec<(&str, &str)> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{report}");
    assert_eq!(failures[0].0, "broken");
    assert!(failures[0].1.contains("refused"), "{}", failures[0].1);
    let local = report.pools.iter().find(|p| p.name == "local").unwrap();
    assert_eq!(local.result, Ok(3));
    assert_eq!(registry.sqlite("local").unwrap().stats().idle, 3);
    let health = registry.health();
    assert!(
        matches!(health.status, HealthStatus::Unhealthy { .. }),
        "{health}"
    );
    assert!(
        health
            .status
            .reason()
            .unwrap()
            .starts_with("broken: cannot connect"),
        "{health}"
    );
    let broken = health.pools.iter().find(|p| p.name == "broken").unwrap();
    assert!(broken.last_error.as_deref().unwrap().contains("refused"));
    assert!(broken.error_rate > 0.0);
    let local = health.pools.iter().find(|p| p.name == "local").unwrap();
    assert_eq!(local.status, HealthStatus::Healthy);
    assert_eq!(local.error_rate, 0.0);
    registry.close_all(Duration::from_secs(2)).await;
}

/// `close_all` while every connection is busy: each holder finishes its work
/// on its connection, new `get()`s fail with `Closed` at once, and it returns
/// when the last connection is back — or at its deadline, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_all_under_load_takes_no_connection_from_its_holder() {
    let server = http_server::start().await;
    let dir = temp_dir("registry-close");
    let registry = RegistryConfig::new()
        .vars([
            (
                "UNIPOOL_LOCAL_URL".to_string(),
                format!("sqlite://{}", dir.join("c.db").display()),
            ),
            ("UNIPOOL_LOCAL_MAX_SIZE".into(), "4".into()),
            ("UNIPOOL_API_URL".into(), server.url("/")),
        ])
        .unwrap()
        .build()
        .unwrap();
    let local = registry.sqlite("local").unwrap();
    local
        .execute("CREATE TABLE IF NOT EXISTS t (x)", Vec::<i64>::new())
        .await
        .unwrap();
    let (started_tx, mut started_rx) = tokio::sync::mpsc::channel(16);
    let mut tasks = Vec::new();
    for i in 0..4i64 {
        let local = local.clone();
        let started = started_tx.clone();
        tasks.push(tokio::spawn(async move {
            let conn = local.get().await.unwrap();
            started.send(()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Still this holder's connection, still usable, after close_all began.
            conn.call(move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [i])?))
                .await
                .unwrap();
        }));
    }
    let api = registry.http("api").unwrap();
    let request = tokio::spawn({
        let api = api.clone();
        async move {
            api.send(api.get("slow/300").unwrap())
                .await
                .map(|r| r.status())
        }
    });
    for _ in 0..4 {
        started_rx.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let closing = tokio::spawn({
        let registry = registry.clone();
        async move { registry.close_all(Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e = local.get().await.unwrap_err();
    assert!(matches!(e, PoolError::Closed), "{e:?}");
    let report = closing.await.unwrap();
    assert!(report.all_closed(), "{report:?}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(request.await.unwrap().unwrap(), 200);
    assert!(registry
        .health()
        .status
        .reason()
        .unwrap()
        .contains("closed"));

    // A holder past the deadline: close_all returns at the deadline and says
    // the pool did not close.
    let registry = RegistryConfig::new()
        .vars([("UNIPOOL_HELD_URL", "sqlite::memory:held")])
        .unwrap()
        .build()
        .unwrap();
    let held = registry.sqlite("held").unwrap().get_owned().await.unwrap();
    let start = Instant::now();
    let report = registry.close_all(Duration::from_millis(300)).await;
    let took = start.elapsed();
    assert!(!report.all_closed());
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    drop(held);
}

/// `http_for`: the declared service whose base URL covers the URL, else one
/// shared client, the same on every lookup.
#[tokio::test]
async fn http_for_gives_the_same_client_for_a_host() {
    let server = http_server::start().await;
    let other = http_server::start().await;
    let registry = RegistryConfig::new()
        .vars([
            ("UNIPOOL_API_URL", server.url("/v1/")),
            ("UNIPOOL_ROOT_URL", server.url("/")),
            ("UNIPOOL_DEFAULT_MAX_SIZE", "12".into()),
        ])
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        registry.http_for(&server.url("/v1/items")).unwrap().name(),
        "api"
    );
    assert_eq!(registry.http_for(&server.url("/v1")).unwrap().name(), "api");
    assert_eq!(
        registry.http_for(&server.url("/v10/x")).unwrap().name(),
        "root"
    );
    assert_eq!(
        registry.http_for(&server.url("/ok")).unwrap().name(),
        "root"
    );
    // Undeclared host: one shared client, created once.
    let a = registry.http_for(&other.url("/ok")).unwrap();
    let b = registry.http_for(&other.url("/slow/1")).unwrap();
    assert_eq!(a.name(), unipool::DEFAULT_HTTP_NAME);
    assert_eq!(a.config().max_in_flight, 12, "the defaults apply to it");
    a.send(a.get(&other.url("/ok")).unwrap()).await.unwrap();
    b.send(b.get(&other.url("/ok")).unwrap()).await.unwrap();
    let stats = registry.http_for(&other.url("/")).unwrap().stats();
    assert_eq!(stats.requests(), 2, "both lookups used one client");
    assert_eq!(stats.connections_opened(), 1, "and one connection");
    assert_eq!(other.seen.connections(), 1);
    assert!(registry
        .stats()
        .iter()
        .any(|s| s.name == unipool::DEFAULT_HTTP_NAME));
    let e = registry.http_for("not a url").unwrap_err();
    assert!(matches!(e, RegistryError::BadUrl { .. }), "{e:?}");
    registry.close_all(Duration::from_secs(2)).await;
    let e = RegistryConfig::new().build().unwrap();
    e.close_all(Duration::from_secs(1)).await;
    assert!(matches!(
        e.http_for(&other.url("/")),
        Err(RegistryError::Closed { .. })
    ));
}

/// SIGTERM to this process: `shutdown_on_signal` closes every pool and
/// resolves with the report.
#[tokio::test]
async fn shutdown_on_signal_closes_everything_on_sigterm() {
    let registry = RegistryConfig::new()
        .vars([("UNIPOOL_LOCAL_URL", "sqlite::memory:signal")])
        .unwrap()
        .build()
        .unwrap();
    let local = registry.sqlite("local").unwrap();
    drop(local.get().await.unwrap());
    let shutdown = registry.shutdown_on_signal(Duration::from_secs(2)).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let report = tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("the signal reached the handler");
    assert!(report.all_closed());
    assert!(local.is_closed());
    assert!(matches!(local.get().await, Err(PoolError::Closed)));
}

/// A Redis pool whose server is down at build: the registry builds, reports
/// it, and serves it once the server is up, with no manual step.
#[tokio::test]
async fn a_redis_pool_down_at_build_connects_once_the_server_is_up() {
    require!("redis");
    let mut server = redis_server::ThrowawayRedis::start(None);
    server.kill();
    let port = server.port;
    let registry = RegistryConfig::new()
        .vars([
            (
                "UNIPOOL_CACHE_URL".to_string(),
                format!("redis://127.0.0.1:{port}"),
            ),
            ("UNIPOOL_CACHE_CONNECT_TIMEOUT".into(), "1s".into()),
        ])
        .unwrap()
        .build()
        .unwrap();
    assert!(matches!(
        registry.health().status,
        HealthStatus::Degraded { .. }
    ));
    let e = registry.redis("cache").await.unwrap_err();
    assert!(e.to_string().contains("pool `cache` (redis)"), "{e}");
    assert!(matches!(
        registry.health().status,
        HealthStatus::Unhealthy { .. }
    ));
    server.start_again();
    let cache = registry.redis("cache").await.unwrap();
    let pong: String = cache.cmd(&redis::cmd("PING")).await.unwrap();
    assert_eq!(pong, "PONG");
    assert_eq!(registry.health().status, HealthStatus::Healthy);
    assert_eq!(registry.pools().len(), 1);
    registry.close_all(Duration::from_secs(2)).await;
}

/// A WebSocket service's handshake headers come from the registry: with its
/// bearer token the private route answers, without it the 401 is typed.
#[tokio::test]
async fn a_ws_service_sends_its_configured_credentials() {
    let server = ws_server::start().await;
    let registry = RegistryConfig::new()
        .vars([
            ("UNIPOOL_PRIVATE_URL", server.url("/private")),
            ("UNIPOOL_PRIVATE_BEARER_TOKEN", "let-me-in".into()),
            ("UNIPOOL_ANON_URL", server.url("/private")),
        ])
        .unwrap()
        .build()
        .unwrap();
    let private = registry.ws("private").unwrap();
    assert_eq!(
        private.send_recv("hi").await.unwrap(),
        unipool::ws::Message::text("hi")
    );
    let e = registry
        .ws("anon")
        .unwrap()
        .send_recv("hi")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(registry
        .prewarm()
        .await
        .failures()
        .any(|(name, _)| name == "anon"));
}

/// `Registry::from_env`: the file named by `UNIPOOL_CONFIG`, then the
/// process's `UNIPOOL_` variables over it (each test runs in its own process
/// under nextest, so setting variables here touches no other test).
#[tokio::test]
async fn from_env_reads_the_config_file_then_the_variables() {
    let dir = temp_dir("registry-from-env");
    let file = dir.join("svc.toml");
    std::fs::write(
        &file,
        "[pools.jobs]\nurl = \"sqlite::memory:jobs\"\nmax_size = 2\nmin_idle = 1\n",
    )
    .unwrap();
    std::env::set_var("UNIPOOL_CONFIG", &file);
    std::env::set_var("UNIPOOL_JOBS_MAX_SIZE", "5");
    let registry = Registry::from_env().unwrap();
    let jobs = registry.sqlite("jobs").unwrap();
    assert_eq!((jobs.config().max_size, jobs.config().min_idle), (5, 1));
    std::env::set_var("UNIPOOL_JOBS_MAX_SIZE", "five");
    let e = Registry::from_env().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("environment variable UNIPOOL_JOBS_MAX_SIZE: invalid value \"five\""),
        "{e}"
    );
    std::env::set_var("UNIPOOL_CONFIG", dir.join("missing.toml"));
    let e = Registry::from_env().unwrap_err();
    assert!(e.to_string().contains("missing.toml: No such file"), "{e}");
    std::env::remove_var("UNIPOOL_CONFIG");
    std::env::remove_var("UNIPOOL_JOBS_MAX_SIZE");
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("url".to_string()),
            Just("kind".to_string()),
            Just("max_size".to_string()),
            Just("min_idle".to_string()),
            Just("idle_timeout".to_string()),
            Just("headers".to_string()),
            Just("recycle".to_string()),
            Just("command_timeout".to_string()),
            "[a-zA-Z_]{1,12}",
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("postgres://u:pw@127.0.0.1:1/db".to_string()),
            Just("sqlite::memory:p".to_string()),
            Just("http://127.0.0.1:1/".to_string()),
            Just("redis://127.0.0.1:1".to_string()),
            Just("zmq".to_string()),
            Just("off".to_string()),
            "-?[0-9]{1,6}",
            "[0-9]{1,4}(ms|s|m|h|x)?",
            "\\PC{0,16}",
            ".{0,24}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        /// Random variables: a registry or an error, never a panic.
        #[test]
        fn random_variables_never_panic(
            vars in proptest::collection::vec(("[A-Z]{1,6}", key(), value()), 0..6),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _guard = rt.enter();
            let vars: Vec<(String, String)> = vars
                .into_iter()
                .map(|(name, key, value)| (format!("UNIPOOL_{name}_{}", key.to_uppercase()), value))
                .collect();
            let _ = RegistryConfig::new().vars(vars).and_then(RegistryConfig::build);
        }

        /// Random TOML: a registry or an error, never a panic.
        #[test]
        fn random_files_never_panic(
            pools in proptest::collection::vec(
                ("[a-zA-Z][a-zA-Z0-9_-]{0,6}", proptest::collection::vec((key(), value()), 0..5)),
                0..4,
            ),
            junk in ".{0,12}",
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _guard = rt.enter();
            let mut text = String::new();
            for (name, settings) in pools {
                text.push_str(&format!("[pools.\"{name}\"]\n"));
                for (k, v) in settings {
                    text.push_str(&format!("{k} = {}\n", toml_string(&v)));
                }
            }
            let _ = RegistryConfig::new().toml(&text, "p.toml").and_then(RegistryConfig::build);
            text.push_str(&junk);
            let _ = RegistryConfig::new().toml(&text, "p.toml").and_then(RegistryConfig::build);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// Any text given to `http_for`: a pool or an error, never a panic.
        #[test]
        fn http_for_never_panics(url in prop_oneof![
            ".{0,40}",
            "(http|https|ftp)://[a-z0-9.:@/\\[\\]%?#-]{0,30}",
        ]) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _guard = rt.enter();
            let registry = RegistryConfig::new()
                .vars([("UNIPOOL_API_URL", "http://127.0.0.1:1/v1/")])
                .unwrap()
                .build()
                .unwrap();
            let _ = registry.http_for(&url);
        }
    }

    fn toml_string(v: &str) -> String {
        let escaped: String = v
            .chars()
            .flat_map(|c| match c {
                '"' => "\\\"".chars().collect::<Vec<_>>(),
                '\\' => "\\\\".chars().collect(),
                c if c.is_control() => format!("\\u{:04X}", c as u32 & 0xFFFF).chars().collect(),
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
}

/// What the machine's PostgreSQL allows the fleet, read the way the
/// registry does not (psql-free: a plain connection).
async fn pg_allowed() -> (usize, usize) {
    let (client, conn) = tokio_postgres::connect(&pg::url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let show = |rows: Vec<tokio_postgres::SimpleQueryMessage>| -> usize {
        rows.into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap()
            .parse()
            .unwrap()
    };
    let max = show(client.simple_query("SHOW max_connections").await.unwrap());
    let reserved = show(
        client
            .simple_query("SHOW superuser_reserved_connections")
            .await
            .unwrap(),
    );
    (max, reserved)
}

#[tokio::test]
async fn the_fleet_budget_names_the_numbers_when_replicas_overcommit_a_server() {
    require!("postgres");
    require!("redis");
    let (max, reserved) = pg_allowed().await;
    let allowed = max - reserved;
    let registry = RegistryConfig::new()
        .toml(
            &format!(
                "[fleet]\nreplicas = 20\n\
                 [pools.main]\nurl = \"{pg}\"\nmax_size = 10\n\
                 [pools.jobs]\nurl = \"{pg}\"\nmax_size = 5\n\
                 [pools.cache]\nurl = \"{redis}\"\nmax_size = 4\nshared_connections = 1\nserver_limit = 50\n",
                pg = pg::url(),
                redis = redis_server::url()
            ),
            "fleet.toml",
        )
        .unwrap()
        .build()
        .unwrap();
    assert!(registry.budget().is_empty(), "read at prewarm");
    let report = registry.prewarm().await;
    assert!(report.is_ok(), "{report}");
    let over: Vec<String> = report.over_budget().map(|b| b.to_string()).collect();
    let server = unipool_tests::proxy::addr_of(&pg::url()).to_string();
    let redis = unipool_tests::proxy::addr_of(&redis_server::url()).to_string();
    assert_eq!(
        over,
        [
            format!(
                "{redis} (redis): 20 replicas × 5 connections (cache 5) = 100 > 50 allowed \
                 (server_limit (configured)): 50 over"
            ),
            format!(
                "{server} (postgres): 20 replicas × 15 connections (jobs 5, main 10) = 300 > \
                 {allowed} allowed (max_connections {max} − superuser_reserved_connections \
                 {reserved}): {} over",
                300 - allowed
            ),
        ]
    );
    assert!(report.to_string().contains("OVER BUDGET"), "{report}");
    let health = registry.health();
    assert!(
        matches!(&health.status, HealthStatus::Degraded { reason } if reason.contains("fleet budget exceeded")),
        "{health}"
    );
    for p in &health.pools {
        assert!(
            matches!(&p.status, HealthStatus::Degraded { reason } if reason.starts_with("fleet budget exceeded")),
            "{}: {:?}",
            p.name,
            p.status
        );
    }
    registry.close_all(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_fleet_budget_is_silent_within_budget() {
    require!("postgres");
    require!("redis");
    let registry = RegistryConfig::new()
        .vars([
            ("UNIPOOL_REPLICAS", "2"),
            ("UNIPOOL_MAIN_URL", pg::url().as_str()),
            ("UNIPOOL_MAIN_MAX_SIZE", "10"),
            ("UNIPOOL_CACHE_URL", redis_server::url().as_str()),
            ("UNIPOOL_CACHE_MAX_SIZE", "2"),
        ])
        .unwrap()
        .build()
        .unwrap();
    let report = registry.prewarm().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.over_budget().count(), 0, "{report}");
    let budget = registry.budget();
    assert_eq!(budget.len(), 2);
    let redis = budget.iter().find(|b| b.kind == Kind::Redis).unwrap();
    let allowed = redis.allowed.as_ref().unwrap();
    assert!(allowed.source.starts_with("maxclients "), "{allowed:?}");
    let pg = budget.iter().find(|b| b.kind == Kind::Postgres).unwrap();
    assert_eq!((pg.replicas, pg.planned()), (2, 20));
    assert!(pg.to_string().contains("= 20 ≤ "), "{pg}");
    assert_eq!(registry.health().status, HealthStatus::Healthy);
    registry.close_all(Duration::from_secs(5)).await;
    // A bad count names its variable.
    let e = RegistryConfig::new()
        .vars([("UNIPOOL_REPLICAS", "0")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("UNIPOOL_REPLICAS") && e.contains("expected an integer ≥ 1"),
        "{e}"
    );
}
