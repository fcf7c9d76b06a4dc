//! `/metrics`: a prometheus-client `Collector` that reads every pool of a
//! registry when it is scraped.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use std::sync::Arc;

use crate::registry::timings::{Distribution, PoolTimings};
use crate::{HealthStatus, PoolHealth, PoolStats, Registry, Stats};
use pool_core::Timing;

/// Every pool of `registry` in the Prometheus text format (OpenMetrics 1.0).
pub fn metrics_text(registry: &Registry) -> String {
    let mut exposition = prometheus_client::registry::Registry::default();
    exposition.register_collector(Box::new(Pools(registry.clone())));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &exposition);
    out
}

/// The collector: one snapshot of every pool per scrape.
struct Pools(Registry);

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pools")
    }
}

/// The pool-name label of the OpenTelemetry conventions, in Prometheus form.
const POOL: &str = "db_client_connection_pool_name";

/// One pool's snapshot and verdict.
struct Snapshot {
    stats: PoolStats,
    health: Option<PoolHealth>,
    timings: Option<Arc<PoolTimings>>,
}

impl Collector for Pools {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let health = self.0.health().pools;
        let pools: Vec<Snapshot> = self
            .0
            .stats()
            .into_iter()
            .map(|stats| {
                let health = health.iter().find(|h| h.name == stats.name).cloned();
                let timings = self.0.timings(&stats.name);
                Snapshot {
                    stats,
                    health,
                    timings,
                }
            })
            .collect();
        let s = |p: &Snapshot| p.stats.stats.clone();

        family(
            &mut enc,
            "db_client_connection_count",
            "Connections open now, by state",
            None,
            MetricType::Gauge,
            &pools,
            |p, m| {
                let st = s(p);
                gauge(
                    m,
                    &[
                        (POOL, &p.stats.name),
                        ("db_client_connection_state", "idle"),
                    ],
                    st.idle,
                )?;
                gauge(
                    m,
                    &[
                        (POOL, &p.stats.name),
                        ("db_client_connection_state", "used"),
                    ],
                    st.in_use,
                )
            },
        )?;
        each(
            &mut enc,
            "db_client_connection_max",
            "The most connections the pool may open",
            MetricType::Gauge,
            &pools,
            |p| Value::Gauge(s(p).max_size as i64),
        )?;
        each(
            &mut enc,
            "db_client_connection_pending_requests",
            "Callers waiting for a connection",
            MetricType::Gauge,
            &pools,
            |p| Value::Gauge(s(p).waiting as i64),
        )?;
        each(
            &mut enc,
            "db_client_connection_timeouts",
            "get() calls that ran out of acquire_timeout",
            MetricType::Counter,
            &pools,
            |p| Value::Counter(s(p).timeouts),
        )?;
        timing(
            &mut enc,
            "db_client_connection_create_time",
            "Time to open a connection",
            &pools,
            |st| st.create_time,
            |t| t.create.read(),
        )?;
        timing(
            &mut enc,
            "db_client_connection_wait_time",
            "Time get() took to hand out a connection",
            &pools,
            |st| st.wait_time,
            |t| t.wait.read(),
        )?;
        timing(
            &mut enc,
            "db_client_connection_use_time",
            "Time connections were held from checkout to return",
            &pools,
            |st| st.use_time,
            |t| t.use_.read(),
        )?;

