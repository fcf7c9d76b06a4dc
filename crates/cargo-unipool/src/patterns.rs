//! What the audit looks for: calls that create a client, a connection or a
//! pool, each with what unipool offers instead. One table; the scanner
//! matches call paths against it after resolving the file's `use` items.

/// One kind of creation the audit reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// A stable rule id (SARIF `ruleId`, JSON `rule`).
    pub id: &'static str,
    /// What the call creates, for humans.
    pub what: &'static str,
    /// The unipool crate and call that replaces it.
    pub replacement: &'static str,
    /// A pool built per call is worse than a client: it holds many
    /// connections and a reaper.
    pub is_pool: bool,
}

const HTTP: &str = "pool-http: one `HttpPool` per service (`HttpPool::new` at startup, or `HttpRegistry::service` / `Registry::http`)";
const PG: &str = "pool-sql: a `PgPool` built once (`PgManager::from_url` + `ConnectionPool::builder()`, or `Registry::postgres`)";
const SQLITE: &str =
    "pool-sql: a `SqlitePool` built once (`SqliteManager::from_url`, or `Registry::sqlite`)";
const REDIS: &str = "pool-redis: one `RedisPool` (`RedisPool::connect` at startup; `pool.cmd(..)` or `pool.lease()`)";
const WS: &str =
    "pool-ws: one `WsPool` (`pool.get(url)` leases an open WebSocket, or `Registry::ws`)";
const ZMQ_CTX: &str = "pool-zmq: one `ZmqPool` (one shared context; `pool.request(&config, msg)`)";
const ZMQ_SOCKET: &str =
    "pool-zmq: `ZmqPool::get(&SocketConfig)` / `request` reuse sockets per configuration";
const MONGO: &str =
    "pool-mongo: one `MongoPool` per URI (`MongoPool::new` at startup, or `Registry::mongo`)";
const POOL: &str = "build the pool once at startup and share it (unipool's `Registry` builds every pool from one config)";

/// Call paths (as written after resolving `use` items) and what they create.
/// A path matches when the call's resolved path ends with it.
pub const CALLS: &[(&[&str], Pattern)] = &[
    (
        &["reqwest", "Client", "new"],
        p("http-client", "a reqwest::Client", HTTP),
    ),
    (
        &["reqwest", "Client", "builder"],
        p("http-client", "a reqwest::Client (builder)", HTTP),
    ),
    (
        &["reqwest", "ClientBuilder", "new"],
        p("http-client", "a reqwest::Client (builder)", HTTP),
    ),
    (
        &["reqwest", "blocking", "Client", "new"],
        p("http-client", "a reqwest::blocking::Client", HTTP),
    ),
    (
        &["reqwest", "blocking", "Client", "builder"],
        p("http-client", "a reqwest::blocking::Client (builder)", HTTP),
    ),
    (
        &["tokio_postgres", "connect"],
        p(
            "pg-connect",
            "a PostgreSQL connection (tokio_postgres::connect)",
            PG,
        ),
    ),
    (
        &["postgres", "Client", "connect"],
        p(
            "pg-connect",
            "a PostgreSQL connection (postgres::Client::connect)",
            PG,
        ),
    ),
    (
        &["sqlx", "PgConnection", "connect"],
        p(
            "pg-connect",
            "a PostgreSQL connection (sqlx::PgConnection::connect)",
            PG,
        ),
    ),
    (
        &["sqlx", "postgres", "PgConnection", "connect"],
        p(
            "pg-connect",
            "a PostgreSQL connection (sqlx::PgConnection::connect)",
            PG,
        ),
    ),
    (
        &["sqlx", "SqliteConnection", "connect"],
        p(
            "sqlite-open",
            "a SQLite connection (sqlx::SqliteConnection::connect)",
            SQLITE,
        ),
    ),
    (
        &["rusqlite", "Connection", "open"],
        p(
            "sqlite-open",
            "a SQLite connection (rusqlite::Connection::open)",
            SQLITE,
        ),
    ),
    (
        &["rusqlite", "Connection", "open_in_memory"],
        p(
            "sqlite-open",
            "a SQLite connection (rusqlite::Connection::open_in_memory)",
            SQLITE,
        ),
    ),
    (
        &["rusqlite", "Connection", "open_with_flags"],
        p(
            "sqlite-open",
            "a SQLite connection (rusqlite::Connection::open_with_flags)",
            SQLITE,
        ),
    ),
    (
        &["tokio_tungstenite", "connect_async"],
        p(
            "ws-connect",
            "a WebSocket connection (tokio_tungstenite::connect_async)",
            WS,
        ),
    ),
    (
        &["tokio_tungstenite", "connect_async_with_config"],
        p(
            "ws-connect",
            "a WebSocket connection (tokio_tungstenite::connect_async_with_config)",
            WS,
        ),
    ),
    (
        &["tokio_tungstenite", "connect_async_tls_with_config"],
        p(
            "ws-connect",
            "a WebSocket connection (tokio_tungstenite::connect_async_tls_with_config)",
            WS,
        ),
    ),
    (
        &["zmq", "Context", "new"],
        p(
            "zmq-context",
            "a ZeroMQ context (zmq::Context::new)",
            ZMQ_CTX,
        ),
    ),
    (
        &["mongodb", "Client", "with_uri_str"],
        p(
            "mongo-client",
            "a MongoDB client (mongodb::Client::with_uri_str)",
            MONGO,
        ),
    ),
    (
        &["mongodb", "Client", "with_options"],
        p(
            "mongo-client",
            "a MongoDB client (mongodb::Client::with_options)",
            MONGO,
        ),
    ),
    (
        &["bb8", "Pool", "builder"],
        p("pool-per-call", "a bb8 pool (bb8::Pool::builder)", POOL),
    ),
    (
        &["r2d2", "Pool", "builder"],
        p("pool-per-call", "an r2d2 pool (r2d2::Pool::builder)", POOL),
    ),
    (
        &["deadpool_postgres", "Config", "create_pool"],
        p(
            "pool-per-call",
            "a deadpool-postgres pool (Config::create_pool)",
            POOL,
        ),
    ),
    (
        &["deadpool_redis", "Config", "create_pool"],
        p(
            "pool-per-call",
            "a deadpool-redis pool (Config::create_pool)",
            POOL,
        ),
    ),
    (
        &["sqlx", "PgPool", "connect"],
        p("pool-per-call", "an sqlx pool (PgPool::connect)", POOL),
    ),
    (
        &["sqlx", "postgres", "PgPoolOptions", "new"],
        p("pool-per-call", "an sqlx pool (PgPoolOptions::new)", POOL),
    ),
    (
        &["sqlx", "PgPoolOptions", "new"],
        p("pool-per-call", "an sqlx pool (PgPoolOptions::new)", POOL),
    ),
    (
        &["pool_core", "ConnectionPool", "builder"],
        p(
            "pool-per-call",
            "a unipool ConnectionPool (ConnectionPool::builder)",
            POOL,
        ),
    ),
    (
        &["unipool", "ConnectionPool", "builder"],
        p(
            "pool-per-call",
            "a unipool ConnectionPool (ConnectionPool::builder)",
            POOL,
        ),
    ),
];

