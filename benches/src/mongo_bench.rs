//! `bench mongo`: pool-mongo's shared client against a client per operation
//! (the floor, the seeds' anti-pattern) and against a bare shared driver
//! client without unipool's event tracking (the ceiling), `find_one` by
//! `_id`, 32 tasks, against a throwaway SecantusDB server (the MongoDB wire
//! protocol; `unipool_tests::mongo_server`). Connections opened are read from
//! the server (`serverStatus.connections.totalCreated`), so they include the
//! driver's monitoring connections.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::{Client, Collection};
use pool_core::Pool;
use pool_mongo::{MongoConfig, MongoPool};
use unipool_tests::mongo_server::Secantus;

use crate::report::{ms, Report, Row, Run, Spread, RATIO};

const TASKS: usize = 32;
const DOCS: i64 = 1_000;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Pool,
    Bare,
    PerOperation,
}

/// Connections the server has accepted so far (`serverStatus`).
pub(crate) async fn server_connections(admin: &Client) -> Result<i64, String> {
    let status = admin
        .database("admin")
        .run_command(doc! { "serverStatus": 1 })
        .await
        .map_err(|e| e.to_string())?;
    let c = status
        .get_document("connections")
        .map_err(|e| e.to_string())?;
    c.get_i64("totalCreated")
        .or_else(|_| c.get_i32("totalCreated").map(i64::from))
        .map_err(|e| e.to_string())
}

/// `total` `find_one`s over `TASKS` tasks with one kind of client.
async fn drive(kind: Kind, uri: &str, pool: &MongoPool, bare: &Client, total: usize) -> Run {
    let per = (total / TASKS).max(1);
    let pooled: Collection<Document> = pool
        .default_database()
        .await
        .expect("database")
        .collection("items");
    let bare: Collection<Document> = bare.database("unipool").collection("items");
    Run::measure(TASKS, |i| {
        let (pooled, bare, uri) = (pooled.clone(), bare.clone(), uri.to_string());
        async move {
            let mut lat = Vec::with_capacity(per);
            for n in 0..per {
                let id = ((i * per + n) as i64 * 7919) % DOCS;
                let s = Instant::now();
                let found = match kind {
                    Kind::Pool => pooled.find_one(doc! { "_id": id }).await,
                    Kind::Bare => bare.find_one(doc! { "_id": id }).await,
                    Kind::PerOperation => {
                        // What the code it replaces did: a client per call,
                        // shut down after it (dropping it instead leaves its
                        // monitors to wind down in the background).
                        let client = Client::with_uri_str(&uri).await.expect("client");
                        let found = client
                            .database("unipool")
                            .collection::<Document>("items")
                            .find_one(doc! { "_id": id })
                            .await;
                        client.shutdown().immediate(true).await;
                        found
                    }
                };
                assert!(found.expect("find_one").is_some(), "document {id}");
                lat.push(s.elapsed());
            }
            lat
        }
    })
    .await
}

