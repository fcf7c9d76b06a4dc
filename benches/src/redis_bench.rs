//! `bench redis`: GET/SET with 50 concurrent tasks through pool-redis's shared
//! lane and exclusive lane, bb8-redis, deadpool-redis and one bare multiplexed
//! connection, in one run; `redis-benchmark -c 50 -t get,set` on the same server
//! as the reference.

use std::fmt::Write as _;
use std::future::Future;
use std::process::Command;
use std::time::Instant;

use pool_core::PoolConfig;
use pool_redis::{RedisConfig, RedisPool};

use crate::report::{median, Report, Row};

const TASKS: usize = 50;
const POOL: usize = 16;
const KEYS: u64 = 1000;

trait Target: Clone + Send + Sync + 'static {
    /// One SET (even `i`) or GET (odd `i`) of `key`.
    fn op(&self, i: u64, key: u64) -> impl Future<Output = ()> + Send;
}

fn k(key: u64) -> String {
    format!("unipool:bench:{key}")
}

/// The workload's one operation: SET on even `i`, GET on odd.
async fn set_or_get(c: &mut impl redis::aio::ConnectionLike, i: u64, key: u64) {
    if i.is_multiple_of(2) {
        redis::cmd("SET")
            .arg(k(key))
            .arg("value")
            .query_async::<()>(c)
            .await
            .expect("SET");
    } else {
        redis::cmd("GET")
            .arg(k(key))
            .query_async::<Option<String>>(c)
            .await
            .expect("GET");
    }
}

#[derive(Clone)]
struct Shared(RedisPool);

impl Target for Shared {
    async fn op(&self, i: u64, key: u64) {
        let mut c = self.0.shared();
        set_or_get(&mut c, i, key).await;
    }
}

#[derive(Clone)]
struct Exclusive(RedisPool);

impl Target for Exclusive {
    async fn op(&self, i: u64, key: u64) {
        let mut c = self.0.lease().await.expect("lease");
        set_or_get(&mut c, i, key).await;
    }
}

#[derive(Clone)]
struct Bb8(bb8::Pool<bb8_redis::RedisConnectionManager>);

impl Target for Bb8 {
    async fn op(&self, i: u64, key: u64) {
        let mut c = self.0.get().await.expect("bb8 get");
        set_or_get(&mut *c, i, key).await;
    }
}

#[derive(Clone)]
struct Deadpool(deadpool_redis::Pool);

impl Target for Deadpool {
    async fn op(&self, i: u64, key: u64) {
        let mut c = self.0.get().await.expect("deadpool get");
        set_or_get(&mut c, i, key).await;
    }
}

/// The bound: one multiplexed connection cloned into every task, no pool.
#[derive(Clone)]
struct Bare(redis::aio::MultiplexedConnection);

impl Target for Bare {
    async fn op(&self, i: u64, key: u64) {
        let mut c = self.0.clone();
        set_or_get(&mut c, i, key).await;
    }
}

