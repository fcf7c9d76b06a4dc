//! Bad input at every place a user's text enters (issue 24): the URL parsers
//! of every protocol crate, each engine knob set through the environment with
//! any value, oversized values and non-UTF-8 variables. Never a panic; a
//! rejection is a typed error that names the variable or the URL (redacted),
//! and no password shows in it. (Random TOML files and variables in general:
//! `registry::property`.)

use std::time::Duration;

use proptest::prelude::*;
use unipool::RegistryConfig;

/// The password every generated URL carries; no error may show it.
const SECRET: &str = "pw_SECRET_9";

/// URL-ish text: a scheme, maybe credentials, a host that resolves without
/// DNS (loopback, a refused port) or does not parse, and junk.
fn url(schemes: &'static [&'static str]) -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        proptest::sample::select(schemes).prop_map(str::to_string),
        "[a-z+]{0,8}",
    ];
    let auth = prop_oneof![
        Just(String::new()),
        Just(format!("u:{SECRET}@")),
        Just(format!(":{SECRET}@")),
    ];
    let host = prop_oneof![
        Just("127.0.0.1:1".to_string()),
        Just("[::1]:1".to_string()),
        Just("127.0.0.1:99999".to_string()),
        Just("127.0.0.1:x".to_string()),
        Just(String::new()),
        "[0-9.:\\[\\]%@]{0,12}",
    ];
    let rest = prop_oneof![Just(String::new()), "[/?#=&%a-z0-9]{0,16}", "\\PC{0,12}"];
    prop_oneof![
        (scheme, auth, host, rest).prop_map(|(s, a, h, r)| format!("{s}://{a}{h}{r}")),
        "\\PC{0,40}",
        ".{0,40}",
    ]
}

fn assert_clean(what: &str, input: &str, error: &str) {
    assert!(
        !error.contains(SECRET),
        "{what}({input:?}) showed the password: {error}"
    );
    assert!(!error.is_empty(), "{what}({input:?}): an empty error");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Engine knobs and a value of every shape.
fn knob() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(
        &[
            "MAX_SIZE",
            "MIN_IDLE",
            "ACQUIRE_TIMEOUT",
            "CONNECT_TIMEOUT",
            "IDLE_TIMEOUT",
            "MAX_LIFETIME",
            "REAP_INTERVAL",
            "CONNECT_RETRIES",
            "COMMAND_TIMEOUT",
            "RECYCLE",
        ][..],
    )
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,25}",
        "[0-9]{1,6}(ns|us|ms|s|m|h|d|x| s)?",
        "\\PC{0,24}",
        ".{0,24}",
        Just(String::new()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999h".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// PostgreSQL and SQLite URLs: a manager or a typed error, no password.
    #[test]
    fn sql_urls(u in url(&["postgres", "postgresql", "sqlite"])) {
        if let Err(e) = pool_sql::PgManager::from_url(&u) {
            assert_clean("PgManager::from_url", &u, &e.to_string());
        }
        if let Err(e) = pool_sql::SqliteManager::from_url(&u) {
            assert_clean("SqliteManager::from_url", &u, &e.to_string());
        }
    }

    /// Redis URLs.
    #[test]
    fn redis_urls(u in url(&["redis", "rediss", "redis+unix", "unix"])) {
        let made = pool_redis::RedisManager::new(&u, Duration::from_millis(100), Duration::from_millis(100), None);
        if let Err(e) = made {
            assert_clean("RedisManager::new", &u, &e.to_string());
        }
    }

    /// WebSocket URLs, through `get` (a URL that parses is connected to:
    /// hosts are loopback or unparsable, so that is refused at once).
    #[test]
    fn ws_urls(u in url(&["ws", "wss", "http"])) {
        let rt = runtime();
        let mut config = pool_ws::WsConfig::default();
        config.pool.connect_timeout = Duration::from_millis(200);
        config.pool.acquire_timeout = Duration::from_millis(300);
        config.pool.connect_retries = 0;
        let pool = rt.block_on(async { pool_ws::WsPool::new(config) }).unwrap();
        let got = rt.block_on(pool.get(&u));
        if let Err(e) = got {
            assert_clean("WsPool::get", &u, &e.to_string());
        }
    }

    /// ZeroMQ endpoints, through `get`.
    #[test]
    fn zmq_endpoints(u in url(&["tcp", "ipc", "inproc", "udp"])) {
        let rt = runtime();
        let mut config = pool_zmq::ZmqConfig::default();
        config.pool.connect_timeout = Duration::from_millis(200);
        config.pool.acquire_timeout = Duration::from_millis(300);
        let pool = rt.block_on(async { pool_zmq::ZmqPool::new(config) }).unwrap();
        let cfg = pool_zmq::SocketConfig::connect(pool_zmq::SocketKind::Req, u.clone());
        if let Err(e) = rt.block_on(pool.get(&cfg)) {
            assert_clean("ZmqPool::get", &u, &e.to_string());
        }
    }

    /// Every engine knob with any value, set through the environment: a
    /// registry, or an error naming the variable (and not the password of the
    /// pool's URL).
    #[test]
    fn knobs_with_any_value(knob in knob(), value in any_value()) {
        let rt = runtime();
        let _guard = rt.enter();
        let var = format!("UNIPOOL_MAIN_{knob}");
        let url = format!("postgres://u:{SECRET}@127.0.0.1:1/db");
        let got = RegistryConfig::new()
            .vars([("UNIPOOL_MAIN_URL", url.as_str()), (var.as_str(), value.as_str())])
            .and_then(RegistryConfig::build);
        if let Err(e) = got {
            let e = e.to_string();
            assert_clean("knob", &value, &e);
            prop_assert!(e.contains(&var), "{var}={value:?}: the error does not name it: {e}");
        }
    }
}

