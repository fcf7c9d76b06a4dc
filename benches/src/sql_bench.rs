//! `bench sql`: pool-sql against bb8-postgres and deadpool-postgres on the same
//! PostgreSQL, with the two bounds — a new connection per query (floor) and one
//! dedicated connection per worker (ceiling); and pool-sql's SQLite pool against a
//! connection per query and one connection behind a mutex.

use std::fmt::Write as _;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_core::ConnectionPool;
use pool_sql::{PgManager, PgPool, PgPoolExt, SqliteManager, SqlitePool, SqlitePoolExt};
use tokio_postgres::NoTls;

use crate::effort::Effort;
use crate::report::{median, Report, Row, Spread, RATIO, RATIO_BEST};

const POOL: usize = 16;
const KEYS: i32 = 10_000;

#[derive(Clone, Copy, Debug)]
enum Query {
    Select1,
    Indexed,
}

impl Query {
    fn sql(self) -> &'static str {
        match self {
            Query::Select1 => "SELECT 1",
            Query::Indexed => "SELECT v FROM unipool_bench_kv WHERE id = $1",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Query::Select1 => "select1",
            Query::Indexed => "indexed",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Query::Select1 => "SELECT 1",
            Query::Indexed => "indexed read",
        }
    }
}

/// One way of running a query, whatever the pool.
trait Target: Clone + Send + Sync + 'static {
    fn run(&self, worker: usize, q: Query, key: i32) -> impl Future<Output = ()> + Send;
}

#[derive(Clone)]
struct Ours(PgPool);

impl Target for Ours {
    async fn run(&self, _: usize, q: Query, key: i32) {
        let rows = match q {
            Query::Select1 => self.0.query(q.sql(), &[]).await,
            Query::Indexed => self.0.query(q.sql(), &[&key]).await,
        };
        assert_eq!(rows.expect("query").len(), 1);
    }
}

type Bb8Pool = bb8::Pool<bb8_postgres::PostgresConnectionManager<NoTls>>;

#[derive(Clone)]
struct Bb8(Bb8Pool);

impl Target for Bb8 {
    async fn run(&self, _: usize, q: Query, key: i32) {
        let conn = self.0.get().await.expect("bb8 get");
        // bb8-postgres has no statement cache: tokio-postgres prepares per call.
        let rows = match q {
            Query::Select1 => conn.query(q.sql(), &[]).await,
            Query::Indexed => conn.query(q.sql(), &[&key]).await,
        };
        assert_eq!(rows.expect("query").len(), 1);
    }
}

#[derive(Clone)]
struct Deadpool(deadpool_postgres::Pool);

impl Target for Deadpool {
    async fn run(&self, _: usize, q: Query, key: i32) {
        let client = self.0.get().await.expect("deadpool get");
        let stmt = client.prepare_cached(q.sql()).await.expect("prepare");
        let rows = match q {
            Query::Select1 => client.query(&stmt, &[]).await,
            Query::Indexed => client.query(&stmt, &[&key]).await,
        };
        assert_eq!(rows.expect("query").len(), 1);
    }
}

/// The floor: a new connection for every query.
#[derive(Clone)]
struct PerQuery(Arc<tokio_postgres::Config>);

impl Target for PerQuery {
    async fn run(&self, _: usize, q: Query, key: i32) {
        let (client, conn) = self.0.connect(NoTls).await.expect("connect");
        let driver = tokio::spawn(conn);
        let rows = match q {
            Query::Select1 => client.query(q.sql(), &[]).await,
            Query::Indexed => client.query(q.sql(), &[&key]).await,
        };
        assert_eq!(rows.expect("query").len(), 1);
        drop(client);
        let _ = driver.await;
    }
}

/// The ceiling: one dedicated connection per worker, statement prepared once.
#[derive(Clone)]
struct Dedicated(Arc<Vec<tokio::sync::Mutex<(tokio_postgres::Client, tokio_postgres::Statement)>>>);

impl Target for Dedicated {
    async fn run(&self, worker: usize, q: Query, key: i32) {
        let guard = self.0[worker].lock().await;
        let (client, stmt) = &*guard;
        let rows = match q {
            Query::Select1 => client.query(stmt, &[]).await,
            Query::Indexed => client.query(stmt, &[&key]).await,
        };
        assert_eq!(rows.expect("query").len(), 1);
    }
}

