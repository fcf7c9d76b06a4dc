//! pool-http against real in-process HTTP servers on 127.0.0.1.

use std::time::{Duration, Instant};

use pool_http::{HttpConfig, HttpError, HttpPool, HttpRegistry, RetryPolicy};
use unipool_tests::http_server;

fn config(base: &str) -> HttpConfig {
    HttpConfig::with_base_url(base).unwrap()
}

#[tokio::test]
async fn the_same_service_is_the_same_client() {
    let server = http_server::start().await;
    let registry = HttpRegistry::new();
    let a = registry
        .service("api", || config(&server.url("/")))
        .unwrap();
    let b = registry
        .service("api", || panic!("must not build the service twice"))
        .unwrap();
    a.send(a.get("ok").unwrap()).await.unwrap();
    b.send(b.get("ok").unwrap()).await.unwrap();
    // Shared stats and one shared connection pool: the second request reused
    // the first one's connection.
    assert_eq!(a.stats().requests(), 2);
    assert_eq!(server.seen.connections(), 1);
    let other = registry
        .service("other", || config(&server.url("/")))
        .unwrap();
    other.send(other.get("ok").unwrap()).await.unwrap();
    assert_eq!(
        server.seen.connections(),
        2,
        "another service, another client"
    );
    assert_eq!(registry.all().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_and_total_limits_hold_under_500_concurrent_requests() {
    let server = http_server::start().await;
    let pool = HttpPool::new(
        "limited",
        HttpConfig {
            max_in_flight: 40,
            max_in_flight_per_host: 12,
            ..config(&server.url("/"))
        },
    )
    .unwrap();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move { p.send(p.get("slow/5").unwrap()).await.map(|r| r.status()) })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_success());
    }
    assert!(
        server.seen.max_in_flight() <= 12,
        "per-host limit broken: {}",
        server.seen.max_in_flight()
    );
    assert!(
        server.seen.max_in_flight() >= 8,
        "limit not used: {}",
        server.seen.max_in_flight()
    );
    assert_eq!(server.seen.hits("/slow/5"), 500);
    assert_eq!(pool.stats().in_flight, 0);

    // The total limit, over two hosts: one fresh server under two names, so
    // its in-flight count is the sum over both hosts.
    let server = http_server::start().await;
    let pool = HttpPool::new(
        "total",
        HttpConfig {
            max_in_flight: 10,
            max_in_flight_per_host: 64,
            ..HttpConfig::default()
        },
    )
    .unwrap();
    let port = server.addr.port();
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let p = pool.clone();
            let host = if i % 2 == 0 { "127.0.0.1" } else { "localhost" };
            let url = format!("http://{host}:{port}/slow/5");
            tokio::spawn(async move { p.send(p.get(&url).unwrap()).await.map(|r| r.status()) })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_success());
    }
    assert!(
        server.seen.max_in_flight() <= 10,
        "total limit broken: {}",
        server.seen.max_in_flight()
    );
    assert_eq!(pool.stats().hosts.len(), 2);
}

