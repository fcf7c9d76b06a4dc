//! The opt-in connector layer (`measure_connect_time`): times every connect
//! reqwest makes, per host, for `connect_time`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower_layer::Layer;
use tower_service::Service;

/// Connections opened per host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct HostConns {
    pub(crate) opened: u64,
    pub(crate) failed: u64,
    pub(crate) connect_time: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct ConnCounts {
    pub(crate) hosts: Mutex<HashMap<String, HostConns>>,
}

impl ConnCounts {
    fn record(&self, host: String, ok: bool, took: Duration) {
        let mut hosts = pool_core::util::lock(&self.hosts);
        let h = hosts.entry(host).or_default();
        if ok {
            h.opened += 1;
            h.connect_time += took;
        } else {
            h.failed += 1;
        }
    }
}

#[derive(Clone)]
pub(crate) struct CountLayer(pub(crate) Arc<ConnCounts>);

impl<S> Layer<S> for CountLayer {
    type Service = CountService<S>;
    fn layer(&self, inner: S) -> CountService<S> {
        CountService {
            inner,
            counts: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct CountService<S> {
    inner: S,
    counts: Arc<ConnCounts>,
}

/// `host:port` of the connector's destination. reqwest hands the connector an
/// opaque type whose only public face is `Debug` (`Unnameable(http://h:p/)`), so
/// the URI is read back from there; anything unexpected counts as "unknown".
/// Pinned against reqwest itself by the integration test
/// `connect_time_is_measured_when_asked_for` (tests/tests/http.rs): a change of
/// reqwest's format files the connect time under "unknown" and fails it.
fn host_of(dst: &impl Debug) -> String {
    let text = format!("{dst:?}");
    let uri = text
        .split_once('(')
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map_or(text.as_str(), |(uri, _)| uri)
        .trim_matches('"');
    match url::Url::parse(uri) {
        Ok(u) if u.host_str().is_some() => crate::pool::host_key(&u).to_string(),
        _ => "unknown".into(),
    }
}

impl<S, R> Service<R> for CountService<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
    R: Debug,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: R) -> Self::Future {
        let host = host_of(&dst);
        let counts = self.counts.clone();
        let start = Instant::now();
        let fut = self.inner.call(dst);
        Box::pin(async move {
            let r = fut.await;
            counts.record(host, r.is_ok(), start.elapsed());
            r
        })
    }
}
