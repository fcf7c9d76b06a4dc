//! `HttpPool`: one service's shared client, limits, retries and figures.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use pool_core::util::redact_url;
use pool_core::{
    util::StripedCounter, BoxFuture, ConnectionPool, Health, HealthStatus, Pool, PoolError,
    PooledConnection, Stats,
};

type Permit<'a> = PooledConnection<'a, Permits>;
use hyper_util::client::legacy::connect::HttpInfo;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, RequestBuilder, Response};

use crate::config::{Auth, HttpConfig};
use crate::counting::{ConnCounts, CountLayer};
use crate::error::HttpError;
use crate::limit::{limit, Permits};
use crate::retry::{self, Spare};
use crate::tracking::Tracker;

/// One HTTP service: a name, a base URL and one shared `reqwest::Client`.
/// Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct HttpPool {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: HttpConfig,
    client: Client,
    /// Requests in flight over all hosts; FIFO once full.
    total: ConnectionPool<Permits>,
    /// Per host: its limit and counters. Written only when a host is first seen.
    hosts: RwLock<HashMap<String, Arc<HostState>>>,
    /// The base URL's host, else the first host seen: found without a lock.
    primary: OnceLock<Arc<HostState>>,
    /// Connect times, when `measure_connect_time` installed the connector layer.
    connects: Option<Arc<ConnCounts>>,
    retries: AtomicU64,
    limit_timeouts: AtomicU64,
    closed: AtomicBool,
}

struct HostState {
    /// `host[:port]`, shared so that a request needs no copy of it.
    key: Arc<str>,
    /// `None` when `max_in_flight_per_host >= max_in_flight`: never the binding
    /// limit then.
    limit: Option<ConnectionPool<Permits>>,
    /// Until a first response came back from this host, requests that may share
    /// one HTTP/2 connection go one at a time: a burst on a cold client would
    /// otherwise race to open several connections where one multiplexes all.
    first: tokio::sync::Mutex<()>,
    warmed: AtomicBool,
    /// Bumped by every attempt, on every core: striped, so that it shares no
    /// cache line with the read-mostly fields above.
    requests: StripedCounter,
    failures: AtomicU64,
    connect_failures: AtomicU64,
    conns: Tracker,
    /// Requests to this host between their permit and their response (or
    /// error): `HostStats::in_flight`.
    in_flight: AtomicUsize,
}

/// One request counted in its host's `in_flight` while alive (also when its
/// caller drops the future).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Relaxed);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Figures of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStats {
    /// `host:port`.
    pub host: String,
    /// Attempts sent (retries count).
    pub requests: u64,
    /// Attempts that failed without a response.
    pub failures: u64,
    /// Distinct TCP (+TLS) connections that carried a response.
    pub connections_opened: u64,
    /// Connections that carried a response within `pool_idle_timeout`: the open
    /// ones, counted from above (a connection the server closed while idle is
    /// only forgotten after that time; reqwest would have closed it by then).
    pub open_connections: usize,
    /// Attempts that failed to connect.
    pub connect_failures: u64,
    /// Requests to the host waiting for their response now (from their
    /// permit to the response's headers or the error; the body's download
    /// after that is the caller's): OpenTelemetry's
    /// `http.client.active_requests`.
    pub in_flight: usize,
    /// Total time spent opening connections; `None` unless
    /// [`HttpConfig::measure_connect_time`] is on.
    pub connect_time: Option<Duration>,
    /// `1 - connections_opened / requests`: the share of requests that reused a
    /// connection.
    pub reuse_rate: f64,
}

impl HostStats {
    /// The open connections as OpenTelemetry's `http.connection.state` splits
    /// them: `(active, idle)`. A request waiting for its response holds a
    /// connection, so `active = min(in_flight, open_connections)` (under
    /// HTTP/2 several requests share one, and this counts them as several
    /// connections, capped by the open ones); `idle` is the rest.
    pub fn connections_by_state(&self) -> (usize, usize) {
        let active = self.in_flight.min(self.open_connections);
        (active, self.open_connections - active)
    }
}

/// Figures of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStats {
    /// Requests in flight now.
    pub in_flight: usize,
    /// Connections open now over all hosts (see [`HostStats::open_connections`]).
    pub open_connections: usize,
    /// Retries sent.
    pub retries: u64,
    /// Requests that found no in-flight slot in time.
    pub limit_timeouts: u64,
    /// Per host.
    pub hosts: Vec<HostStats>,
}

