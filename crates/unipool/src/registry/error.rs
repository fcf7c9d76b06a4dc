//! `RegistryError`: every way building or using a registry fails, each naming
//! where the bad value came from (file and key, or variable) and the value,
//! with secrets redacted.

use std::fmt;

use super::kind::Kind;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A key of a TOML file (or text given to `RegistryConfig::toml`).
    File {
        /// The file's path (or the name given with the text).
        file: String,
        /// The table: `defaults` or `pools.<name>`.
        table: String,
        /// The key within the table.
        key: String,
    },
    /// An environment variable.
    Env {
        /// Its name.
        var: String,
    },
    /// Not set anywhere: the default applied.
    Default {
        /// The knob or key.
        key: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { file, table, key } => write!(f, "{file}: [{table}] {key}"),
            Origin::Env { var } => write!(f, "environment variable {var}"),
            Origin::Default { key } => write!(f, "default `{key}`"),
        }
    }
}

/// Why a registry could not be configured, built or used. No variant's
/// `Display` or `Debug` contains a password or a secret header.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A setting is wrong; `reason` names the value (redacted if secret).
    #[error("{origin}: {reason}")]
    Config {
        /// Where it was set.
        origin: Origin,
        /// What is wrong, with the value.
        reason: String,
    },
    /// A configuration file could not be read or is not valid TOML.
    #[error("{file}: {reason}")]
    File {
        /// The file's path.
        file: String,
        /// The I/O error, or the TOML error with its line and column.
        reason: String,
    },
    /// No pool of that name is declared.
    #[error("no pool named `{name}` (declared: {declared})")]
    UnknownPool {
        /// The name asked for.
        name: String,
        /// The declared names, comma-separated.
        declared: String,
    },
    /// The pool exists but is of another kind.
    #[error("pool `{name}` is a {kind} pool, not a {asked} pool")]
    WrongKind {
        /// The pool.
        name: String,
        /// Its kind.
        kind: Kind,
        /// The kind asked for.
        asked: Kind,
    },
    /// A Redis pool asked for through the other accessor: a
    /// `redis+cluster://` pool through `Registry::redis`, or a single-node
    /// one through `Registry::redis_cluster`.
    #[error("pool `{name}` is {actual}: use Registry::{accessor}")]
    RedisTopology {
        /// The pool.
        name: String,
        /// `a Redis Cluster pool` or `a single-node Redis pool`.
        actual: &'static str,
        /// The accessor that gives it.
        accessor: &'static str,
    },
    /// The pool's kind cannot be built by this build of unipool.
    #[error("pool `{name}` ({origin}) is a {kind} pool: {hint}")]
    Unsupported {
        /// The pool.
        name: String,
        /// Where its URL or kind was set.
        origin: Origin,
        /// Its kind.
        kind: Kind,
        /// What to do.
        hint: &'static str,
    },
    /// Building or connecting the pool failed (the protocol crate's error,
    /// which names the cause and never a password).
    #[error("pool `{name}` ({kind}): {source}")]
    Pool {
        /// The pool.
        name: String,
        /// Its kind.
        kind: Kind,
        /// The protocol crate's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A URL given to `Registry::http_for` is not an http(s) URL.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry was closed.
    #[error("pool `{name}` is closed (the registry was shut down)")]
    Closed {
        /// The pool.
        name: String,
    },
}

/// A value as it may appear in an error: URLs without their password, secrets
/// not at all.
pub(crate) fn shown(key: &str, value: &str) -> String {
    use pool_core::util::clip;
    if super::keys::is_secret(key) {
        "\"***\"".to_string()
    } else if key == "url" {
        format!("{:?}", clip(&redact_any_url(value)))
    } else {
        format!("{:?}", clip(value))
    }
}

pub(crate) use pool_core::util::redact_any_url;
