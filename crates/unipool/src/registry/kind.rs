//! `Kind`: the protocol a pool speaks, read from its URL's scheme or from an
//! explicit `kind` key.

use std::fmt;

/// The protocol of a registry pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `postgres://`, `postgresql://` (feature `postgres`).
    Postgres,
    /// `sqlite:` (feature `sqlite`).
    Sqlite,
    /// `redis://`, `rediss://`, `redis+unix://`, `redis+cluster://` (feature
    /// `redis`).
    Redis,
    /// `http://`, `https://` (feature `http`).
    Http,
    /// `ws://`, `wss://` (feature `ws`).
    Ws,
    /// ZeroMQ endpoints (`tcp://`, `ipc://`, …) with `kind = "zmq"` (feature
    /// `zmq`).
    Zmq,
    /// `mongodb://`, `mongodb+srv://` (feature `mongo`).
    Mongo,
}

impl Kind {
    /// Every kind, in the order of the docs.
    pub const ALL: [Kind; 7] = [
        Kind::Postgres,
        Kind::Sqlite,
        Kind::Redis,
        Kind::Http,
        Kind::Ws,
        Kind::Zmq,
        Kind::Mongo,
    ];

    /// The name used in `kind = "…"`, in errors and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Sqlite => "sqlite",
            Kind::Redis => "redis",
            Kind::Http => "http",
            Kind::Ws => "ws",
            Kind::Zmq => "zmq",
            Kind::Mongo => "mongo",
        }
    }

    /// The kind a URL scheme implies; `None` for schemes that need an explicit
    /// `kind` (ZeroMQ's `tcp://`, `ipc://`, …) or that no pool speaks.
    pub fn from_scheme(scheme: &str) -> Option<Kind> {
        Some(match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Kind::Postgres,
            "sqlite" => Kind::Sqlite,
            "redis" | "rediss" | "redis+unix" | "redis+cluster" => Kind::Redis,
            "http" | "https" => Kind::Http,
            "ws" | "wss" => Kind::Ws,
            "mongodb" | "mongodb+srv" => Kind::Mongo,
            _ => return None,
        })
    }

    /// The kind named by an explicit `kind` value (case-insensitive; also
    /// `postgresql`, `zeromq`, `mongodb`, `websocket`).
    pub fn parse(text: &str) -> Option<Kind> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Kind::Postgres,
            "sqlite" => Kind::Sqlite,
            "redis" => Kind::Redis,
            "http" => Kind::Http,
            "ws" | "websocket" => Kind::Ws,
            "zmq" | "zeromq" => Kind::Zmq,
            "mongo" | "mongodb" => Kind::Mongo,
            _ => return None,
        })
    }

    /// Whether this build of unipool can build pools of this kind, and if not,
    /// what the user can do about it.
    pub(crate) fn unsupported(self) -> Option<&'static str> {
        match self {
            Kind::Postgres if !cfg!(feature = "postgres") => {
                Some("enable unipool's feature `postgres`")
            }
            Kind::Sqlite if !cfg!(feature = "sqlite") => Some("enable unipool's feature `sqlite`"),
            Kind::Redis if !cfg!(feature = "redis") => Some("enable unipool's feature `redis`"),
            Kind::Http if !cfg!(feature = "http") => Some("enable unipool's feature `http`"),
            Kind::Ws if !cfg!(feature = "ws") => Some("enable unipool's feature `ws`"),
            Kind::Zmq if !cfg!(feature = "zmq") => Some("enable unipool's feature `zmq`"),
            Kind::Mongo if !cfg!(feature = "mongo") => Some("enable unipool's feature `mongo`"),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}