#[tokio::test]
async fn a_full_limit_gives_a_typed_error_after_acquire_timeout() {
    let server = http_server::start().await;
    let pool = HttpPool::new(
        "tight",
        HttpConfig {
            max_in_flight_per_host: 1,
            acquire_timeout: Duration::from_millis(100),
            ..config(&server.url("/"))
        },
    )
    .unwrap();
    let slow = {
        let p = pool.clone();
        tokio::spawn(async move { p.send(p.get("slow/500").unwrap()).await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = pool.send(pool.get("ok").unwrap()).await.unwrap_err();
    match &err {
        HttpError::LimitTimeout {
            scope, limit, host, ..
        } => {
            assert_eq!((*scope, *limit), ("per-host", 1));
            assert_eq!(host, &server.host());
        }
        other => panic!("expected LimitTimeout, got {other}"),
    }
    slow.await.unwrap().unwrap();
}

#[tokio::test]
async fn keep_alive_traffic_reuses_connections_and_the_count_is_exact() {
    let server = http_server::start().await;
    let pool = HttpPool::new("reuse", config(&server.url("/"))).unwrap();
    for _ in 0..100 {
        let r = pool.send(pool.get("ok").unwrap()).await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
    }
    let s = pool.stats();
    let h = s.host(&server.host()).unwrap();
    assert_eq!(h.requests, 100);
    assert_eq!(h.connections_opened as usize, server.seen.connections());
    assert_eq!(h.connections_opened, 1);
    assert_eq!(h.open_connections, 1);
    assert!(h.reuse_rate >= 0.99, "{}", h.reuse_rate);
    assert_eq!(h.connect_time, None, "not measured unless asked for");
    // Concurrency opens more connections, and the count still matches the server.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move { p.send(p.get("slow/20").unwrap()).await.map(drop) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let opened = pool
        .stats()
        .host(&server.host())
        .unwrap()
        .connections_opened;
    assert_eq!(opened as usize, server.seen.connections());
    assert!(opened > 1);
    assert_eq!(pool.stats().open_connections, opened as usize);
}

// Real time: the figure is read off the real clock, and paused time would let
// tokio jump past the connect and request timeouts while the socket works.
#[tokio::test]
async fn connections_unused_past_the_idle_timeout_are_no_longer_counted_open() {
    let server = http_server::start().await;
    let pool = HttpPool::new(
        "idle",
        HttpConfig {
            pool_idle_timeout: Duration::from_millis(100),
            ..config(&server.url("/"))
        },
    )
    .unwrap();
    pool.send(pool.get("ok").unwrap()).await.unwrap();
    assert_eq!(pool.stats().open_connections, 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // reqwest has closed it; the figure follows without a request.
    assert_eq!(pool.stats().open_connections, 0);
    pool.send(pool.get("ok").unwrap()).await.unwrap();
    let s = pool.stats();
    assert_eq!(s.open_connections, 1);
    assert_eq!(
        s.connections_opened() as usize,
        server.seen.connections(),
        "the new connection is counted"
    );
}

#[tokio::test]
async fn connect_time_is_measured_when_asked_for() {
    let server = http_server::start().await;
    let pool = HttpPool::new(
        "timed",
        HttpConfig {
            measure_connect_time: true,
            ..config(&server.url("/"))
        },
    )
    .unwrap();
    for _ in 0..3 {
        pool.send(pool.get("ok").unwrap()).await.unwrap();
    }
    let s = pool.stats();
    let h = s.host(&server.host()).unwrap();
    // Zero if reqwest's destination could not be read (counted as "unknown").
    let took = h.connect_time.expect("measured");
    assert!(
        took > Duration::ZERO && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(h.connections_opened, 1);
}

#[tokio::test]
async fn http2_multiplexes_concurrent_requests_on_one_connection() {
    let server = http_server::start().await;
    let pool = HttpPool::new(
        "h2c",
        HttpConfig {
            http2_prior_knowledge: true,
            ..config(&server.url("/"))
        },
    )
    .unwrap();
    // A burst on a cold pool: the first request opens the one connection, the
    // others wait for it instead of racing to open their own.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(
                async move { p.send(p.get("slow/50").unwrap()).await.map(|r| r.version()) },
            )
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap(),
            pool_http::reqwest::Version::HTTP_2
        );
    }
    assert_eq!(server.seen.connections(), 1);
    assert!(
        server.seen.max_in_flight() > 10,
        "streams were not concurrent"
    );
    assert_eq!(pool.stats().connections_opened(), 1);
}

#[tokio::test]
async fn retries_honour_retry_after_and_never_repeat_a_post() {
    let server = http_server::start().await;
    let pool = HttpPool::new("retry", config(&server.url("/"))).unwrap();
    let start = Instant::now();
    let r = pool.send(pool.get("busy/1/503").unwrap()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 not honoured"
    );
    assert_eq!(server.seen.hits("/busy/1/503"), 2);
    assert_eq!(pool.stats().retries, 1);

    let r = pool.send(pool.get("busy/1/429").unwrap()).await.unwrap();
    assert_eq!(r.status(), 200);

    // A POST is not idempotent: one attempt, the 503 comes back as is.
    let r = pool
        .send(pool.post("busy/5/503").unwrap().body("x"))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(server.seen.hits("/busy/5/503"), 1);

    // ...unless the caller says it is safe.
    let r = pool
        .send_retryable(pool.post("busy/1/503").unwrap().body("x"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_returns_the_response() {
    let server = http_server::start().await;
    let pool = HttpPool::new(
        "budget",
        HttpConfig {
            retry: RetryPolicy {
                budget: Duration::from_millis(500),
                ..RetryPolicy::default()
            },
            ..config(&server.url("/"))
        },
    )
    .unwrap();
    let start = Instant::now();
    let r = pool.send(pool.get("busy/1/503").unwrap()).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn the_keep_alive_race_does_not_reach_an_idempotent_caller() {
    let server = http_server::start_one_shot().await;
    let pool = HttpPool::new("race", config(&server.url("/"))).unwrap();
    for _ in 0..5 {
        pool.send(pool.get("x").unwrap()).await.unwrap();
        // The server closes its side now, while the client keeps it as idle.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.seen.hits("one-shot"), 5);
}

#[tokio::test]
async fn a_request_past_its_timeout_is_a_typed_timeout() {
    let server = http_server::start().await;
    let pool = HttpPool::new(
        "timeout",
        HttpConfig {
            request_timeout: Duration::from_millis(100),
            ..config(&server.url("/"))
        },
    )
    .unwrap();
    let start = Instant::now();
    let err = pool.send(pool.get("slow/2000").unwrap()).await.unwrap_err();
    assert!(matches!(err, HttpError::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_server_that_is_down_is_a_typed_connect_error_within_the_connect_timeout() {
    let port = unipool_tests::free_port();
    let pool = HttpPool::new(
        "down",
        HttpConfig {
            connect_timeout: Duration::from_secs(1),
            retry: RetryPolicy {
                max_attempts: 2,
                base_backoff: Duration::from_millis(10),
                ..RetryPolicy::default()
            },
            ..config(&format!("http://127.0.0.1:{port}/"))
        },
    )
    .unwrap();
    let start = Instant::now();
    let err = pool.send(pool.get("ok").unwrap()).await.unwrap_err();
    assert!(matches!(err, HttpError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains("Connection refused"),
        "the cause is named: {err}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    let s = pool.stats();
    assert_eq!(s.retries, 1, "a connect error of a GET is retried");
    let h = s.host(&format!("127.0.0.1:{port}")).unwrap();
    assert_eq!((h.connect_failures, h.connections_opened), (2, 0));
}

#[test]
fn the_blocking_facade_works_outside_async() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(http_server::start());
    let pool = pool_http::BlockingHttpPool::new("blocking", config(&server.url("/"))).unwrap();
    let r = pool.get("ok").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    assert_eq!(pool.pool().stats().requests(), 1);
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let pool = HttpPool::new(
        "secret",
        HttpConfig {
            auth: Some(pool_http::Auth::Bearer("tok-123-secret".into())),
            ..HttpConfig::with_base_url("http://user:pw-secret@127.0.0.1:1/").unwrap()
        },
    )
    .unwrap();
    let text = format!("{pool:?}");
    assert!(
        !text.contains("tok-123-secret") && !text.contains("pw-secret"),
        "{text}"
    );
}

#[tokio::test]
async fn tls_is_verified_unless_the_certificate_is_trusted_and_alpn_picks_http2() {
    let (cert, key) = http_server::self_signed();
    let server = http_server::start_tls(&cert, &key).await;
    let url = format!("https://localhost:{}/", server.addr.port());

    let strict = HttpPool::new("strict", config(&url)).unwrap();
    let err = strict.send(strict.get("ok").unwrap()).await.unwrap_err();
    assert!(matches!(err, HttpError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains("certificate"),
        "the cause is named: {err}"
    );
    assert_eq!(server.seen.hits("/ok"), 0);

    let trusting = HttpPool::new(
        "trusting",
        HttpConfig {
            root_certificates_pem: vec![cert],
            ..config(&url)
        },
    )
    .unwrap();
    let r = trusting.send(trusting.get("ok").unwrap()).await.unwrap();
    assert_eq!(
        r.version(),
        pool_http::reqwest::Version::HTTP_2,
        "ALPN did not pick h2"
    );
    assert_eq!(r.text().await.unwrap(), "ok");
}

/// `HostStats::in_flight` (OpenTelemetry's `http.client.active_requests`):
/// the requests to a host waiting for their response, also when their caller
/// gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_counted_per_host() {
    let server = http_server::start().await;
    let pool = HttpPool::new("inflight", config(&server.url("/"))).unwrap();
    let in_flight = |pool: &HttpPool| pool.stats().hosts.first().map_or(0, |h| h.in_flight);
    pool.send(pool.get("/ok").unwrap()).await.unwrap();
    assert_eq!(in_flight(&pool), 0);
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.send(pool.get("/slow/400").unwrap()).await })
        })
        .collect();
    let start = Instant::now();
    while in_flight(&pool) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            pool.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One caller gives up: its request no longer counts.
    slow[0].abort();
    let start = Instant::now();
    while in_flight(&pool) != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            pool.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for h in slow.into_iter().skip(1) {
        h.await.unwrap().unwrap();
    }
    assert_eq!(in_flight(&pool), 0);
}
