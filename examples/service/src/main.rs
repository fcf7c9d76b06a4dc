//! A small service with every kind of pool from one configuration: SQLite, an
//! HTTP upstream (started in-process), PostgreSQL and Redis where they are
//! reachable. It prewarms, sends some traffic, prints its health and stats,
//! and shuts down cleanly.
//!
//! With `EXAMPLE_METRICS_ADDR` it serves `/metrics` and
//! `/health/connections` there (docs/metrics.md), and with
//! `EXAMPLE_SERVE_SECS` it keeps serving that long after its traffic.
//!
//! ```sh
//! cargo run -p unipool-example-service
//! UNIPOOL_MAIN_URL=postgres://me@db/app cargo run -p unipool-example-service
//! EXAMPLE_METRICS_ADDR=127.0.0.1:9464 EXAMPLE_SERVE_SECS=60 cargo run -p unipool-example-service
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use unipool::{Registry, RegistryConfig, SqlitePoolExt};

/// The configuration file, embedded so that the example runs as is.
const CONFIG: &str = include_str!("../service.toml");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let upstream = start_upstream().await?;
    let mut config = RegistryConfig::new()
        .toml(CONFIG, "service.toml")?
        .vars([("UNIPOOL_PRICES_URL", format!("http://{upstream}/"))])?;
    if let Some(path) = std::env::var_os("UNIPOOL_CONFIG") {
        config = config.file(path)?;
    }
    let registry = config.env()?.build()?;
    if let Ok(addr) = std::env::var("EXAMPLE_METRICS_ADDR") {
        let addr: std::net::SocketAddr = addr.parse()?;
        tokio::spawn(unipool::telemetry::serve(addr, registry.clone()));
        println!("== serving /metrics and /health/connections on http://{addr}");
    }

    println!("== prewarm");
    let report = registry.prewarm().await;
    print!("{report}");
    let up = |name: &str| {
        report
            .pools
            .iter()
            .any(|p| p.name == name && p.result.is_ok())
    };

    println!("== traffic");
    let shutdown = registry.shutdown_on_signal(Duration::from_secs(5))?;
    let traffic = tokio::spawn(traffic(registry.clone(), up("main"), up("cache")));
    tokio::select! {
        done = traffic => println!("{}", done??),
        report = shutdown => {
            println!("signal: closed early ({} pools closed)", report.pools.len());
            return Ok(());
        }
    }

    println!("== health");
    print!("{}", registry.health());
    println!("== stats");
    println!(
        "  {:<10} {:<8} {:>5} {:>5} {:>9} {:>8} {:>7}",
        "pool", "kind", "size", "idle", "acquired", "created", "reuse"
    );
    for p in registry.stats() {
        let s = &p.stats;
        println!(
            "  {:<10} {:<8} {:>5} {:>5} {:>9} {:>8} {:>6.1}%",
            p.name,
            p.kind,
            s.size,
            s.idle,
            s.acquired_total,
            s.created,
            s.reuse_rate * 100.0
        );
    }

    if let Some(secs) = std::env::var("EXAMPLE_SERVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        println!("== serving for {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    println!("== shutdown");
    let closed = registry.close_all(Duration::from_secs(5)).await;
    for (name, ok) in &closed.pools {
        println!(
            "  {name:<10} {}",
            if *ok { "closed" } else { "NOT closed in time" }
        );
    }
    println!("  all closed in {:?}", closed.elapsed);
    if !closed.all_closed() {
        return Err("some pool did not close in time".into());
    }
    Ok(())
}

/// Some requests of each kind at once, through the registry.
async fn traffic(
    registry: Registry,
    pg: bool,
    redis: bool,
) -> Result<String, unipool::RegistryError> {
    let notes = registry.sqlite("notes")?;
    notes
        .execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
            Vec::<String>::new(),
        )
        .await
        .map_err(|e| pool_error("notes", e))?;
    let prices = registry.http("prices")?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (notes, prices, registry) = (notes.clone(), prices.clone(), registry.clone());
        tasks.spawn(async move {
            notes
                .execute(
                    "INSERT INTO notes (body) VALUES (?1)",
                    [format!("note {i}")],
                )
                .await
                .map_err(|e| e.to_string())?;
            let resp = prices
                .send(
                    prices
                        .get(&format!("price/{i}"))
                        .map_err(|e| e.to_string())?,
                )
                .await
                .map_err(|e| e.to_string())?;
            // Code that only has a URL finds the same client.
            let same = registry
                .http_for(resp.url().as_str())
                .map_err(|e| e.to_string())?;
            assert_eq!(same.name(), "prices");
            if pg {
                let main = registry.postgres("main").map_err(|e| e.to_string())?;
                let conn = main.get().await.map_err(|e| e.to_string())?;
                conn.simple_query("SELECT 1")
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if redis {
                let cache = registry.redis("cache").await.map_err(|e| e.to_string())?;
                let _: i64 = cache
                    .cmd(redis::cmd("INCR").arg("unipool:example:hits"))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        });
    }
    let mut ok = 0;
    let mut failed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => failed.push(e),
            Err(e) => failed.push(e.to_string()),
        }
    }
    let rows = notes
        .query("SELECT count(*) FROM notes", Vec::<String>::new())
        .await
        .map_err(|e| pool_error("notes", e))?;
    let count: i64 = rows[0].get(0).map_err(|e| pool_error("notes", e))?;
    let mut line = format!(
        "  {ok} of 50 requests served: {count} notes written, {} upstream calls{}{}",
        prices.stats().requests(),
        if pg { ", a PostgreSQL query each" } else { "" },
        if redis { ", a Redis INCR each" } else { "" },
    );
    for e in failed.iter().take(3) {
        line.push_str(&format!("\n  failed: {e}"));
    }
    Ok(line)
}

fn pool_error(name: &str, e: unipool::SqlError) -> unipool::RegistryError {
    unipool::RegistryError::Pool {
        name: name.into(),
        kind: unipool::Kind::Sqlite,
        source: Box::new(e),
    }
}

/// The HTTP upstream: `/price/<n>` answers a price, after a millisecond.
async fn start_upstream() -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let body = format!("{{\"item\":\"{}\",\"price\":42}}", req.uri().path());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
