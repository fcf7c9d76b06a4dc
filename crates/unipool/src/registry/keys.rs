//! The keys a registry pool takes besides the engine's knobs: how a pool is
//! declared (`url`, `kind`) and the settings of one protocol. The engine's
//! knobs are not repeated here: they are `PoolConfig::KNOBS`, read by
//! `PoolConfig::set`. A test checks `docs/configuration.md` against this table.

use pool_core::PoolConfig;

use super::kind::Kind;

/// One protocol-specific key.
#[derive(Debug)]
pub(crate) struct Key {
    /// As in TOML; upper-cased in the environment.
    pub(crate) name: &'static str,
    /// The kinds that take it. A pool's own setting of a key its kind does not
    /// take is an error; a default is skipped for those pools.
    pub(crate) kinds: &'static [Kind],
    /// The default, as written in the docs (read by the docs test).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) default: &'static str,
    /// The accepted text form, as written in the docs (read by the docs test).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) form: &'static str,
    /// Its value never appears in an error, a log or `Debug`.
    pub(crate) secret: bool,
}

const fn key(
    name: &'static str,
    kinds: &'static [Kind],
    default: &'static str,
    form: &'static str,
) -> Key {
    Key {
        name,
        kinds,
        default,
        form,
        secret: false,
    }
}

/// Every protocol-specific key, in the order of the docs.
pub(crate) const KEYS: &[Key] = &[
    key(
        "url",
        &Kind::ALL,
        "required",
        "URL; its scheme picks the kind",
    ),
    key(
        "kind",
        &Kind::ALL,
        "from the scheme",
        "`postgres` / `sqlite` / `redis` / `http` / `ws` / `zmq` / `mongo`",
    ),
    key(
        "recycle",
        &[Kind::Postgres],
        "fast",
        "`fast` / `verified` / `clean`",
    ),
    key(
        "pgbouncer",
        &[Kind::Postgres],
        "false",
        "`true` / `false` (also `?pgbouncer=true` in the URL)",
    ),
    key("busy_timeout", &[Kind::Sqlite], "5s", "duration"),
    key("wal", &[Kind::Sqlite], "true", "`true` / `false`"),
    key(
        "shared_connections",
        &[Kind::Redis],
        "one per core",
        "integer ≥ 1",
    ),
    key("command_timeout", &[Kind::Redis], "10s", "duration > 0"),
    key(
        "request_timeout",
        &[Kind::Http, Kind::Ws, Kind::Zmq],
        "30s",
        "duration > 0",
    ),
    key("max_in_flight_per_host", &[Kind::Http], "64", "integer ≥ 1"),
    key("max_idle_per_host", &[Kind::Http], "32", "integer"),
    key(
        "headers",
        &[Kind::Http, Kind::Ws],
        "none",
        "table; `Name: value; …` in the environment",
    ),
    Key {
        secret: true,
        ..key(
            "bearer_token",
            &[Kind::Http, Kind::Ws],
            "none",
            "text (secret)",
        )
    },
    key("user_agent", &[Kind::Http], "unipool/<version>", "text"),
    key(
        "http2_prior_knowledge",
        &[Kind::Http],
        "false",
        "`true` / `false`",
    ),
    key("retry_attempts", &[Kind::Http], "3", "integer ≥ 1"),
    key(
        "max_total",
        &[Kind::Ws, Kind::Zmq],
        "50",
        "integer ≥ `max_size`",
    ),
    key("subprotocols", &[Kind::Ws], "none", "`a, b, …`"),
    key(
        "ping_timeout",
        &[Kind::Ws, Kind::Mongo],
        "10s",
        "duration > 0",
    ),
    key("close_timeout", &[Kind::Ws], "1s", "duration"),
    key("read_buffer_size", &[Kind::Ws], "4096", "integer (bytes)"),
    key(
        "max_message_size",
        &[Kind::Ws],
        "67108864",
        "integer (bytes)",
    ),
    key("max_frame_size", &[Kind::Ws], "16777216", "integer (bytes)"),
    key(
        "socket",
        &[Kind::Zmq],
        "required",
        "`req` / `rep` / `dealer` / `router` / `pub` / `sub` / `push` / `pull`",
    ),
    key("bind", &[Kind::Zmq], "false", "`true` / `false`"),
    key("subscribe", &[Kind::Zmq], "none", "`prefix, prefix, …`"),
    key("linger", &[Kind::Zmq], "100ms", "duration"),
    key("send_hwm", &[Kind::Zmq], "1000", "integer"),
    key("recv_hwm", &[Kind::Zmq], "1000", "integer"),
    key("send_timeout", &[Kind::Zmq], "5s", "duration > 0"),
    key("recv_timeout", &[Kind::Zmq], "30s", "duration > 0"),
    key("reconnect_interval", &[Kind::Zmq], "100ms", "duration"),
    key(
        "heartbeat_interval",
        &[Kind::Zmq, Kind::Mongo],
        "zmq: off; mongo: 10s",
        "duration (mongo: ≥ 500ms)",
    ),
    key("max_connecting", &[Kind::Mongo], "2", "integer ≥ 1"),
    key(
        "server_limit",
        &[Kind::Postgres, Kind::Redis],
        "read from the server",
        "integer ≥ 1",
    ),
    key("app_name", &[Kind::Mongo], "the pool's name", "text"),
];

