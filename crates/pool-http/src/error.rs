//! `HttpError`: which phase failed; reqwest's error as the source, URLs redacted.

use std::time::Duration;

use pool_core::util::ErrorChain;

/// Why a pool-http request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No in-flight slot within `acquire_timeout`.
    #[error("{service}: no {scope} in-flight slot for {host} within {waited:?} (limit {limit})")]
    LimitTimeout {
        /// The service (pool) name.
        service: String,
        /// The request's host.
        host: String,
        /// `"total"` or `"per-host"`.
        scope: &'static str,
        /// The limit in force.
        limit: usize,
        /// How long the request waited.
        waited: Duration,
    },
    /// The connection could not be opened (refused, DNS, TLS verification…).
    #[error("{service}: cannot connect to {host}: {}", ErrorChain(.source))]
    Connect {
        /// The service (pool) name.
        service: String,
        /// The request's host.
        host: String,
        /// reqwest's error (URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// The request ran past `request_timeout` (or `connect_timeout`).
    #[error("{service}: request to {host} timed out: {}", ErrorChain(.source))]
    Timeout {
        /// The service (pool) name.
        service: String,
        /// The request's host.
        host: String,
        /// reqwest's error (URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// Any other failure of the request.
    #[error("{service}: request to {host} failed: {}", ErrorChain(.source))]
    Request {
        /// The service (pool) name.
        service: String,
        /// The request's host.
        host: String,
        /// reqwest's error (URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// The request could not be built (bad URL, bad header).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The configuration is invalid.
    #[error("invalid http configuration: {0}")]
    Config(String),
}
