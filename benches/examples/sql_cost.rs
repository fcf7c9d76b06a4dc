//! The client-side cost of one PostgreSQL query, for instruction counting: N
//! sequential indexed reads through pool-sql, deadpool-postgres, bb8-postgres or
//! one dedicated connection (the ceiling), on a current-thread runtime. The
//! server's work is in its own process and not counted. Compare two N under
//! callgrind; the difference divided by the difference in N is one query:
//!
//! ```text
//! cargo build --release -p unipool-benches --example sql_cost
//! valgrind --tool=callgrind target/release/examples/sql_cost ours 2000
//! valgrind --tool=callgrind target/release/examples/sql_cost ours 2000 64
//! ```
//!
//! A third argument runs that many tasks at once over the pool of 16: the
//! cost of waiting for a connection (the dedicated ceiling is sequential).
//!
//! Needs the bench table (`cargo xtask bench sql` creates it) and DATABASE_URL
//! or PostgreSQL on 127.0.0.1:5432.

use std::str::FromStr;

use pool_core::ConnectionPool;
use pool_sql::{PgManager, PgPool, PgPoolExt};
use tokio_postgres::NoTls;

const SQL: &str = "SELECT v FROM unipool_bench_kv WHERE id = $1";

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let n: i32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let tasks: i32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(1);
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let config = tokio_postgres::Config::from_str(&url).expect("DATABASE_URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let key = |i: i32| i % 10_000 + 1;
        match which.as_str() {
            "ours" => {
                let pool: PgPool = ConnectionPool::builder()
                    .max_size(16)
                    .fairness_window(std::time::Duration::from_micros(
                        std::env::var("UNIPOOL_BENCH_WINDOW_US")
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(1000),
                    ))
                    .build(PgManager::from_url(&url).expect("url"))
                    .expect("pool");
                concurrently(tasks, n, move |i| {
                    let pool = pool.clone();
                    async move {
                        let rows = pool.query(SQL, &[&key(i)]).await.expect("query");
                        assert_eq!(rows.len(), 1);
                    }
                })
                .await;
            }
            "deadpool" => {
                let mgr = deadpool_postgres::Manager::from_config(
                    config,
                    NoTls,
                    deadpool_postgres::ManagerConfig {
                        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                    },
                );
                let pool = deadpool_postgres::Pool::builder(mgr)
                    .max_size(16)
                    .build()
                    .expect("pool");
                concurrently(tasks, n, move |i| {
                    let pool = pool.clone();
                    async move {
                        let client = pool.get().await.expect("get");
                        let stmt = client.prepare_cached(SQL).await.expect("prepare");
                        let rows = client.query(&stmt, &[&key(i)]).await.expect("query");
                        assert_eq!(rows.len(), 1);
                    }
                })
                .await;
            }
            "bb8" => {
                let pool = bb8::Pool::builder()
                    .max_size(16)
                    .build(bb8_postgres::PostgresConnectionManager::new(config, NoTls))
                    .await
                    .expect("pool");
                for i in 0..n {
                    let conn = pool.get().await.expect("get");
                    let rows = conn.query(SQL, &[&key(i)]).await.expect("query");
                    assert_eq!(rows.len(), 1);
                }
            }
            "dedicated" => {
                let (client, conn) = config.connect(NoTls).await.expect("connect");
                tokio::spawn(conn);
                let stmt = client.prepare(SQL).await.expect("prepare");
                for i in 0..n {
                    let rows = client.query(&stmt, &[&key(i)]).await.expect("query");
                    assert_eq!(rows.len(), 1);
                }
            }
            other => panic!("ours, deadpool, bb8 or dedicated, not {other}"),
        }
    });
}

/// `n` calls of `f` spread over `tasks` tasks.
async fn concurrently<F, Fut>(tasks: i32, n: i32, f: F)
where
    F: Fn(i32) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let per = n / tasks;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let f = f.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    f(t * per + i).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
}
