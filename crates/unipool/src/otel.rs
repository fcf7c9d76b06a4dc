//! Feature `otel`: every pool of a registry through the OpenTelemetry
//! metrics API (the `opentelemetry` crate only: the application installs
//! the SDK and its exporter, as the API crate advises libraries).
//!
//! Gauges and counters are observable instruments whose callbacks read the
//! pools' snapshots at collection time; create, wait and use times are
//! histograms in seconds recorded from the engine's events. Names and
//! attributes follow the semantic conventions for database client
//! connection pools (v1.44); what they lack is under `unipool.*`
//! (docs/metrics.md).

use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::KeyValue;

use crate::registry::timings::{Which, BOUNDS};
use crate::{HealthStatus, Registry};

/// The pool-name attribute of the conventions.
const POOL: &str = "db.client.connection.pool.name";

/// The histograms one pool's events are recorded into, with its attributes.
pub(crate) struct OtelTimings {
    pub(crate) create: Histogram<f64>,
    pub(crate) wait: Histogram<f64>,
    pub(crate) use_: Histogram<f64>,
    pub(crate) attributes: [KeyValue; 1],
}

/// The instruments [`install`] registered; they report while this lives
/// (the observable ones stop when it is dropped).
pub struct OtelMetrics {
    _instruments: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for OtelMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelMetrics").finish_non_exhaustive()
    }
}

/// Registers the instruments of every pool of `registry` on `meter`
/// (`opentelemetry::global::meter("unipool")`, or a provider's). Events
/// recorded before this call are not replayed. Calling it twice for one
/// registry keeps the first meter's histograms.
pub fn install(registry: &Registry, meter: &Meter) -> OtelMetrics {
    let seconds = |name: &'static str, help: &'static str| {
        meter
            .f64_histogram(name)
            .with_unit("s")
            .with_description(help)
            .with_boundaries(BOUNDS.to_vec())
            .build()
    };
    let (create, wait, use_) = (
        seconds(
            "db.client.connection.create_time",
            "The time it took to create a new connection",
        ),
        seconds(
            "db.client.connection.wait_time",
            "The time it took to obtain an open connection from the pool",
        ),
        seconds(
            "db.client.connection.use_time",
            "The time between borrowing a connection and returning it to the pool",
        ),
    );
    for name in registry.names() {
        if let Some(t) = registry.timings(name) {
            let _ = t.otel.set(OtelTimings {
                create: create.clone(),
                wait: wait.clone(),
                use_: use_.clone(),
                attributes: [KeyValue::new(POOL, name.to_string())],
            });
        }
    }

    let mut instruments: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
    // An observable instrument whose callback reads every pool's snapshot.
    macro_rules! per_pool {
        ($builder:expr, $unit:literal, $help:literal, |$p:ident, $o:ident| $body:expr) => {{
            let r = registry.clone();
            instruments.push(Box::new(
                $builder
                    .with_unit($unit)
                    .with_description($help)
                    .with_callback(move |$o| {
                        for $p in r.stats() {
                            $body;
                        }
                    })
                    .build(),
            ));
        }};
    }
    let pool = |p: &crate::PoolStats| KeyValue::new(POOL, p.name.clone());
    per_pool!(
        meter.i64_observable_up_down_counter("db.client.connection.count"),
        "{connection}",
        "The number of connections that are currently in state described by the state attribute",
        |p, o| for (state, n) in [("idle", p.stats.idle), ("used", p.stats.in_use)] {
            o.observe(
                n as i64,
                &[pool(&p), KeyValue::new("db.client.connection.state", state)],
            );
        }
    );
    per_pool!(
        meter.i64_observable_up_down_counter("db.client.connection.max"),
        "{connection}",
        "The maximum number of open connections allowed",
        |p, o| o.observe(p.stats.max_size as i64, &[pool(&p)])
    );
    per_pool!(
        meter.i64_observable_up_down_counter("db.client.connection.pending_requests"),
        "{request}",
        "The number of current pending requests for an open connection",
        |p, o| o.observe(p.stats.waiting as i64, &[pool(&p)])
    );
    per_pool!(
        meter.u64_observable_counter("db.client.connection.timeouts"),
        "{timeout}",
        "The number of connection timeouts that have occurred trying to obtain a connection from the pool",
        |p, o| o.observe(p.stats.timeouts, &[pool(&p)])
    );
    per_pool!(
        meter.u64_observable_counter("unipool.connection.acquired"),
        "{connection}",
        "Connections handed out",
        |p, o| o.observe(p.stats.acquired_total, &[pool(&p)])
    );
    per_pool!(
        meter.u64_observable_counter("unipool.connection.created"),
        "{connection}",
        "Connections opened",
        |p, o| o.observe(p.stats.created, &[pool(&p)])
    );
    per_pool!(
        meter.u64_observable_counter("unipool.connection.create_failures"),
        "{attempt}",
        "Connect attempts that failed",
        |p, o| o.observe(p.stats.create_failures, &[pool(&p)])
    );
    per_pool!(
        meter.u64_observable_counter("unipool.connection.closed"),
        "{connection}",
        "Connections closed, by reason",
        |p, o| for (reason, n) in p.stats.closed_by_reason() {
            o.observe(
                n,
                &[
                    pool(&p),
                    KeyValue::new("unipool.close.reason", reason.as_str()),
                ],
            );
        }
    );
    per_pool!(
        meter.i64_observable_up_down_counter("unipool.circuits_open"),
        "{breaker}",
        "Circuit breakers open now (sub-pools of a keyed pool count one each)",
        |p, o| o.observe(p.stats.circuits_open as i64, &[pool(&p)])
    );
    per_pool!(
        meter.f64_observable_gauge("unipool.connection.reuse_ratio"),
        "1",
        "Checkouts that reused a connection, over all checkouts",
        |p, o| o.observe(p.stats.reuse_rate, &[pool(&p)])
    );
    #[cfg(feature = "http")]
    http_hosts(registry, meter, &mut instruments);
    let r = registry.clone();
    instruments.push(Box::new(
        meter
            .i64_observable_gauge("unipool.pool.up")
            .with_unit("1")
            .with_description("1 while the pool is healthy or degraded, 0 while unhealthy")
            .with_callback(move |o| {
                for p in r.health().pools {
                    let up = !matches!(p.status, HealthStatus::Unhealthy { .. });
                    o.observe(
                        i64::from(up),
                        &[
                            KeyValue::new(POOL, p.name.clone()),
                            KeyValue::new("unipool.pool.kind", p.kind.name()),
                        ],
                    );
                }
            })
            .build(),
    ));
    OtelMetrics {
        _instruments: instruments,
    }
}

