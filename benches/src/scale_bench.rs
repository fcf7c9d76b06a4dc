//! `bench scale` (opt-in: `cargo xtask bench scale`): a fleet against one
//! server, and a Redis Cluster.
//!
//! - **PostgreSQL**: 50 simulated replicas — 50 `Registry`s in this process,
//!   one pool of 10 each — against a throwaway PostgreSQL with
//!   `max_connections` 100: directly (500 planned connections, most refused),
//!   and through a throwaway PgBouncer in transaction mode with 20 server
//!   connections (`pgbouncer = true`). Four tasks per replica run an indexed
//!   read for a fixed time; a failed call backs off 10 ms, as a caller
//!   retrying would. Also the single-process cost of `pgbouncer = true`
//!   (docs/sql.md).
//! - **Redis Cluster**: pool-redis's `ClusterPool` shared lane against
//!   deadpool-redis's cluster pool on a throwaway 3-primary cluster, `GET`s
//!   over keys on every node.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pool_redis::{ClusterPool, RedisConfig};
use pool_sql::PgPoolExt;
use tokio_postgres::types::Type;
use unipool::{Registry, RegistryConfig};
use unipool_tests::pg::ThrowawayPg;
use unipool_tests::pgbouncer::{Settings, ThrowawayPgBouncer};
use unipool_tests::redis_cluster::ThrowawayCluster;

use crate::report::{ms, Report, Row, Run};

const REPLICAS: usize = 50;
const POOL: usize = 10;
const TASKS_PER_REPLICA: usize = 4;
const ROWS: i32 = 1_000;

#[derive(Clone, Copy, PartialEq)]
enum Query {
    /// `query` with a parameter: the statement cache, or statement-free
    /// under `pgbouncer = true`.
    Untyped,
    /// `query_typed`: one unnamed round trip.
    Typed,
}

/// One fleet run's outcome.
struct Fleet {
    run: Run,
    ok: usize,
    errors: usize,
    /// Connects the pools attempted and the server refused.
    refused: u64,
    first_error: Option<String>,
}

fn fleet_registry(url: &str, pgbouncer: bool) -> Result<Registry, String> {
    RegistryConfig::new()
        .vars([
            ("UNIPOOL_MAIN_URL", url.to_string()),
            ("UNIPOOL_MAIN_MAX_SIZE", POOL.to_string()),
            ("UNIPOOL_MAIN_ACQUIRE_TIMEOUT", "2s".to_string()),
            ("UNIPOOL_MAIN_CONNECT_TIMEOUT", "2s".to_string()),
            ("UNIPOOL_MAIN_PGBOUNCER", pgbouncer.to_string()),
        ])
        .and_then(RegistryConfig::build)
        .map_err(|e| e.to_string())
}