/// Queries per second of `total` queries split over `workers` tasks.
async fn drive<T: Target>(target: &T, workers: usize, total: usize, q: Query) -> f64 {
    let per = (total / workers).max(1);
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let t = target.clone();
            tokio::spawn(async move {
                let mut key = (w as i32 * 7919) % KEYS;
                for _ in 0..per {
                    t.run(w, q, key + 1).await;
                    key = (key + 104_729) % KEYS;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker panicked");
    }
    (per * workers) as f64 / start.elapsed().as_secs_f64()
}

/// Three measurements back to back, the `run`-th (mod 3) first, so that a
/// change of load on this shared machine hits all three alike over the runs.
/// Returns them in argument order.
async fn rotated(
    run: usize,
    a: impl AsyncFn() -> f64,
    b: impl AsyncFn() -> f64,
    c: impl AsyncFn() -> f64,
) -> [f64; 3] {
    let mut out = [0.0; 3];
    for k in 0..3 {
        let j = (run + k) % 3;
        out[j] = match j {
            0 => a().await,
            1 => b().await,
            _ => c().await,
        };
    }
    out
}

async fn median_of<T: Target>(t: &T, workers: usize, total: usize, q: Query, runs: usize) -> f64 {
    drive(t, workers, total / 10, q).await; // warm-up: open connections, prepare
    let mut v = Vec::new();
    for _ in 0..runs {
        v.push(drive(t, workers, total, q).await);
    }
    median(&mut v)
}

pub(crate) fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

async fn setup(url: &str) -> Result<(), String> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| e.to_string())?;
    let (client, conn) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS unipool_bench_kv (id int PRIMARY KEY, v text NOT NULL);
             INSERT INTO unipool_bench_kv SELECT g, md5(g::text) FROM generate_series(1, {KEYS}) g
             ON CONFLICT DO NOTHING;"
        ))
        .await
        .map_err(|e| e.to_string())
}