        each(
            &mut enc,
            "unipool_acquired",
            "Connections handed out",
            MetricType::Counter,
            &pools,
            |p| Value::Counter(s(p).acquired_total),
        )?;
        each(
            &mut enc,
            "unipool_connections_created",
            "Connections opened",
            MetricType::Counter,
            &pools,
            |p| Value::Counter(s(p).created),
        )?;
        each(
            &mut enc,
            "unipool_connect_failures",
            "Connect attempts that failed",
            MetricType::Counter,
            &pools,
            |p| Value::Counter(s(p).create_failures),
        )?;
        family(
            &mut enc,
            "unipool_connections_closed",
            "Connections closed, by reason",
            None,
            MetricType::Counter,
            &pools,
            |p, m| {
                let st = s(p);
                for (reason, n) in st.closed_by_reason() {
                    ConstCounter::new(n).encode(m.encode_family(&[
                        (POOL, p.stats.name.as_str()),
                        ("reason", reason.as_str()),
                    ])?)?;
                }
                Ok(())
            },
        )?;
        each(
            &mut enc,
            "unipool_circuits_open",
            "Circuit breakers open now (sub-pools of a keyed pool count one each)",
            MetricType::Gauge,
            &pools,
            |p| Value::Gauge(s(p).circuits_open as i64),
        )?;
        each(
            &mut enc,
            "unipool_reuse_ratio",
            "Checkouts that reused a connection, over all checkouts",
            MetricType::Gauge,
            &pools,
            |p| Value::Ratio(s(p).reuse_rate),
        )?;
        each(
            &mut enc,
            "unipool_error_ratio",
            "Failed connects and timeouts over all acquisition attempts",
            MetricType::Gauge,
            &pools,
            |p| Value::Ratio(p.health.as_ref().map_or(0.0, |h| h.error_rate)),
        )?;
        family(
            &mut enc,
            "unipool_pool_up",
            "1 while the pool is healthy or degraded, 0 while unhealthy",
            None,
            MetricType::Gauge,
            &pools,
            |p, m| {
                let up = p
                    .health
                    .as_ref()
                    .is_none_or(|h| !matches!(h.status, HealthStatus::Unhealthy { .. }));
                let kind = p.stats.kind.name();
                gauge(
                    m,
                    &[(POOL, &p.stats.name), ("unipool_pool_kind", kind)],
                    usize::from(up),
                )
            },
        )?;
        #[cfg(feature = "http")]
        http_hosts(&self.0, &mut enc)?;
        fleet_budget(&self.0, &mut enc)?;
        Ok(())
    }
}

/// The fleet budget per server, as the last prewarm read it: connections
/// the fleet may open there, and what the server allows (absent while
/// unknown).
fn fleet_budget(
    registry: &Registry,
    enc: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let budget = registry.budget();
    if budget.is_empty() {
        return Ok(());
    }
    let labels = |b: &crate::ServerBudget| {
        let (address, port) = b.server.rsplit_once(':').unwrap_or((&b.server, ""));
        [
            ("server_address", address.to_string()),
            ("server_port", port.to_string()),
            ("unipool_pool_kind", b.kind.name().to_string()),
        ]
    };
    let mut m = enc.encode_descriptor(
        "unipool_fleet_connections_planned",
        "Replicas times the connections each replica's pools may open to the server",
        None,
        MetricType::Gauge,
    )?;
    for b in &budget {
        let l = labels(b);
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        gauge(&mut m, &l, b.planned())?;
    }
    let mut m = enc.encode_descriptor(
        "unipool_fleet_connections_allowed",
        "Connections the server allows (max_connections minus the reserved ones, maxclients, or server_limit)",
        None,
        MetricType::Gauge,
    )?;
    for b in &budget {
        if let Ok(a) = &b.allowed {
            let l = labels(b);
            let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            gauge(&mut m, &l, a.connections)?;
        }
    }
    Ok(())
}

enum Value {
    Gauge(i64),
    Counter(u64),
    Ratio(f64),
}

