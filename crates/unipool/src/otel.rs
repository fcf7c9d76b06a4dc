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

use crate::registry::timings::BOUNDS;
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
    let r = registry.clone();
    instruments.push(Box::new(
        meter
            .i64_observable_up_down_counter("db.client.connection.count")
            .with_unit("{connection}")
            .with_description("The number of connections that are currently in state described by the state attribute")
            .with_callback(move |o| {
                for p in r.stats() {
                    for (state, n) in [("idle", p.stats.idle), ("used", p.stats.in_use)] {
                        o.observe(
                            n as i64,
                            &[
                                KeyValue::new(POOL, p.name.clone()),
                                KeyValue::new("db.client.connection.state", state),
                            ],
                        );
                    }
                }
            })
            .build(),
    ));
    let gauge = |name: &'static str,
                 unit: &'static str,
                 help: &'static str,
                 value: fn(&crate::Stats) -> i64| {
        let r = registry.clone();
        meter
            .i64_observable_up_down_counter(name)
            .with_unit(unit)
            .with_description(help)
            .with_callback(move |o| {
                for p in r.stats() {
                    o.observe(value(&p.stats), &[KeyValue::new(POOL, p.name.clone())]);
                }
            })
            .build()
    };
    instruments.push(Box::new(gauge(
        "db.client.connection.max",
        "{connection}",
        "The maximum number of open connections allowed",
        |s| s.max_size as i64,
    )));
    instruments.push(Box::new(gauge(
        "db.client.connection.pending_requests",
        "{request}",
        "The number of current pending requests for an open connection",
        |s| s.waiting as i64,
    )));
    let counter = |name: &'static str,
                   unit: &'static str,
                   help: &'static str,
                   value: fn(&crate::Stats) -> u64| {
        let r = registry.clone();
        meter
            .u64_observable_counter(name)
            .with_unit(unit)
            .with_description(help)
            .with_callback(move |o| {
                for p in r.stats() {
                    o.observe(value(&p.stats), &[KeyValue::new(POOL, p.name.clone())]);
                }
            })
            .build()
    };
    instruments.push(Box::new(counter("db.client.connection.timeouts", "{timeout}", "The number of connection timeouts that have occurred trying to obtain a connection from the pool", |s| s.timeouts)));
    instruments.push(Box::new(counter(
        "unipool.connection.acquired",
        "{connection}",
        "Connections handed out",
        |s| s.acquired_total,
    )));
    instruments.push(Box::new(counter(
        "unipool.connection.created",
        "{connection}",
        "Connections opened",
        |s| s.created,
    )));
    instruments.push(Box::new(counter(
        "unipool.connection.create_failures",
        "{attempt}",
        "Connect attempts that failed",
        |s| s.create_failures,
    )));
    let r = registry.clone();
    instruments.push(Box::new(
        meter
            .u64_observable_counter("unipool.connection.closed")
            .with_unit("{connection}")
            .with_description("Connections closed, by reason")
            .with_callback(move |o| {
                for p in r.stats() {
                    let s = &p.stats;
                    for (reason, n) in [
                        ("broken", s.closed_broken),
                        ("idle", s.closed_idle),
                        ("lifetime", s.closed_lifetime),
                        ("check_failed", s.closed_check_failed),
                        ("evicted", s.closed_evicted),
                    ] {
                        o.observe(
                            n,
                            &[
                                KeyValue::new(POOL, p.name.clone()),
                                KeyValue::new("unipool.close.reason", reason),
                            ],
                        );
                    }
                }
            })
            .build(),
    ));
    let r = registry.clone();
    instruments.push(Box::new(
        meter
            .f64_observable_gauge("unipool.connection.reuse_ratio")
            .with_unit("1")
            .with_description("Checkouts that reused a connection, over all checkouts")
            .with_callback(move |o| {
                for p in r.stats() {
                    o.observe(p.stats.reuse_rate, &[KeyValue::new(POOL, p.name.clone())]);
                }
            })
            .build(),
    ));
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

/// Which of a pool's histograms.
#[derive(Clone, Copy)]
pub(crate) enum Which {
    Create,
    Wait,
    Use,
}