async fn bench(quick: bool, report: &mut Report, table: &mut String) -> Result<(), String> {
    let server = Secantus::try_start()?;
    let uri = server.url();
    // The server (Python) is the bottleneck at about 1 600 operations/s on
    // two cores: runs are short and few. The per-run ratios to the ceiling
    // stay within about ±7 %, so the default run's are a second long.
    let (total, runs) = report.effort.pick((800, 1), (2_000, 5), (4_000, 9));
    let floor_total = if quick { 96 } else { 384 };
    let mut config = MongoConfig::default();
    config.pool.max_size = TASKS;
    let pool = MongoPool::named("bench", &uri, config).map_err(|e| e.to_string())?;
    let bare = Client::with_uri_str(&uri)
        .await
        .map_err(|e| e.to_string())?;
    let items: Collection<Document> = bare.database("unipool").collection("items");
    let seed: Vec<Document> = (0..DOCS)
        .map(|i| doc! { "_id": i, "name": format!("item {i}"), "n": i })
        .collect();
    items.insert_many(seed).await.map_err(|e| e.to_string())?;
    report.cell("warm-up");
    drive(Kind::Pool, &uri, &pool, &bare, total / 10).await;
    drive(Kind::Bare, &uri, &pool, &bare, total / 10).await;

    let (mut pv, mut bv, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut pool_opened = 0;
    for i in 0..runs {
        report.cell(format!("find_one run {}/{runs}", i + 1));
        let before = server_connections(&bare).await?;
        let p = drive(Kind::Pool, &uri, &pool, &bare, total).await;
        pool_opened += server_connections(&bare).await? - before;
        let b = drive(Kind::Bare, &uri, &pool, &bare, total).await;
        ratios.push(p.rps / b.rps);
        pv.push(p);
        bv.push(b);
    }
    let vs_ceiling = Spread::of(&mut ratios);
    report.spread_rows("mongo", "find-one", "pool-mongo", RATIO, vs_ceiling);
    let (p, b) = (Run::median_of(pv), Run::median_of(bv));

    report.cell("cold pool (built and hit at once)");
    let before = server_connections(&bare).await?;
    let mut config = MongoConfig::default();
    config.pool.max_size = TASKS;
    let cold_pool = MongoPool::named("cold", &uri, config).map_err(|e| e.to_string())?;
    let cold_total = total / 4;
    let c = drive(Kind::Pool, &uri, &cold_pool, &bare, cold_total).await;
    let cold_opened = server_connections(&bare).await? - before;
    cold_pool.close(Duration::from_secs(5)).await;

    report.cell("client per operation (floor)");
    let before = server_connections(&bare).await?;
    let f = drive(Kind::PerOperation, &uri, &pool, &bare, floor_total).await;
    let floor_opened = server_connections(&bare).await? - before;
    let per_1000 = |opened: i64, ops: usize| opened as f64 * 1000.0 / ops as f64;
    let pool_per_1000 = per_1000(pool_opened, total * runs);
    let cold_per_1000 = per_1000(cold_opened, cold_total);
    let floor_per_1000 = per_1000(floor_opened, floor_total);
    let vs_floor = p.rps / f.rps;
    let stats = pool.stats();

    let _ = writeln!(
        table,
        "## mongo\n\n`find_one` by `_id` over {DOCS} documents on a throwaway SecantusDB server \
         (MongoDB wire protocol, Python), {TASKS} tasks, {total} operations per run, median of {runs} \
         runs (the floor: {floor_total} operations, a new `Client` each, shut down after it; \
         cold: a new pool hit at once by all tasks, {cold_total} operations). \
         pool-mongo vs the ceiling (a bare shared driver `Client`, no event tracking): median of \
         the per-run ratios, the two run back to back. Connections opened per 1000 operations \
         are counted by the server (`serverStatus`), monitoring connections included. \
         pool-mongo's reuse rate over the run: {:.4}.\n\n\
         | client | ops/s | p50 ms | p99 ms | connections opened per 1000 ops | pool-mongo vs it |\n\
         |---|---:|---:|---:|---:|---:|",
        stats.reuse_rate
    );
    for (name, key, r, opened, ratio) in [
        (
            "pool-mongo (shared client)",
            "pool-mongo",
            &p,
            Some(pool_per_1000),
            String::new(),
        ),
        (
            "pool-mongo, cold (built and hit at once)",
            "pool-mongo-cold",
            &c,
            Some(cold_per_1000),
            format!("{:.2}x", p.rps / c.rps),
        ),
        (
            "bare shared `Client` (ceiling)",
            "shared-client",
            &b,
            None,
            vs_ceiling.times(),
        ),
        (
            "client per operation (floor)",
            "client-per-op",
            &f,
            Some(floor_per_1000),
            format!("{vs_floor:.1}x"),
        ),
    ] {
        let shown = opened.map_or("–".to_string(), |o| format!("{o:.2}"));
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.3} | {:.3} | {shown} | {ratio} |",
            r.rps,
            ms(r.p50),
            ms(r.p99)
        );
        let mut metrics = vec![
            ("ops_per_sec", r.rps),
            ("p50_ms", ms(r.p50)),
            ("p99_ms", ms(r.p99)),
        ];
        if let Some(o) = opened {
            metrics.push(("connections_per_1000_ops", o));
        }
        for (metric, value) in metrics {
            report.rows.push(Row {
                suite: "mongo",
                case: "find-one".into(),
                pool: key,
                metric,
                value,
            });
        }
    }
    report.rows.push(Row {
        suite: "mongo",
        case: "find-one".into(),
        pool: "pool-mongo",
        metric: "vs_floor",
        value: vs_floor,
    });
    let _ = writeln!(
        table,
        "\nTarget: pool-mongo ≥ 5x the floor — measured {vs_floor:.1}x."
    );
    pool.close(Duration::from_secs(5)).await;
    bare.shutdown().immediate(true).await;
    Ok(())
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let quick = report.effort.is_quick();
    let mut table = String::new();
    crate::report::runtime()?.block_on(bench(quick, report, &mut table))?;
    report.finish(table);
    Ok(())
}