async fn drive<T: Target>(t: &T, total: u64) -> f64 {
    let per = total / TASKS as u64;
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS as u64)
        .map(|w| {
            let t = t.clone();
            tokio::spawn(async move {
                let mut key = w * 7919 % KEYS;
                for i in 0..per {
                    t.op(i, key).await;
                    key = (key + 104_729) % KEYS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task panicked");
    }
    (per * TASKS as u64) as f64 / start.elapsed().as_secs_f64()
}

pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// `redis-benchmark -c 50 -t get,set`: requests/s of SET and GET, if installed.
fn reference(url: &str, n: u64) -> Option<(f64, f64)> {
    let u = url::Url::parse(url).ok()?;
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            u.host_str()?,
            "-p",
            &u.port().unwrap_or(6379).to_string(),
        ])
        .args(["-c", "50", "-n", &n.to_string(), "-t", "get,set", "--csv"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(&format!("\"{name}\"")))?
            .split(',')
            .nth(1)?
            .trim_matches('"')
            .parse()
            .ok()
    };
    Some((rps("SET")?, rps("GET")?))
}

async fn bench(report: &mut Report, table: &mut String) -> Result<(), String> {
    let url = redis_url();
    let config = RedisConfig {
        pool: PoolConfig {
            max_size: POOL,
            ..PoolConfig::default()
        },
        ..RedisConfig::default()
    };
    let pool = match RedisPool::connect(&url, config).await {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(table, "## redis\n\nSKIPPED: {url} is not reachable ({e})\n");
            return Ok(());
        }
    };
    let (total, runs) = report
        .effort
        .pick((20_000u64, 1), (100_000, 3), (200_000, 5));
    let bb8 = bb8::Pool::builder()
        .max_size(POOL as u32)
        .build(bb8_redis::RedisConnectionManager::new(url.as_str()).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let mut dcfg = deadpool_redis::Config::from_url(url.as_str());
    dcfg.pool = Some(deadpool_redis::PoolConfig::new(POOL));
    let dp = dcfg
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .map_err(|e| e.to_string())?;
    let bare = redis::Client::open(url.as_str())
        .map_err(|e| e.to_string())?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let (shared, excl, b8, dpl, br) = (
        Shared(pool.clone()),
        Exclusive(pool.clone()),
        Bb8(bb8),
        Deadpool(dp),
        Bare(bare),
    );
    report.cell(format!("GET/SET, {TASKS} tasks"));
    for warm in [
        drive(&shared, total / 10).await,
        drive(&excl, total / 10).await,
    ] {
        std::hint::black_box(warm);
    }
    drive(&b8, total / 10).await;
    drive(&dpl, total / 10).await;
    drive(&br, total / 10).await;
    let mut v: [Vec<f64>; 5] = Default::default();
    // The clients with a connection per in-flight request run at a fifth of
    // the multiplexed ones' rate: a quarter of the operations keeps their runs
    // as long as the others' (and the suite a third shorter).
    for _ in 0..runs {
        v[0].push(drive(&shared, total).await);
        v[1].push(drive(&excl, total / 4).await);
        v[2].push(drive(&b8, total / 4).await);
        v[3].push(drive(&dpl, total / 4).await);
        v[4].push(drive(&br, total).await);
    }
    let [s, e, b, d, bare] = v.map(|mut x| median(&mut x));
    let reference = reference(&url, total);
    let best_peer = b.max(d);
    let _ = writeln!(
        table,
        "## redis\n\nGET/SET alternating, {TASKS} tasks, {total} ops per run ({} for the exclusive lane, bb8-redis and deadpool-redis), median of {runs}, ops/s; \
         exclusive lane, bb8-redis and deadpool-redis with {POOL} connections; shared lane with {} \
         multiplexed connections\n\n| shared lane | exclusive lane | bb8-redis | deadpool-redis | bare multiplexed | shared vs best peer | shared vs bare |\n|---:|---:|---:|---:|---:|---:|---:|\n\
         | {s:.0} | {e:.0} | {b:.0} | {d:.0} | {bare:.0} | {:.2}x | {:.0}% |",
        total / 4,
        pool.lane_stats().shared.connections,
        s / best_peer,
        100.0 * s / bare
    );
    match reference {
        Some((set, get)) => {
            let _ = writeln!(
                table,
                "\nreference, `redis-benchmark -c 50 -n {total} -t get,set` on the same server: \
                 SET {set:.0} req/s, GET {get:.0} req/s (50 connections, one request in flight on each)"
            );
            report.rows.push(Row {
                suite: "redis",
                case: "get/set 50 tasks".into(),
                pool: "redis-benchmark",
                metric: "ops_per_sec",
                value: (set + get) / 2.0,
            });
        }
        None => {
            let _ = writeln!(table, "\nreference: redis-benchmark not found, skipped");
        }
    }
    for (p, val) in [
        ("shared", s),
        ("exclusive", e),
        ("bb8-redis", b),
        ("deadpool-redis", d),
        ("bare", bare),
    ] {
        report.rows.push(Row {
            suite: "redis",
            case: "get/set 50 tasks".into(),
            pool: p,
            metric: "ops_per_sec",
            value: val,
        });
    }
    Ok(())
}

pub fn run(report: &mut Report) -> Result<(), String> {
    let mut table = String::new();
    crate::report::runtime()?.block_on(bench(report, &mut table))?;
    report.finish(table);
    Ok(())
}