impl HttpStats {
    /// Attempts over all hosts.
    pub fn requests(&self) -> u64 {
        self.hosts.iter().map(|h| h.requests).sum()
    }

    /// Connections opened over all hosts.
    pub fn connections_opened(&self) -> u64 {
        self.hosts.iter().map(|h| h.connections_opened).sum()
    }

    /// The figures of `host` (`"127.0.0.1:8080"`).
    pub fn host(&self, host: &str) -> Option<&HostStats> {
        self.hosts.iter().find(|h| h.host == host)
    }
}

/// The share of requests that did not open a connection.
fn reuse_rate(opened: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        1.0 - (opened as f64 / requests as f64).min(1.0)
    }
}

/// `host[:port]` as written in the URL (a default port is omitted), borrowed
/// from it: no allocation per request. The connector layer derives the same form.
pub(crate) fn host_key(url: &reqwest::Url) -> &str {
    &url[url::Position::BeforeHost..url::Position::AfterPort]
}

impl HttpPool {
    /// Builds the service's client once. Call it inside a tokio runtime (the
    /// in-flight limits run on the pool-core engine); outside async code use
    /// [`BlockingHttpPool`](crate::BlockingHttpPool).
    ///
    /// # Errors
    /// [`HttpError::Config`] naming what is wrong (a header, a certificate, a
    /// limit, no runtime).
    pub fn new(name: &str, config: HttpConfig) -> Result<Self, HttpError> {
        config.validate()?;
        let mut headers = HeaderMap::new();
        for (k, v) in &config.default_headers {
            let name = HeaderName::from_str(k)
                .map_err(|e| HttpError::Config(format!("default header name {k:?}: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| HttpError::Config(format!("default header {k}: {e}")))?;
            headers.insert(name, value);
        }
        if let Some(auth) = &config.auth {
            let value = match auth {
                Auth::Bearer(token) => format!("Bearer {token}"),
                Auth::Basic { user, password } => {
                    format!(
                        "Basic {}",
                        BASE64.encode(format!("{user}:{}", password.as_deref().unwrap_or("")))
                    )
                }
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| HttpError::Config("auth: not a valid header value".into()))?;
            // Keeps the secret out of hyper's and reqwest's debug output.
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.max_idle_per_host)
            .default_headers(headers)
            .user_agent(config.user_agent.clone())
            .tls_danger_accept_invalid_certs(config.danger_accept_invalid_certs);
        let connects = config
            .measure_connect_time
            .then(|| Arc::new(ConnCounts::default()));
        if let Some(counts) = &connects {
            builder = builder.connector_layer(CountLayer(counts.clone()));
        }
        for pem in &config.root_certificates_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| HttpError::Config(format!("root certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        if config.http2_prior_knowledge {
            builder = builder.http2_prior_knowledge();
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Config(format!("client: {e}")))?;
        let total = limit(
            format!("{name}.in_flight"),
            config.max_in_flight,
            config.acquire_timeout,
        )
        .map_err(|e| HttpError::Config(format!("max_in_flight: {e}")))?;
        let pool = HttpPool {
            inner: Arc::new(Inner {
                name: name.to_string(),
                total,
                config,
                client,
                hosts: RwLock::new(HashMap::new()),
                primary: OnceLock::new(),
                connects,
                retries: AtomicU64::new(0),
                limit_timeouts: AtomicU64::new(0),
                closed: AtomicBool::new(false),
            }),
        };
        if let Some(base) = &pool.inner.config.base_url {
            if base.host_str().is_some() {
                pool.host(host_key(base))?;
            }
        }
        Ok(pool)
    }

    /// The shared client (requests sent through it directly bypass the limits,
    /// retries and request counts; connections are still counted).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The configuration in force.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// A request to `path`, resolved against the base URL (or absolute).
    ///
    /// # Errors
    /// [`HttpError::Invalid`] when the URL cannot be made.
    pub fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, HttpError> {
        let url = match &self.inner.config.base_url {
            Some(base) => base.join(path),
            None => reqwest::Url::parse(path),
        }
        .map_err(|e| HttpError::Invalid(format!("url {path:?}: {e}")))?;
        Ok(self.inner.client.request(method, url))
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub fn get(&self, path: &str) -> Result<RequestBuilder, HttpError> {
        self.request(Method::GET, path)
    }

    /// `POST path`.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub fn post(&self, path: &str) -> Result<RequestBuilder, HttpError> {
        self.request(Method::POST, path)
    }

    /// Sends a request under the limits, retrying idempotent methods (GET, HEAD,
    /// OPTIONS, PUT, DELETE) on connect errors, broken connections, 429 and 503.
    ///
    /// # Errors
    /// [`HttpError::LimitTimeout`], [`HttpError::Connect`], [`HttpError::Timeout`],
    /// [`HttpError::Request`]. A 4xx/5xx response is not an error: check
    /// `status()`.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, HttpError> {
        self.send_with(request, false).await
    }

    /// Like [`send`](Self::send), and retries even a non-idempotent method: for
    /// requests the caller knows are safe to repeat (an idempotency key).
    /// A body that cannot be replayed (a stream) is still never retried.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_retryable(&self, request: RequestBuilder) -> Result<Response, HttpError> {
        self.send_with(request, true).await
    }

    async fn send_with(
        &self,
        request: RequestBuilder,
        retryable: bool,
    ) -> Result<Response, HttpError> {
        let mut req = request
            .build()
            .map_err(|e| HttpError::Invalid(e.without_url().to_string()))?;
        let host_state = self.host(host_key(req.url()))?;
        let host = &host_state.key;
        let may_multiplex = inner_multiplexes(&self.inner.config, req.url());
        let _permits = self.acquire(host, &host_state).await?;
        let _in_flight = InFlight::new(&host_state.in_flight);
        let mut first = None;
        if may_multiplex && !host_state.warmed.load(Relaxed) {
            let guard = host_state.first.lock().await;
            if !host_state.warmed.load(Relaxed) {
                first = Some(guard);
            }
        }
        let inner = &self.inner;
        let policy = &inner.config.retry;
        let may_retry = retryable || retry::idempotent(req.method());
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            // What a retry needs is kept before sending: a streamed body cannot
            // be kept, and then there is no retry.
            let spare = if may_retry && attempt + 1 < policy.max_attempts {
                Spare::of(&req)
            } else {
                None
            };
            host_state.requests.incr();
            let (wait, next) = match inner.client.execute(req).await {
                Ok(resp) => {
                    host_state.saw(&resp, start);
                    let wait = if spare.is_some() && retry::retry_status(resp.status()) {
                        retry::retry_after(&resp)
                            .or_else(|| Some(retry::backoff(policy, attempt)))
                            .filter(|w| {
                                *w <= policy.max_retry_after
                                    && start.elapsed() + *w <= policy.budget
                            })
                    } else {
                        None
                    };
                    // The next request is only built once a retry is decided.
                    let retry = wait.and_then(|w| Some((w, spare?.rebuild(Some(resp.url()))?)));
                    let Some((wait, next)) = retry else {
                        if first.take().is_some() {
                            host_state.warmed.store(true, Relaxed);
                        }
                        return Ok(resp);
                    };
                    tracing::debug!(service = %inner.name, %host, status = %resp.status(), ?wait, "retrying");
                    (wait, next)
                }
                Err(e) => {
                    host_state.failures.fetch_add(1, Relaxed);
                    if e.is_connect() {
                        host_state.connect_failures.fetch_add(1, Relaxed);
                    }
                    let transient = e.is_connect() || retry::connection_lost(&e);
                    let wait = retry::backoff(policy, attempt);
                    let next = (transient && start.elapsed() + wait <= policy.budget)
                        .then(|| spare.and_then(|s| s.rebuild(e.url())))
                        .flatten();
                    let Some(next) = next else {
                        return Err(self.classify(host.to_string(), e));
                    };
                    tracing::debug!(service = %inner.name, %host, error = %e.without_url(), ?wait, "retrying");
                    (wait, next)
                }
            };
            tokio::time::sleep(wait).await;
            inner.retries.fetch_add(1, Relaxed);
            attempt += 1;
            req = next;
        }
    }

    fn classify(&self, host: String, e: reqwest::Error) -> HttpError {
        let service = self.inner.name.clone();
        let source = e.without_url();
        if source.is_timeout() {
            HttpError::Timeout {
                service,
                host,
                source,
            }
        } else if source.is_connect() {
            HttpError::Connect {
                service,
                host,
                source,
            }
        } else {
            HttpError::Request {
                service,
                host,
                source,
            }
        }
    }

    /// The state of host `key`, made when first seen.
    fn host(&self, key: &str) -> Result<HostRef<'_>, HttpError> {
        let inner = &self.inner;
        if let Some(h) = inner.primary.get() {
            if *h.key == *key {
                return Ok(HostRef::Primary(h));
            }
        }
        if let Some(h) = pool_core::util::read(&inner.hosts).get(key) {
            return Ok(HostRef::Other(h.clone()));
        }
        let mut hosts = pool_core::util::write(&inner.hosts);
        if let Some(h) = hosts.get(key) {
            return Ok(HostRef::Other(h.clone()));
        }
        let config = &inner.config;
        let limit = if config.max_in_flight_per_host >= config.max_in_flight {
            None
        } else {
            Some(
                limit(
                    format!("{}.in_flight[{key}]", inner.name),
                    config.max_in_flight_per_host,
                    config.acquire_timeout,
                )
                .map_err(|e| HttpError::Config(format!("max_in_flight_per_host: {e}")))?,
            )
        };
        let state = Arc::new(HostState {
            key: Arc::from(key),
            limit,
            first: tokio::sync::Mutex::new(()),
            warmed: AtomicBool::new(false),
            requests: StripedCounter::new(),
            failures: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            conns: Tracker::new(config.pool_idle_timeout, config.request_timeout),
            in_flight: AtomicUsize::new(0),
        });
        hosts.insert(key.to_string(), state.clone());
        // The first host seen becomes the primary one if no base URL named it.
        let _ = inner.primary.set(state.clone());
        Ok(HostRef::Other(state))
    }

