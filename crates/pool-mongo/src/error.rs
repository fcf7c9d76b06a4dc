//! `MongoError`: what failed, where (the URI without its password) and the
//! driver's own message.

use std::time::Duration;

/// Why a pool-mongo call failed. Never contains the URI's password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MongoError {
    /// The URI does not parse, or (for `mongodb+srv://`) its DNS records
    /// could not be resolved.
    #[error("invalid MongoDB URI {uri}: {reason}")]
    Uri {
        /// The URI, password redacted.
        uri: String,
        /// The driver's message, with the password removed should it appear.
        reason: String,
    },
    /// A pool knob is invalid (names the knob and its value).
    #[error(transparent)]
    Config(#[from] pool_core::ConfigError),
    /// The driver failed the operation (server down, authentication,
    /// a command error with its code).
    #[error("mongodb {op} on {target} failed: {source}")]
    Driver {
        /// What was being done: `ping`, `connect`, …
        op: &'static str,
        /// The URI, password redacted.
        target: String,
        /// The driver's error.
        #[source]
        source: mongodb::error::Error,
    },
    /// The operation ran past its deadline.
    #[error("mongodb {op} on {target} took longer than {after:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The URI, password redacted.
        target: String,
        /// The deadline.
        after: Duration,
    },
    /// The URI names no database and `default_database` was asked for.
    #[error(
        "the MongoDB URI {target} names no default database (add `/<database>` after the hosts)"
    )]
    NoDefaultDatabase {
        /// The URI, password redacted.
        target: String,
    },
    /// The pool was closed.
    #[error("mongo pool `{name}` is closed")]
    Closed {
        /// The pool's name.
        name: String,
    },
}

impl MongoError {
    /// The driver's error, if the driver failed.
    pub fn driver_error(&self) -> Option<&mongodb::error::Error> {
        match self {
            MongoError::Driver { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Whether retrying later may succeed: a network error, a timeout, no
    /// server selectable yet.
    pub fn is_transient(&self) -> bool {
        match self {
            MongoError::Timeout { .. } => true,
            MongoError::Driver { source, .. } => {
                crate::tracker::failure_kind(source) != pool_core::FailureKind::Permanent
            }
            _ => false,
        }
    }
}