/// `replicas` registries, each with `tasks` tasks reading for `secs`.
async fn fleet(
    url: &str,
    pgbouncer: bool,
    replicas: usize,
    tasks: usize,
    query: Query,
    secs: f64,
) -> Result<Fleet, String> {
    let registries: Vec<Registry> = (0..replicas)
        .map(|_| fleet_registry(url, pgbouncer))
        .collect::<Result<_, _>>()?;
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut handles = Vec::new();
    for (r, registry) in registries.iter().enumerate() {
        let pool = registry.postgres("main").map_err(|e| e.to_string())?;
        for t in 0..tasks {
            let pool = pool.clone();
            handles.push(tokio::spawn(async move {
                let (mut lat, mut errors, mut first) = (Vec::new(), 0usize, None);
                let mut id = ((r * tasks + t) as i32 * 7919) % ROWS;
                while Instant::now() < until {
                    id = (id + 1) % ROWS;
                    let s = Instant::now();
                    let result = match query {
                        Query::Untyped => {
                            pool.query("SELECT v FROM items WHERE id = $1", &[&id])
                                .await
                        }
                        Query::Typed => {
                            pool.query_typed(
                                "SELECT v FROM items WHERE id = $1",
                                &[(&id, Type::INT4)],
                            )
                            .await
                        }
                    };
                    match result {
                        Ok(rows) if rows.len() == 1 => lat.push(s.elapsed()),
                        Ok(rows) => panic!("{} rows for id {id}", rows.len()),
                        Err(e) => {
                            errors += 1;
                            first.get_or_insert_with(|| e.to_string());
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                (lat, errors, first)
            }));
        }
    }
    let (mut all, mut errors, mut first_error) = (Vec::new(), 0, None);
    for h in handles {
        let (lat, e, first) = h.await.map_err(|e| e.to_string())?;
        all.extend(lat);
        errors += e;
        if first_error.is_none() {
            first_error = first;
        }
    }
    let elapsed = start.elapsed();
    let mut refused = 0;
    for registry in &registries {
        refused += registry
            .postgres("main")
            .map_err(|e| e.to_string())?
            .stats()
            .create_failures;
        registry.close_all(Duration::from_secs(5)).await;
    }
    let ok = all.len();
    Ok(Fleet {
        run: Run::from_latencies(all, elapsed),
        ok,
        errors,
        refused,
        first_error,
    })
}

async fn seed(url: &str) -> Result<(), String> {
    let registry = fleet_registry(url, false)?;
    let pool = registry.postgres("main").map_err(|e| e.to_string())?;
    pool.execute("DROP TABLE IF EXISTS items", &[])
        .await
        .map_err(|e| e.to_string())?;
    pool.execute("CREATE TABLE items (id int PRIMARY KEY, v text)", &[])
        .await
        .map_err(|e| e.to_string())?;
    pool.execute(
        &format!(
            "INSERT INTO items SELECT i, 'item ' || i FROM generate_series(0, {}) i",
            ROWS - 1
        ),
        &[],
    )
    .await
    .map_err(|e| e.to_string())?;
    registry.close_all(Duration::from_secs(5)).await;
    Ok(())
}

fn push(report: &mut Report, case: &str, pool: &'static str, f: &Fleet) {
    for (metric, value) in [
        ("ops_per_sec", f.run.rps),
        ("p50_ms", ms(f.run.p50)),
        ("p99_ms", ms(f.run.p99)),
        ("errors", f.errors as f64),
        ("connects_refused", f.refused as f64),
    ] {
        report.rows.push(Row {
            suite: "scale",
            case: case.to_string(),
            pool,
            metric,
            value,
        });
    }
}

async fn postgres(report: &mut Report, table: &mut String) -> Result<(), String> {
    let quick = report.effort.is_quick();
    let secs = if quick {
        2.0
    } else {
        report.effort.pick(2.0, 5.0, 15.0)
    };
    report.cell("PostgreSQL (max_connections 100) and PgBouncer (20 server connections)");
    let pg = ThrowawayPg::start_with(None, 100);
    let bouncer = ThrowawayPgBouncer::start(Settings {
        upstream_port: pg.port,
        pool_size: 20,
        max_client_conn: 1000,
        ..Settings::default()
    });
    let direct = pg.url();
    let through = format!("{}?pgbouncer=true", bouncer.url("postgres"));
    seed(&direct).await?;

    let mut rows = Vec::new();
    for (name, key, url, pgbouncer, query) in [
        (
            "directly (statement cache)",
            "direct",
            &direct,
            false,
            Query::Untyped,
        ),
        (
            "through PgBouncer, `query` (pgbouncer = true)",
            "pgbouncer-query",
            &through,
            true,
            Query::Untyped,
        ),
        (
            "through PgBouncer, `query_typed`",
            "pgbouncer-typed",
            &through,
            true,
            Query::Typed,
        ),
    ] {
        report.cell(format!("fleet: {name}"));
        let f = fleet(url, pgbouncer, REPLICAS, TASKS_PER_REPLICA, query, secs).await?;
        push(report, "fleet-50x10", key, &f);
        rows.push((name, f));
    }
    let _ = writeln!(
        table,
        "## scale\n\n### A fleet of 50 replicas against PostgreSQL\n\n\
         {REPLICAS} registries in one process, one pool of {POOL} each ({} planned connections), \
         {TASKS_PER_REPLICA} tasks per replica reading one row by primary key for {secs} s; a failed \
         call backs off 10 ms. A throwaway PostgreSQL with `max_connections` 100; PgBouncer 1.18 in \
         transaction mode with `default_pool_size` 20 in front of it.\n\n\
         | path | queries/s | p50 ms | p99 ms | calls ok | calls failed | connects refused | first error |\n\
         |---|---:|---:|---:|---:|---:|---:|---|",
        REPLICAS * POOL
    );
    for (name, f) in &rows {
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} |",
            f.run.rps,
            ms(f.run.p50),
            ms(f.run.p99),
            f.ok,
            f.errors,
            f.refused,
            f.first_error.as_deref().map_or("–".to_string(), |e| {
                pool_core::util::clip(e).replace('|', "/")
            })
        );
    }

    // What `pgbouncer = true` costs one process, on the server directly.
    let mut cost = Vec::new();
    for (name, key, pgbouncer, query) in [
        ("statement cache (default)", "cache", false, Query::Untyped),
        (
            "`pgbouncer = true`, `query`",
            "statement-free-query",
            true,
            Query::Untyped,
        ),
        (
            "`pgbouncer = true`, `query_typed`",
            "statement-free-typed",
            true,
            Query::Typed,
        ),
    ] {
        report.cell(format!("one process: {name}"));
        let f = fleet(&direct, pgbouncer, 1, 8, query, secs).await?;
        push(report, "one-process", key, &f);
        cost.push((name, f));
    }
    let base = cost[0].1.run.rps;
    let _ = writeln!(
        table,
        "\n### What `pgbouncer = true` costs one process\n\n\
         One pool of {POOL}, 8 tasks, the same read for {secs} s, on the server directly.\n\n\
         | helper | queries/s | p50 ms | p99 ms | vs the statement cache |\n\
         |---|---:|---:|---:|---:|"
    );
    for (name, f) in &cost {
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.3} | {:.3} | {:.2}x |",
            f.run.rps,
            ms(f.run.p50),
            ms(f.run.p99),
            f.run.rps / base
        );
    }
    drop(bouncer);
    drop(pg);
    Ok(())
}