/// The engine knobs an HTTP pool has a use for, and the `HttpConfig` field
/// each one sets. The other knobs (`min_idle`, `max_lifetime`, …) have no
/// meaning for reqwest's pool.
pub(crate) const HTTP_KNOBS: &[(&str, &str)] = &[
    ("max_size", "max_in_flight"),
    ("acquire_timeout", "acquire_timeout"),
    ("connect_timeout", "connect_timeout"),
    ("idle_timeout", "pool_idle_timeout"),
];

/// The engine knobs a MongoDB pool maps onto the driver's options, and the
/// driver option each one sets. The others (`max_lifetime`,
/// `keepalive_interval`, …) have no match in the driver.
pub(crate) const MONGO_KNOBS: &[(&str, &str)] = &[
    ("max_size", "max_pool_size"),
    ("min_idle", "min_pool_size"),
    ("idle_timeout", "max_idle_time"),
    ("connect_timeout", "connect_timeout"),
    ("acquire_timeout", "server_selection_timeout"),
];

/// A known key, by its canonical (lower-case) name: an engine knob or a row of
/// [`KEYS`].
pub(crate) fn canonical(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    PoolConfig::KNOBS
        .iter()
        .copied()
        .chain(KEYS.iter().map(|k| k.name))
        .find(|k| *k == lower)
}

/// Whether a pool of `kind` takes the key `name` (canonical).
pub(crate) fn applies(kind: Kind, name: &str) -> bool {
    if let Some(k) = KEYS.iter().find(|k| k.name == name) {
        return k.kinds.contains(&kind);
    }
    match kind {
        Kind::Http => HTTP_KNOBS.iter().any(|(k, _)| *k == name),
        Kind::Mongo => MONGO_KNOBS.iter().any(|(k, _)| *k == name),
        _ => true,
    }
}

/// Whether the value of `name` is a secret.
pub(crate) fn is_secret(name: &str) -> bool {
    KEYS.iter().any(|k| k.secret && k.name == name)
}

/// The kinds that take `name`, for an error message.
pub(crate) fn kinds_of(name: &str) -> String {
    let kinds: Vec<&str> = Kind::ALL
        .iter()
        .filter(|k| applies(**k, name))
        .map(|k| k.name())
        .collect();
    kinds.join(", ")
}

/// Every key's name, longest first: how an environment variable's suffix is
/// matched (`UNIPOOL_USER_DB_MAX_SIZE` → pool `user_db`, key `max_size`).
pub(crate) fn longest_first() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = PoolConfig::KNOBS
        .iter()
        .copied()
        .chain(KEYS.iter().map(|k| k.name))
        .collect();
    all.sort_by_key(|k| std::cmp::Reverse(k.len()));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of `docs/configuration.md`'s table of keys per kind names a
    /// key of [`KEYS`] with the same kinds, default and text form, and every
    /// key has a row.
    #[test]
    fn docs_configuration_md_lists_every_key() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let doc = std::fs::read_to_string(path).expect("docs/configuration.md");
        let rows: Vec<Vec<String>> = doc
            .lines()
            .skip_while(|l| !l.starts_with("| key | kinds | default | text form |"))
            .take_while(|l| l.starts_with('|'))
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                l.trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), KEYS.len(), "one row per key");
        for key in KEYS {
            let row = rows
                .iter()
                .find(|r| r[0] == format!("`{}`", key.name))
                .unwrap_or_else(|| panic!("no row for `{}` in {path}", key.name));
            let kinds = if key.kinds.len() == Kind::ALL.len() {
                "all".to_string()
            } else {
                key.kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            assert_eq!(row[1], kinds, "kinds of `{}`", key.name);
            assert_eq!(row[2], key.default, "default of `{}`", key.name);
            assert_eq!(row[3], key.form, "text form of `{}`", key.name);
        }
    }

    #[test]
    fn no_protocol_key_shadows_an_engine_knob() {
        for key in KEYS {
            assert!(!PoolConfig::KNOBS.contains(&key.name), "{}", key.name);
        }
    }
}
