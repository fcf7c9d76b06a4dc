//! Feature `otel`: a registry's pools through the OpenTelemetry API, read
//! back through the SDK's in-memory exporter after known traffic.

use std::time::Duration;

use opentelemetry::metrics::MeterProvider;
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use unipool::RegistryConfig;
use unipool_tests::zmq_peer::{Echo, ZmqPeer};

/// What one collection holds: per metric name, its points as (attributes,
/// value, count) — the value a sum, gauge or histogram sum.
type Points = Vec<(String, Vec<KeyValue>, f64, u64)>;

fn collect(exporter: &InMemoryMetricExporter, provider: &SdkMeterProvider) -> Points {
    provider.force_flush().unwrap();
    let mut out = Points::new();
    let finished = exporter.get_finished_metrics().unwrap();
    let last = finished.last().expect("a collection");
    for scope in last.scope_metrics() {
        for m in scope.metrics() {
            let name = m.name().to_string();
            let mut push = |attrs: Vec<KeyValue>, value: f64, count: u64| {
                out.push((name.clone(), attrs, value, count));
            };
            match m.data() {
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        push(p.attributes().cloned().collect(), p.sum(), p.count());
                    }
                }
                AggregatedMetrics::F64(MetricData::Gauge(g)) => {
                    for p in g.data_points() {
                        push(p.attributes().cloned().collect(), p.value(), 1);
                    }
                }
                AggregatedMetrics::I64(MetricData::Gauge(g)) => {
                    for p in g.data_points() {
                        push(p.attributes().cloned().collect(), p.value() as f64, 1);
                    }
                }
                AggregatedMetrics::I64(MetricData::Sum(s)) => {
                    for p in s.data_points() {
                        push(p.attributes().cloned().collect(), p.value() as f64, 1);
                    }
                }
                AggregatedMetrics::U64(MetricData::Sum(s)) => {
                    for p in s.data_points() {
                        push(p.attributes().cloned().collect(), p.value() as f64, 1);
                    }
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
    }
    out
}

/// The point of `name` whose attributes include every one of `with`.
fn point<'a>(
    points: &'a Points,
    name: &str,
    with: &[(&str, &str)],
) -> &'a (String, Vec<KeyValue>, f64, u64) {
    points
        .iter()
        .find(|(n, attrs, _, _)| {
            n == name
                && with.iter().all(|(k, v)| {
                    attrs
                        .iter()
                        .any(|a| a.key.as_str() == *k && a.value.as_str() == *v)
                })
        })
        .unwrap_or_else(|| panic!("no {name} {with:?} in {points:#?}"))
}

#[tokio::test]
async fn instruments_hold_the_traffic_of_each_pool() {
    let peer = ZmqPeer::echo(Echo::Rep, Duration::ZERO);
    let web = unipool_tests::http_server::start().await;
    let registry = RegistryConfig::new()
        .toml(
            &format!(
                "[pools.bus]\nurl = \"{}\"\nkind = \"zmq\"\nsocket = \"req\"\nmax_size = 2\n\
                 [pools.api]\nurl = \"{}\"\n",
                peer.endpoint,
                web.url("/")
            ),
            "test.toml",
        )
        .unwrap()
        .build()
        .unwrap();
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let _metrics = unipool::otel::install(&registry, &provider.meter("unipool"));

    let bus = registry.zmq("bus").unwrap();
    for _ in 0..4 {
        bus.request([b"ping".to_vec()]).await.unwrap();
    }
    let api = registry.http("api").unwrap();
    for _ in 0..3 {
        api.send(api.get("ok").unwrap()).await.unwrap();
    }
    // pool-zmq's health follows its socket monitor, whose "connected"
    // event may come a moment after the first replies.
    let start = std::time::Instant::now();
    while !matches!(registry.health().status, unipool::HealthStatus::Healthy) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{}",
            registry.health()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let points = collect(&exporter, &provider);
    let pool = ("db.client.connection.pool.name", "bus");

    let (_, _, idle, _) = point(
        &points,
        "db.client.connection.count",
        &[pool, ("db.client.connection.state", "idle")],
    );
    let (_, _, used, _) = point(
        &points,
        "db.client.connection.count",
        &[pool, ("db.client.connection.state", "used")],
    );
    assert_eq!((*idle, *used), (1.0, 0.0));
    // A zmq pool is keyed by socket configuration: its max is the total's.
    assert_eq!(point(&points, "db.client.connection.max", &[pool]).2, 50.0);
    assert_eq!(
        point(&points, "db.client.connection.pending_requests", &[pool]).2,
        0.0
    );
    assert_eq!(
        point(&points, "db.client.connection.timeouts", &[pool]).2,
        0.0
    );
    assert_eq!(
        point(&points, "unipool.connection.acquired", &[pool]).2,
        4.0
    );
    assert_eq!(point(&points, "unipool.connection.created", &[pool]).2, 1.0);
    assert_eq!(
        point(&points, "unipool.connection.reuse_ratio", &[pool]).2,
        0.75
    );
    assert_eq!(
        point(
            &points,
            "unipool.pool.up",
            &[pool, ("unipool.pool.kind", "zmq")]
        )
        .2,
        1.0
    );
    // Histograms from the events: one create, four waits, four uses.
    assert_eq!(
        point(&points, "db.client.connection.create_time", &[pool]).3,
        1
    );
    assert_eq!(
        point(&points, "db.client.connection.wait_time", &[pool]).3,
        4
    );
    let (_, _, used_sum, uses) = point(&points, "db.client.connection.use_time", &[pool]);
    assert_eq!(*uses, 4);
    assert!(*used_sum >= 0.0);

    // Per host of the HTTP pool.
    let port = web.host().rsplit_once(':').unwrap().1.to_string();
    let host = [
        ("db.client.connection.pool.name", "api"),
        ("server.address", "127.0.0.1"),
        ("server.port", port.as_str()),
    ];
    assert_eq!(point(&points, "unipool.http.requests", &host).2, 3.0);
    assert_eq!(
        point(&points, "unipool.http.connections_opened", &host).2,
        1.0
    );
    let open = |state| {
        let mut with = host.to_vec();
        with.push(("http.connection.state", state));
        point(&points, "http.client.open_connections", &with).2
    };
    assert_eq!((open("idle"), open("active")), (1.0, 0.0));
    assert_eq!(point(&points, "http.client.active_requests", &host).2, 0.0);
}