/// `total` GETs over `tasks` tasks through `get`.
async fn drive_gets<F, Fut>(tasks: usize, total: usize, get: F) -> Run
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<String>> + Send,
{
    let per = total / tasks;
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let get = get.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let key = format!("key:{}", (t * per + i) % 1000);
                let s = Instant::now();
                assert!(get(key).await.is_some());
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("task"));
    }
    Run::from_latencies(all, start.elapsed())
}

async fn cluster(report: &mut Report, table: &mut String) -> Result<(), String> {
    let quick = report.effort.is_quick();
    report.cell("Redis Cluster: 3 primaries");
    let cluster = ThrowawayCluster::start(3, 0, Duration::from_secs(5));
    let url = cluster.url();
    let ours = ClusterPool::connect(&url, RedisConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    for i in 0..1000 {
        ours.cmd::<()>(redis::cmd("SET").arg(format!("key:{i}")).arg(i))
            .await
            .map_err(|e| e.to_string())?;
    }
    let urls: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}", n.port))
        .collect();
    let theirs = deadpool_redis::cluster::Config::from_urls(urls)
        .create_pool(Some(deadpool_redis::cluster::Runtime::Tokio1))
        .map_err(|e| e.to_string())?;
    let (tasks, total, runs) = if quick {
        (32, 20_000, 1)
    } else {
        (32, 100_000, report.effort.pick(1, 5, 9))
    };
    let ours_get = {
        let ours = ours.clone();
        move |key: String| {
            let ours = ours.clone();
            async move {
                ours.cmd::<Option<String>>(redis::cmd("GET").arg(key))
                    .await
                    .ok()
                    .flatten()
            }
        }
    };
    let theirs_get = {
        let theirs = theirs.clone();
        move |key: String| {
            let theirs = theirs.clone();
            async move {
                let mut c = theirs.get().await.ok()?;
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<String>>(&mut c)
                    .await
                    .ok()
                    .flatten()
            }
        }
    };
    report.cell("cluster warm-up");
    drive_gets(tasks, total / 10, ours_get.clone()).await;
    drive_gets(tasks, total / 10, theirs_get.clone()).await;
    let (mut ov, mut tv, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        report.cell(format!("cluster GET run {}/{runs}", i + 1));
        let o = drive_gets(tasks, total, ours_get.clone()).await;
        let t = drive_gets(tasks, total, theirs_get.clone()).await;
        ratios.push(o.rps / t.rps);
        ov.push(o);
        tv.push(t);
    }
    let spread = crate::report::Spread::of(&mut ratios);
    report.spread_rows(
        "scale",
        "cluster-get",
        "pool-redis",
        crate::report::RATIO_BEST,
        spread,
    );
    let (o, t) = (Run::median_of(ov), Run::median_of(tv));
    let _ = writeln!(
        table,
        "\n### Redis Cluster: the shared lane against deadpool-redis's cluster pool\n\n\
         A throwaway cluster of 3 primaries on this machine, 1000 keys over every node, {tasks} \
         tasks, {total} `GET`s per run, median of {runs} runs (the two back to back); pool-redis: \
         `ClusterPool` with its defaults (one multiplexed cluster connection per core); \
         deadpool-redis 0.23: `cluster::Config::from_urls` with its defaults.\n\n\
         | pool | GETs/s | p50 ms | p99 ms | pool-redis vs it |\n|---|---:|---:|---:|---:|"
    );
    for (name, key, r, ratio) in [
        (
            "pool-redis `ClusterPool` (shared lane)",
            "pool-redis",
            &o,
            String::new(),
        ),
        (
            "deadpool-redis cluster pool",
            "deadpool-redis",
            &t,
            spread.times(),
        ),
    ] {
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.3} | {:.3} | {ratio} |",
            r.rps,
            ms(r.p50),
            ms(r.p99)
        );
        for (metric, value) in [
            ("ops_per_sec", r.rps),
            ("p50_ms", ms(r.p50)),
            ("p99_ms", ms(r.p99)),
        ] {
            report.rows.push(Row {
                suite: "scale",
                case: "cluster-get".into(),
                pool: key,
                metric,
                value,
            });
        }
    }
    drop(theirs);
    drop(cluster);
    Ok(())
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let mut table = String::new();
    let rt = crate::report::runtime()?;
    rt.block_on(postgres(report, &mut table))?;
    rt.block_on(cluster(report, &mut table))?;
    report.finish(table);
    Ok(())
}