async fn postgres(quick: bool, report: &mut Report, table: &mut String) -> Result<(), String> {
    let url = database_url();
    if let Err(e) = setup(&url).await {
        let _ = writeln!(
            table,
            "## sql: PostgreSQL\n\nSKIPPED: {url} is not reachable ({e})\n"
        );
        return Ok(());
    }
    let (total, runs) = if quick {
        (2_000, 1)
    } else {
        (20_000, report.effort.pick(1, 5, 21))
    };
    let config = Arc::new(tokio_postgres::Config::from_str(&url).map_err(|e| e.to_string())?);
    // UNIPOOL_BENCH_SQL_CELL=select1:8 (or indexed:64, ...) runs one cell only,
    // and prints its per-run ratios.
    let only = std::env::var("UNIPOOL_BENCH_SQL_CELL").ok();
    // Otherwise the default run measures the two corners (the cheapest query
    // with the fewest workers, the index read with the most): a cell is about
    // 10 s, and the run has 10 minutes, build included.
    let corners_only = only.is_none() && report.effort == Effort::Default;
    let _ = writeln!(
        table,
        "## sql: PostgreSQL\n\npool of {POOL}; {total} queries per run, median of {runs} runs, queries/s \
         (floor: a new connection per query, 1/80 of the queries; ceiling: one dedicated \
         connection per worker). Ratios: the median of the per-run ratios, each run measuring \
         the pools back to back in a rotating order (and, separately, unipool and the ceiling){}\n\n| query | workers | unipool | bb8-postgres | deadpool-postgres | floor | ceiling | vs best peer | vs ceiling |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        if corners_only {
            ". The default run measures two of the four cells (`--thorough`: all four)"
        } else {
            ""
        }
    );
    for q in [Query::Select1, Query::Indexed] {
        for workers in [8usize, 64] {
            let cell = format!("{}:{workers}", q.key());
            if only.as_ref().is_some_and(|o| *o != cell) {
                continue;
            }
            let corner = matches!((q, workers), (Query::Select1, 8) | (Query::Indexed, 64));
            if corners_only && !corner {
                continue;
            }
            report.cell(format!("PostgreSQL {} / {workers} workers", q.name()));
            let ours: PgPool = ConnectionPool::builder()
                .max_size(POOL)
                .fairness_window(crate::core_bench::window_from_env())
                .build(PgManager::from_url(&url).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            let bb8 = bb8::Pool::builder()
                .max_size(POOL as u32)
                .build(bb8_postgres::PostgresConnectionManager::new(
                    (*config).clone(),
                    NoTls,
                ))
                .await
                .map_err(|e| e.to_string())?;
            let mgr = deadpool_postgres::Manager::from_config(
                (*config).clone(),
                NoTls,
                deadpool_postgres::ManagerConfig {
                    recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                },
            );
            let dp = deadpool_postgres::Pool::builder(mgr)
                .max_size(POOL)
                .build()
                .map_err(|e| e.to_string())?;
            let (ours_t, bb8_t, dp_t) =
                (Ours(ours.clone()), Bb8(bb8.clone()), Deadpool(dp.clone()));
            // Warm-up, then the three pools back to back within each run, in an
            // order that rotates, so that a change of load on this shared machine
            // hits all of them alike; the ratio is the median of the runs' ratios.
            drive(&ours_t, workers, total / 10, q).await;
            drive(&bb8_t, workers, total / 10, q).await;
            drive(&dp_t, workers, total / 10, q).await;
            let (mut ov, mut bv, mut dv, mut vs_best) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for i in 0..runs {
                let [o, b, d] = rotated(
                    i,
                    async || drive(&ours_t, workers, total, q).await,
                    // A quarter of the queries: bb8-postgres runs at a quarter
                    // of the speed, and the run lasts as long as the others.
                    async || drive(&bb8_t, workers, total / 4, q).await,
                    async || drive(&dp_t, workers, total, q).await,
                )
                .await;
                vs_best.push(o / b.max(d));
                ov.push(o);
                bv.push(b);
                dv.push(d);
            }
            drop((bb8_t, bb8));
            dp.close();
            drop((dp_t, dp));

            // The ceiling, back to back with our pool in alternating order (the
            // peers are closed first: 64 dedicated connections and the 16 of our
            // pool stay within the server's 100).
            let mut dedicated = Vec::new();
            for _ in 0..workers {
                let (client, conn) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                let stmt = client.prepare(q.sql()).await.map_err(|e| e.to_string())?;
                dedicated.push(tokio::sync::Mutex::new((client, stmt)));
            }
            let ceiling_t = Dedicated(Arc::new(dedicated));
            drive(&ceiling_t, workers, total / 10, q).await;
            let (mut cv, mut vs_ceiling) = (Vec::new(), Vec::new());
            for i in 0..runs {
                let (o, c) = if i % 2 == 0 {
                    let o = drive(&ours_t, workers, total, q).await;
                    (o, drive(&ceiling_t, workers, total, q).await)
                } else {
                    let c = drive(&ceiling_t, workers, total, q).await;
                    (drive(&ours_t, workers, total, q).await, c)
                };
                vs_ceiling.push(o / c);
                ov.push(o);
                cv.push(c);
            }
            drop(ceiling_t);
            ours.close(Duration::from_secs(5)).await;
            drop(ours_t);

            let floor =
                median_of(&PerQuery(config.clone()), workers.min(16), total / 80, q, 1).await;
            // Let the server reap the closed sessions before the next cell.
            tokio::time::sleep(Duration::from_millis(200)).await;

            let (o, b, d, c) = (
                median(&mut ov),
                median(&mut bv),
                median(&mut dv),
                median(&mut cv),
            );
            if only.is_some() {
                eprintln!(
                    "  per-run vs best peer: {vs_best:.3?}\n  per-run vs ceiling: {vs_ceiling:.3?}"
                );
            }
            let (vs_best, vs_ceiling) = (Spread::of(&mut vs_best), Spread::of(&mut vs_ceiling));
            let _ = writeln!(
                table,
                "| {} | {workers} | {o:.0} | {b:.0} | {d:.0} | {floor:.0} | {c:.0} | {} | {} |",
                q.name(),
                vs_best.times(),
                vs_ceiling.percent()
            );
            let case = format!("{} workers={workers}", q.name());
            report.spread_rows("sql", &case, "unipool", RATIO, vs_ceiling);
            report.spread_rows("sql", &case, "unipool", RATIO_BEST, vs_best);
            for (pool, v) in [
                ("unipool", o),
                ("bb8-postgres", b),
                ("deadpool-postgres", d),
                ("floor", floor),
                ("ceiling", c),
            ] {
                report.rows.push(Row {
                    suite: "sql",
                    case: case.clone(),
                    pool,
                    metric: "queries_per_sec",
                    value: v,
                });
            }
        }
    }
    Ok(())
}

// ----- SQLite --------------------------------------------------------------------

#[derive(Clone)]
struct OursLite(SqlitePool);