/// Records one event of a pool into its OpenTelemetry histograms.
pub(crate) fn record(t: &OtelTimings, which: Which, seconds: f64) {
    let h = match which {
        Which::Create => &t.create,
        Which::Wait => &t.wait,
        Which::Use => &t.use_,
    };
    h.record(seconds, &t.attributes);
}

/// Per host of every HTTP pool (seed 002's "efficiency"): open connections,
/// attempts, connections opened and failures, with `server.address` and
/// `server.port`.
#[cfg(feature = "http")]
fn http_hosts(
    registry: &Registry,
    meter: &Meter,
    instruments: &mut Vec<Box<dyn std::any::Any + Send + Sync>>,
) {
    type Value = fn(&pool_http::HostStats) -> u64;
    let attributes = |pool: &str, h: &pool_http::HostStats| {
        let (address, port) = h.host.rsplit_once(':').unwrap_or((&h.host, ""));
        [
            KeyValue::new(POOL, pool.to_string()),
            KeyValue::new("server.address", address.to_string()),
            KeyValue::new("server.port", port.parse::<i64>().unwrap_or(0)),
        ]
    };
    let r = registry.clone();
    instruments.push(Box::new(
        meter
            .i64_observable_up_down_counter("http.client.open_connections")
            .with_unit("{connection}")
            .with_description("Connections open to the host, by state (active: carrying a request that waits for its response)")
            .with_callback(move |o| {
                for (name, pool) in r.http_pools() {
                    for h in pool.stats().hosts {
                        let (active, idle) = h.connections_by_state();
                        let [pool, address, port] = attributes(&name, &h);
                        for (state, n) in [("active", active), ("idle", idle)] {
                            let state = KeyValue::new("http.connection.state", state);
                            let with = [pool.clone(), address.clone(), port.clone(), state];
                            o.observe(n as i64, &with);
                        }
                    }
                }
            })
            .build(),
    ));
    let r = registry.clone();
    instruments.push(Box::new(
        meter
            .i64_observable_up_down_counter("http.client.active_requests")
            .with_unit("{request}")
            .with_description("Requests to the host waiting for their response")
            .with_callback(move |o| {
                for (name, pool) in r.http_pools() {
                    for h in pool.stats().hosts {
                        o.observe(h.in_flight as i64, &attributes(&name, &h));
                    }
                }
            })
            .build(),
    ));
    let counters: [(&'static str, &'static str, &'static str, Value); 3] = [
        (
            "unipool.http.requests",
            "{request}",
            "Attempts sent to the host (retries count)",
            |h| h.requests,
        ),
        (
            "unipool.http.connections_opened",
            "{connection}",
            "Connections opened to the host",
            |h| h.connections_opened,
        ),
        (
            "unipool.http.failures",
            "{request}",
            "Attempts to the host that got no response",
            |h| h.failures,
        ),
    ];
    for (name, unit, help, value) in counters {
        let r = registry.clone();
        instruments.push(Box::new(
            meter
                .u64_observable_counter(name)
                .with_unit(unit)
                .with_description(help)
                .with_callback(move |o| {
                    for (pool_name, pool) in r.http_pools() {
                        for h in pool.stats().hosts {
                            o.observe(value(&h), &attributes(&pool_name, &h));
                        }
                    }
                })
                .build(),
        ));
    }
}