    /// Takes a total and a per-host slot within `acquire_timeout` (FIFO once a
    /// limit is full). The wait for both counts against one deadline.
    async fn acquire<'a>(
        &'a self,
        host: &str,
        state: &'a HostState,
    ) -> Result<(Permit<'a>, Option<Permit<'a>>), HttpError> {
        let inner = &self.inner;
        if inner.closed.load(Relaxed) {
            return Err(HttpError::Invalid(format!(
                "{}: the pool is closed",
                inner.name
            )));
        }
        // The clock is read only when a second limit shares the deadline: the
        // engine measures its own wait.
        let start = state.limit.as_ref().map(|_| Instant::now());
        let timed_out = |scope, limit, waited| {
            inner.limit_timeouts.fetch_add(1, Relaxed);
            HttpError::LimitTimeout {
                service: inner.name.clone(),
                host: host.to_string(),
                scope,
                limit,
                waited,
            }
        };
        let waited = |e: PoolError<Infallible>| match e {
            PoolError::Timeout { waited, .. } => waited,
            _ => Duration::ZERO,
        };
        let total = inner
            .total
            .get()
            .await
            .map_err(|e| timed_out("total", inner.config.max_in_flight, waited(e)))?;
        let (Some(limit), Some(start)) = (&state.limit, start) else {
            return Ok((total, None));
        };
        let left = inner.config.acquire_timeout.saturating_sub(start.elapsed());
        let per_host = limit
            .get_timeout(left.max(Duration::from_millis(1)))
            .await
            .map_err(|_| {
                timed_out(
                    "per-host",
                    inner.config.max_in_flight_per_host,
                    start.elapsed(),
                )
            })?;
        Ok((total, Some(per_host)))
    }

    /// Requests, connections opened and reuse per host.
    pub fn stats(&self) -> HttpStats {
        let inner = &self.inner;
        let connects = inner
            .connects
            .as_ref()
            .map(|c| pool_core::util::lock(&c.hosts).clone());
        let mut hosts: Vec<HostStats> = pool_core::util::read(&inner.hosts)
            .values()
            .map(|h| {
                let requests = h.requests.get();
                let (opened, open) = h.conns.counts();
                HostStats {
                    host: h.key.to_string(),
                    requests,
                    failures: h.failures.load(Relaxed),
                    connections_opened: opened,
                    open_connections: open,
                    connect_failures: h.connect_failures.load(Relaxed),
                    in_flight: h.in_flight.load(Relaxed),
                    connect_time: connects
                        .as_ref()
                        .map(|c| c.get(&*h.key).map_or(Duration::ZERO, |c| c.connect_time)),
                    reuse_rate: reuse_rate(opened, requests),
                }
            })
            .collect();
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        HttpStats {
            in_flight: inner.total.stats().in_use,
            open_connections: hosts.iter().map(|h| h.open_connections).sum(),
            retries: inner.retries.load(Relaxed),
            limit_timeouts: inner.limit_timeouts.load(Relaxed),
            hosts,
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

/// Whether requests to `url` may share one connection (HTTP/2 by prior
/// knowledge, or possibly by ALPN over TLS).
fn inner_multiplexes(config: &HttpConfig, url: &reqwest::Url) -> bool {
    config.http2_prior_knowledge || url.scheme() == "https"
}

/// A host's state: borrowed for the primary host (no reference count touched
/// on the hot path), shared for the others.
enum HostRef<'a> {
    Primary(&'a HostState),
    Other(Arc<HostState>),
}

impl std::ops::Deref for HostRef<'_> {
    type Target = HostState;
    fn deref(&self) -> &HostState {
        match self {
            HostRef::Primary(h) => h,
            HostRef::Other(h) => h,
        }
    }
}

impl HostState {
    /// Notes the connection `resp` came over (see [`crate::tracking`]).
    fn saw(&self, resp: &Response, at: Instant) {
        if let Some(info) = resp.extensions().get::<HttpInfo>() {
            self.conns.saw(info.local_addr(), at);
        }
    }
}

impl fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPool")
            .field("name", &self.inner.name)
            .field(
                "base_url",
                &self
                    .inner
                    .config
                    .base_url
                    .as_ref()
                    .map(|u| redact_url(u.as_str())),
            )
            .field("auth", &self.inner.config.auth)
            .finish_non_exhaustive()
    }
}