impl Target for OursLite {
    async fn run(&self, _: usize, _: Query, key: i32) {
        let rows = self
            .0
            .query("SELECT v FROM kv WHERE id = ?1", [key])
            .await
            .expect("query");
        assert_eq!(rows.len(), 1);
    }
}

#[derive(Clone)]
struct LitePerQuery(Arc<std::path::PathBuf>);

impl Target for LitePerQuery {
    async fn run(&self, _: usize, _: Query, key: i32) {
        let path = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let c = rusqlite::Connection::open(&*path).expect("open");
            let v: String = c
                .query_row("SELECT v FROM kv WHERE id = ?1", [key], |r| r.get(0))
                .expect("query");
            std::hint::black_box(v);
        })
        .await
        .expect("blocking task");
    }
}

#[derive(Clone)]
struct LiteMutex(Arc<Mutex<rusqlite::Connection>>);

impl Target for LiteMutex {
    async fn run(&self, _: usize, _: Query, key: i32) {
        let c = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let c = c.lock().expect("lock");
            let v: String = c
                .prepare_cached("SELECT v FROM kv WHERE id = ?1")
                .and_then(|mut s| s.query_row([key], |r| r.get(0)))
                .expect("query");
            std::hint::black_box(v);
        })
        .await
        .expect("blocking task");
    }
}

async fn sqlite(quick: bool, report: &mut Report, table: &mut String) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("unipool-bench-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("bench.sqlite");
    {
        let c = rusqlite::Connection::open(&path).map_err(|e| e.to_string())?;
        c.execute_batch(&format!(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS kv (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
             WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {KEYS})
             INSERT OR IGNORE INTO kv SELECT x, hex(randomblob(16)) FROM g;"
        ))
        .map_err(|e| e.to_string())?;
    }
    let (total, runs) = if quick {
        (2_000, 1)
    } else {
        (20_000, report.effort.pick(1, 5, 15))
    };
    let workers = 8;
    report.cell("SQLite");
    let pool: SqlitePool = ConnectionPool::builder()
        .max_size(8)
        .build(SqliteManager::file(&path))
        .map_err(|e| e.to_string())?;
    let (ours_t, per_query_t) = (OursLite(pool.clone()), LitePerQuery(Arc::new(path.clone())));
    let mutex_t = LiteMutex(Arc::new(Mutex::new(
        rusqlite::Connection::open(&path).map_err(|e| e.to_string())?,
    )));
    let q = Query::Indexed;
    drive(&ours_t, workers, total / 10, q).await;
    drive(&mutex_t, workers, total / 10, q).await;
    // Back to back in a rotating order; a connection per query runs a fifth of
    // the queries (it is ten times slower).
    let (mut ov, mut fv, mut mv, mut vs_f, mut vs_m) = (vec![], vec![], vec![], vec![], vec![]);
    for r in 0..runs {
        let [o, f, m] = rotated(
            r,
            async || drive(&ours_t, workers, total, q).await,
            async || drive(&per_query_t, workers, total / 5, q).await,
            async || drive(&mutex_t, workers, total, q).await,
        )
        .await;
        vs_f.push(o / f);
        vs_m.push(o / m);
        ov.push(o);
        fv.push(f);
        mv.push(m);
    }
    let (o, f, m) = (median(&mut ov), median(&mut fv), median(&mut mv));
    let (vs_f, vs_m) = (median(&mut vs_f), median(&mut vs_m));
    let _ = writeln!(
        table,
        "\n## sql: SQLite\n\nindexed read on a WAL file, {workers} workers, {total} queries per run, median of {runs}, queries/s; \
         ratios: medians of the per-run ratios (the three back to back, rotating order)\n\n\
         | unipool (pool of 8) | connection per query | one connection + mutex | vs per query | vs mutex |\n|---:|---:|---:|---:|---:|\n\
         | {o:.0} | {f:.0} | {m:.0} | {vs_f:.2}x | {vs_m:.2}x |"
    );
    for (p, v) in [("unipool", o), ("per-query", f), ("mutex", m)] {
        report.rows.push(Row {
            suite: "sql",
            case: "sqlite indexed read".into(),
            pool: p,
            metric: "queries_per_sec",
            value: v,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let quick = report.effort.is_quick();
    let mut table = String::new();
    crate::report::runtime()?.block_on(async {
        postgres(quick, report, &mut table).await?;
        sqlite(quick, report, &mut table).await
    })?;
    report.finish(table);
    Ok(())
}