/// A metric family whose samples `f` writes.
fn family<F>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    pools: &[Snapshot],
    mut f: F,
) -> Result<(), std::fmt::Error>
where
    F: FnMut(&Snapshot, &mut MetricEncoder<'_>) -> Result<(), std::fmt::Error>,
{
    let mut m = enc.encode_descriptor(name, help, unit, kind)?;
    for p in pools {
        f(p, &mut m)?;
    }
    Ok(())
}

/// A family with one sample per pool, labelled with its name.
fn each(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    pools: &[Snapshot],
    value: impl Fn(&Snapshot) -> Value,
) -> Result<(), std::fmt::Error> {
    family(enc, name, help, None, kind, pools, |p, m| {
        let labels = [(POOL, p.stats.name.as_str())];
        let m = m.encode_family(&labels)?;
        match value(p) {
            Value::Gauge(v) => ConstGauge::new(v).encode(m),
            Value::Counter(v) => ConstCounter::new(v).encode(m),
            Value::Ratio(v) => ConstGauge::new(v).encode(m),
        }
    })
}

fn gauge(
    m: &mut MetricEncoder<'_>,
    labels: &[(&str, &str)],
    v: usize,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(v as i64).encode(m.encode_family(&labels)?)
}

/// A histogram in seconds: the registry's distribution from the pool's
/// events where it records one (SQL pools), else the snapshot's totals —
/// count and sum, one `+Inf` bucket.
fn timing(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    pools: &[Snapshot],
    of: impl Fn(&Stats) -> Timing,
    recorded: impl Fn(&PoolTimings) -> Distribution,
) -> Result<(), std::fmt::Error> {
    family(
        enc,
        name,
        help,
        Some(&Unit::Seconds),
        MetricType::Histogram,
        pools,
        |p, m| {
            let labels = [(POOL, p.stats.name.as_str())];
            let d = match &p.timings {
                Some(t) => recorded(t),
                None => {
                    let t = of(&p.stats.stats);
                    Distribution {
                        sum: t.total.as_secs_f64(),
                        count: t.count,
                        buckets: vec![(f64::INFINITY, t.count)],
                    }
                }
            };
            m.encode_family(&labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    d.sum, d.count, &d.buckets, None,
                )
        },
    )
}

/// One per-host series: name, help, type, and its value for a host.
#[cfg(feature = "http")]
type HostSeries = (
    &'static str,
    &'static str,
    MetricType,
    fn(&pool_http::HostStats) -> Value,
);

/// Per host of every HTTP pool: requests, connections opened, open
/// connections, failures, reuse and error rates (seed 002's "efficiency").
#[cfg(feature = "http")]
fn http_hosts(registry: &Registry, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let hosts: Vec<(String, pool_http::HostStats)> = registry
        .http_pools()
        .into_iter()
        .flat_map(|(name, pool)| {
            pool.stats()
                .hosts
                .into_iter()
                .map(move |h| (name.clone(), h))
        })
        .collect();
    let labels = |pool: &str, h: &pool_http::HostStats| {
        let (address, port) = h.host.rsplit_once(':').unwrap_or((&h.host, ""));
        [
            (POOL, pool.to_string()),
            ("server_address", address.to_string()),
            ("server_port", port.to_string()),
        ]
    };
    let mut m = enc.encode_descriptor(
        "http_client_open_connections",
        "Connections open to the host, by state (active: carrying a request that waits for its response)",
        None,
        MetricType::Gauge,
    )?;
    for (pool, h) in &hosts {
        let (active, idle) = h.connections_by_state();
        let [pool, address, port] = labels(pool, h);
        for (state, n) in [("active", active), ("idle", idle)] {
            let state = ("http_connection_state", state.to_string());
            let l = [pool.clone(), address.clone(), port.clone(), state];
            ConstGauge::new(n as i64).encode(m.encode_family(&l)?)?;
        }
    }
    let series: [HostSeries; 6] = [
        (
            "http_client_active_requests",
            "Requests to the host waiting for their response",
            MetricType::Gauge,
            |h| Value::Gauge(h.in_flight as i64),
        ),
        (
            "unipool_http_requests",
            "Attempts sent to the host (retries count)",
            MetricType::Counter,
            |h| Value::Counter(h.requests),
        ),
        (
            "unipool_http_connections_opened",
            "Connections opened to the host",
            MetricType::Counter,
            |h| Value::Counter(h.connections_opened),
        ),
        (
            "unipool_http_failures",
            "Attempts to the host that got no response",
            MetricType::Counter,
            |h| Value::Counter(h.failures),
        ),
        (
            "unipool_http_reuse_ratio",
            "Requests to the host that reused a connection",
            MetricType::Gauge,
            |h| Value::Ratio(h.reuse_rate),
        ),
        (
            "unipool_http_error_ratio",
            "Attempts to the host that got no response, over all",
            MetricType::Gauge,
            |h| {
                Value::Ratio(if h.requests == 0 {
                    0.0
                } else {
                    h.failures as f64 / h.requests as f64
                })
            },
        ),
    ];
    for (name, help, kind, value) in series {
        let mut m = enc.encode_descriptor(name, help, None, kind)?;
        for (pool, h) in &hosts {
            let l = labels(pool, h);
            let m = m.encode_family(&l)?;
            match value(h) {
                Value::Gauge(v) => ConstGauge::new(v).encode(m)?,
                Value::Counter(v) => ConstCounter::new(v).encode(m)?,
                Value::Ratio(v) => ConstGauge::new(v).encode(m)?,
            }
        }
    }
    Ok(())
}