impl Pool for HttpPool {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &str {
        "http"
    }

    /// Requests as acquisitions, opened connections as `created`, reuse as
    /// `reused`; `size` is the open connections, `in_use` the requests in
    /// flight (above `size` when HTTP/2 multiplexes).
    fn stats(&self) -> Stats {
        let s = self.stats();
        let requests = s.requests();
        let opened = s.connections_opened();
        let mut out = Stats::default();
        out.max_size = self.inner.config.max_in_flight;
        out.in_use = s.in_flight;
        out.size = s.open_connections;
        out.acquired_total = requests;
        out.acquired_fast = requests;
        out.timeouts = s.limit_timeouts;
        out.created = opened;
        out.create_failures = s.hosts.iter().map(|h| h.connect_failures).sum();
        out.reused = requests.saturating_sub(opened);
        out.reuse_rate = reuse_rate(opened, requests);
        out
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            self.inner.closed.store(true, Relaxed);
            // Every permit back means no request in flight.
            self.inner.total.close(timeout).await
        })
    }
}

impl Health for HttpPool {
    fn health(&self) -> HealthStatus {
        if self.inner.closed.load(Relaxed) {
            return HealthStatus::Unhealthy {
                reason: "pool is closed".into(),
            };
        }
        let s = self.stats();
        if s.in_flight >= self.inner.config.max_in_flight {
            return HealthStatus::Degraded {
                reason: format!("saturated: {} requests in flight", s.in_flight),
            };
        }
        HealthStatus::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::HostStats;

    fn host(in_flight: usize, open_connections: usize) -> HostStats {
        HostStats {
            host: "127.0.0.1:80".into(),
            requests: 0,
            failures: 0,
            connections_opened: 0,
            open_connections,
            connect_failures: 0,
            in_flight,
            connect_time: None,
            reuse_rate: 0.0,
        }
    }

    #[test]
    fn open_connections_split_into_active_and_idle() {
        assert_eq!(host(0, 3).connections_by_state(), (0, 3));
        assert_eq!(host(1, 3).connections_by_state(), (1, 2));
        // Requests waiting for a connection that is not open yet.
        assert_eq!(host(5, 2).connections_by_state(), (2, 0));
        assert_eq!(host(0, 0).connections_by_state(), (0, 0));
    }
}