/// A megabyte in a URL and in a knob: an error naming the variable, quickly,
/// and not a megabyte long.
#[test]
fn oversized_values_are_refused_by_name() {
    let rt = runtime();
    let _guard = rt.enter();
    let huge = "9".repeat(1 << 20);
    for (var, value) in [
        ("UNIPOOL_MAIN_MAX_SIZE", huge.clone()),
        ("UNIPOOL_MAIN_ACQUIRE_TIMEOUT", format!("{huge}s")),
        ("UNIPOOL_MAIN_URL", format!("nope://u:{SECRET}@{huge}/db")),
    ] {
        let mut vars = vec![(
            "UNIPOOL_MAIN_URL".to_string(),
            "postgres://127.0.0.1:1/db".to_string(),
        )];
        vars.retain(|(k, _)| k != var);
        vars.push((var.to_string(), value));
        let e = RegistryConfig::new()
            .vars(vars)
            .and_then(RegistryConfig::build)
            .map(|_| ())
            .expect_err(var)
            .to_string();
        assert!(e.contains(var), "{var}: {}", &e[..e.len().min(200)]);
        assert!(!e.contains(SECRET));
        assert!(
            e.len() < 4096,
            "{var}: a {}-byte error: {}",
            e.len(),
            &e[..e.len().min(300)]
        );
    }
}

/// A `UNIPOOL_` variable that is not UTF-8: an error naming it.
#[test]
fn a_non_utf8_variable_is_refused_by_name() {
    use std::os::unix::ffi::OsStrExt;
    // This test's process is its own (nextest runs one test per process), so
    // the variable reaches no other test.
    std::env::set_var(
        "UNIPOOL_MAIN_URL",
        std::ffi::OsStr::from_bytes(b"postgres://h/\xff\xfe"),
    );
    let e = RegistryConfig::new()
        .env()
        .map(|_| ())
        .expect_err("non-UTF-8");
    std::env::remove_var("UNIPOOL_MAIN_URL");
    let e = e.to_string();
    assert!(e.contains("UNIPOOL_MAIN_URL") && e.contains("UTF-8"), "{e}");
}