/// Methods that open a connection whatever their receiver's path, given the
/// crate they belong to is imported by the file.
pub const METHODS: &[(&str, &str, Pattern)] = &[
    (
        "redis",
        "get_connection",
        p(
            "redis-connect",
            "a Redis connection (Client::open(..).get_connection)",
            REDIS,
        ),
    ),
    (
        "redis",
        "get_async_connection",
        p(
            "redis-connect",
            "a Redis connection (Client::open(..).get_async_connection)",
            REDIS,
        ),
    ),
    (
        "redis",
        "get_multiplexed_async_connection",
        p(
            "redis-connect",
            "a Redis connection (Client::open(..).get_multiplexed_async_connection)",
            REDIS,
        ),
    ),
    (
        "redis",
        "get_multiplexed_tokio_connection",
        p(
            "redis-connect",
            "a Redis connection (Client::open(..).get_multiplexed_tokio_connection)",
            REDIS,
        ),
    ),
    (
        "redis",
        "get_connection_manager",
        p(
            "redis-connect",
            "a Redis connection manager (Client::open(..).get_connection_manager)",
            REDIS,
        ),
    ),
    (
        "redis",
        "get_connection_with_timeout",
        p(
            "redis-connect",
            "a Redis connection (Client::open(..).get_connection_with_timeout)",
            REDIS,
        ),
    ),
    (
        "zmq",
        "socket",
        p("zmq-socket", "a ZeroMQ socket (ctx.socket(..))", ZMQ_SOCKET),
    ),
];

const fn p(id: &'static str, what: &'static str, replacement: &'static str) -> Pattern {
    Pattern {
        id,
        what,
        replacement,
        is_pool: matches!(id.as_bytes(), b"pool-per-call"),
    }
}

/// Every rule once, for SARIF's rule list: (id, description).
pub fn rules() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for pat in CALLS
        .iter()
        .map(|(_, p)| p)
        .chain(METHODS.iter().map(|(_, _, p)| p))
    {
        if !out.iter().any(|(id, _)| *id == pat.id) {
            out.push((pat.id, pat.replacement));
        }
    }
    out
}

/// The pattern a resolved call path matches, if any.
pub fn call(path: &[String]) -> Option<Pattern> {
    CALLS.iter().find_map(|(suffix, pat)| {
        (path.len() >= suffix.len()
            && path[path.len() - suffix.len()..]
                .iter()
                .zip(suffix.iter())
                .all(|(a, b)| a == b))
        .then_some(*pat)
    })
}

/// The pattern of a method call named `name`, if its crate is imported.
pub fn method(name: &str, imports: &dyn Fn(&str) -> bool) -> Option<Pattern> {
    METHODS
        .iter()
        .find(|(krate, m, _)| *m == name && imports(krate))
        .map(|(_, _, pat)| *pat)
}
