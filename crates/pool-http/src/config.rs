//! `HttpConfig`: timeouts, limits, headers, auth, TLS and retries of one service.

use std::fmt;
use std::time::Duration;

use crate::error::HttpError;

/// Credentials added to every request. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic …`.
    Basic {
        /// User name.
        user: String,
        /// Password, if any.
        password: Option<String>,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}:***)"),
        }
    }
}

/// When and how requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 = no retry. Default 3.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt, full jitter. Default 100 ms.
    pub base_backoff: Duration,
    /// Cap of one backoff. Default 5 s.
    pub max_backoff: Duration,
    /// Total time a request may spend retrying, waits included. Default 10 s.
    pub budget: Duration,
    /// Longest `Retry-After` honoured; a longer one returns the response as is.
    /// Default 30 s.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            budget: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// Configuration of one HTTP service. Every field states its default.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Paths given to the pool are resolved against it. Default none (absolute
    /// URLs only).
    pub base_url: Option<url::Url>,
    /// Longest TCP (+TLS) connect. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest one attempt of a request, body included. Default 30 s.
    pub request_timeout: Duration,
    /// Idle connections are closed after this. Default 4 s: below the keep-alive
    /// of common servers (Node and Apache close idle connections after 5 s), so
    /// the client closes first instead of racing the server's close (hyper #2136).
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host. Default 32.
    pub max_idle_per_host: usize,
    /// Requests in flight at once over all hosts. Default 256.
    pub max_in_flight: usize,
    /// Requests in flight at once to one host. Default 64.
    pub max_in_flight_per_host: usize,
    /// Longest a request waits for an in-flight slot. Default 30 s.
    pub acquire_timeout: Duration,
    /// Headers added to every request. Default none.
    pub default_headers: Vec<(String, String)>,
    /// Credentials added to every request. Default none.
    pub auth: Option<Auth>,
    /// Extra trusted root certificates (PEM), e.g. a private CA. Default none.
    pub root_certificates_pem: Vec<Vec<u8>>,
    /// Accept any server certificate. Default false: verification is on.
    pub danger_accept_invalid_certs: bool,
    /// Speak HTTP/2 without negotiation (h2c). Default false: HTTP/2 is used when
    /// TLS's ALPN picks it.
    pub http2_prior_knowledge: bool,
    /// Retries. Default [`RetryPolicy::default`].
    pub retry: RetryPolicy,
    /// Time every connect, for [`HostStats::connect_time`](crate::HostStats).
    /// Default false: it takes a reqwest connector layer, and with any layer
    /// reqwest boxes and clones its connector stack on every request (the
    /// cost is in docs/http.md).
    /// Connections opened and reuse are counted either way.
    pub measure_connect_time: bool,
    /// `User-Agent`. Default `unipool/<version>`.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            base_url: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(4),
            max_idle_per_host: 32,
            max_in_flight: 256,
            max_in_flight_per_host: 64,
            acquire_timeout: Duration::from_secs(30),
            default_headers: Vec::new(),
            auth: None,
            root_certificates_pem: Vec::new(),
            danger_accept_invalid_certs: false,
            http2_prior_knowledge: false,
            retry: RetryPolicy::default(),
            measure_connect_time: false,
            user_agent: concat!("unipool/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl HttpConfig {
    /// The defaults with a base URL (a trailing `/` makes relative paths append).
    ///
    /// # Errors
    /// [`HttpError::Config`] when `url` does not parse or is not http(s).
    pub fn with_base_url(url: &str) -> Result<Self, HttpError> {
        let shown = pool_core::util::redact_url(url);
        let parsed = url::Url::parse(url)
            .map_err(|e| HttpError::Config(format!("base_url {shown:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HttpError::Config(format!(
                "base_url {shown:?}: scheme must be http or https"
            )));
        }
        Ok(HttpConfig {
            base_url: Some(parsed),
            ..HttpConfig::default()
        })
    }

    /// Checks the rules; the first broken one is named.
    ///
    /// # Errors
    /// [`HttpError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), HttpError> {
        let bad = |what: &str| Err(HttpError::Config(what.to_string()));
        if self.max_in_flight == 0 {
            return bad("max_in_flight must be at least 1");
        }
        if self.max_in_flight_per_host == 0 {
            return bad("max_in_flight_per_host must be at least 1");
        }
        if self.retry.max_attempts == 0 {
            return bad("retry.max_attempts must be at least 1");
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return bad("connect_timeout and request_timeout must be above zero");
        }
        Ok(())
    }
}
