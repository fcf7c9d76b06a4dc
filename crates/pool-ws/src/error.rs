//! `WsError`: which step failed, with the URL (redacted) and the cause.

use std::time::Duration;

use pool_core::PoolError;

/// Why a pool-ws call failed. URLs are shown without credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The URL does not parse, or is not `ws://` / `wss://`.
    #[error("invalid WebSocket URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The TCP connect failed (refused, unreachable, reset).
    #[error("{url}: cannot connect: {source}")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server answered the handshake with an HTTP status instead of
    /// switching protocols (401, 403, 404, 503, …).
    #[error("{url}: the server refused the WebSocket handshake: HTTP {status}{}", body.as_deref().map(|b| format!(" ({b})")).unwrap_or_default())]
    Handshake {
        /// The URL, redacted.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body, if any.
        body: Option<String>,
    },
    /// TLS failed (certificate not trusted, handshake error).
    #[error("{url}: TLS: {reason}")]
    Tls {
        /// The URL, redacted.
        url: String,
        /// rustls's reason.
        reason: String,
    },
    /// The peer closed the connection (with its Close frame's code and
    /// reason, if it sent one).
    #[error("{url}: closed by the peer{}", frame.as_deref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Closed {
        /// The URL, redacted.
        url: String,
        /// The Close frame's code and reason.
        frame: Option<String>,
    },
    /// No reply (pong, message) within the deadline.
    #[error("{url}: no {what} within {waited:?}")]
    Timeout {
        /// The URL, redacted.
        url: String,
        /// What was awaited: `"pong"`, `"reply"`, `"message"`.
        what: &'static str,
        /// The deadline.
        waited: Duration,
    },
    /// Any other WebSocket failure (a protocol violation, a message too large).
    #[error("{url}: {source}")]
    Protocol {
        /// The URL, redacted.
        url: String,
        /// tungstenite's error.
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    /// No connection within `acquire_timeout`, or the pool is closed.
    #[error(transparent)]
    Pool(Box<PoolError<WsError>>),
    /// The configuration is invalid (names the knob).
    #[error(transparent)]
    Config(#[from] pool_core::ConfigError),
}

impl WsError {
    /// The HTTP status of a refused handshake.
    pub fn status(&self) -> Option<u16> {
        match self {
            WsError::Handshake { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: a refused or reset connect, a
    /// timeout, or a 502/503/504; not a 4xx, a bad URL or an untrusted
    /// certificate.
    pub fn is_transient(&self) -> bool {
        match self {
            WsError::Connect { .. } | WsError::Timeout { .. } | WsError::Closed { .. } => true,
            WsError::Handshake { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// From tungstenite's error on `url` (already redacted).
    pub(crate) fn from_tungstenite(url: &str, e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as E;
        let url = url.to_string();
        match e {
            // tokio-tungstenite reports a failed TLS handshake as I/O.
            E::Io(source) => match source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => WsError::Tls {
                    url,
                    reason: tls.to_string(),
                },
                None => WsError::Connect { url, source },
            },
            E::Http(resp) => WsError::Handshake {
                url,
                status: resp.status().as_u16(),
                body: resp.body().as_ref().map(|b| {
                    let text = String::from_utf8_lossy(&b[..b.len().min(200)]);
                    text.trim().to_string()
                }),
            },
            E::Tls(t) => WsError::Tls {
                url,
                reason: t.to_string(),
            },
            E::ConnectionClosed | E::AlreadyClosed => WsError::Closed { url, frame: None },
            source => WsError::Protocol { url, source },
        }
    }
}

impl From<PoolError<WsError>> for WsError {
    /// A connect error comes out as itself (the 401 stays a `Handshake`);
    /// timeouts and `Closed` as [`WsError::Pool`].
    fn from(e: PoolError<WsError>) -> Self {
        match e {
            PoolError::Backend(e) => e,
            other => WsError::Pool(Box::new(other)),
        }
    }
}
