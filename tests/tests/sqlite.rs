//! pool-sql's SQLite pool on temp files and shared in-memory databases.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use pool_core::ConnectionPool;
use pool_sql::rusqlite::types::Value;
use pool_sql::{SqlError, SqliteManager, SqlitePool, SqlitePoolExt};

fn file_pool(max: usize) -> (SqlitePool, std::path::PathBuf) {
    let dir = unipool_tests::temp_dir("sqlite");
    let path = dir.join("db.sqlite");
    let pool = ConnectionPool::builder()
        .max_size(max)
        .build(SqliteManager::file(&path))
        .unwrap();
    (pool, dir)
}

async fn setup(pool: &SqlitePool) {
    pool.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
        Vec::<Value>::new(),
    )
    .await
    .unwrap();
}

async fn count(pool: &SqlitePool) -> i64 {
    pool.query("SELECT count(*) FROM t", Vec::<Value>::new())
        .await
        .unwrap()[0]
        .get(0)
        .unwrap()
}

#[tokio::test]
async fn query_execute_and_execute_many_on_a_file() {
    let (pool, _dir) = file_pool(4);
    setup(&pool).await;
    let n = pool
        .execute_many(
            "INSERT INTO t (id, v) VALUES (?1, ?2)",
            [
                [Value::from(1), Value::from("a".to_string())],
                [Value::from(2), Value::from("b".to_string())],
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    let rows = pool
        .query("SELECT id, v FROM t WHERE id > ?1", [1])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get_named::<String>("v").unwrap(), "b");
    assert_eq!(
        pool.execute("DELETE FROM t WHERE id = ?1", [1])
            .await
            .unwrap(),
        1
    );
    assert_eq!(count(&pool).await, 1);
}

#[tokio::test]
async fn execute_many_is_all_or_nothing() {
    let (pool, _dir) = file_pool(2);
    setup(&pool).await;
    let err = pool
        .execute_many("INSERT INTO t (id) VALUES (?1)", [[1], [1]])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    assert_eq!(count(&pool).await, 0);
}

#[tokio::test]
async fn transaction_commits_on_ok_and_rolls_back_on_err_or_panic() {
    let (pool, _dir) = file_pool(2);
    setup(&pool).await;
    pool.transaction(|tx| {
        tx.execute("INSERT INTO t (id) VALUES (1)", [])?;
        Ok(())
    })
    .await
    .unwrap();
    let err = pool
        .transaction(|tx| {
            tx.execute("INSERT INTO t (id) VALUES (2)", [])?;
            Err::<(), _>(SqlError::Config("no".into()))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Config(_)));
    let err = pool
        .transaction(|tx| -> Result<(), SqlError> {
            tx.execute("INSERT INTO t (id) VALUES (3)", [])?;
            panic!("boom");
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Panicked));
    assert_eq!(count(&pool).await, 1);
}

#[tokio::test]
async fn files_use_wal_and_a_busy_timeout() {
    let (pool, _dir) = file_pool(1);
    let conn = pool.get().await.unwrap();
    let (mode, busy) = conn
        .call(|c| {
            let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            let busy: i64 = c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
            Ok((mode, busy))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(busy, 5000);
}

#[tokio::test]
async fn a_shared_memory_database_is_seen_by_every_connection() {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!("mem{}_{}", std::process::id(), N.fetch_add(1, SeqCst));
    let pool: SqlitePool = ConnectionPool::builder()
        .max_size(2)
        .build(SqliteManager::from_url(&format!("sqlite::memory:{name}")).unwrap())
        .unwrap();
    let a = pool.get().await.unwrap();
    a.call(|c| Ok(c.execute_batch("CREATE TABLE m (x); INSERT INTO m VALUES (7)")?))
        .await
        .unwrap();
    let b = pool.get().await.unwrap();
    let x: i64 = b
        .call(|c| Ok(c.query_row("SELECT x FROM m", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(x, 7);
}

#[tokio::test]
async fn a_connection_left_in_a_transaction_is_discarded() {
    let (pool, _dir) = file_pool(1);
    setup(&pool).await;
    {
        let conn = pool.get().await.unwrap();
        conn.call(|c| Ok(c.execute_batch("BEGIN; INSERT INTO t (id) VALUES (9)")?))
            .await
            .unwrap();
    }
    assert_eq!(pool.stats().closed_broken, 1);
    assert_eq!(count(&pool).await, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_calls_do_not_stall_the_runtime() {
    let (pool, _dir) = file_pool(1);
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(2));
            loop {
                every.tick().await;
                ticks.fetch_add(1, SeqCst);
            }
        })
    };
    // A query that keeps SQLite busy for a while on this one-thread runtime.
    let rows = pool
        .query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) \
             SELECT sum(x) FROM c",
            Vec::<Value>::new(),
        )
        .await
        .unwrap();
    ticker.abort();
    assert_eq!(rows[0].get::<i64>(0).unwrap(), 4_500_001_500_000);
    assert!(
        ticks.load(SeqCst) >= 5,
        "the runtime was blocked: {} ticks",
        ticks.load(SeqCst)
    );
}

/// Connections opened at once on a new file all succeed: the first ones race
/// to switch the file to WAL, and SQLite answers that race with "database is
/// locked" without calling the busy handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_opened_at_once_on_a_new_file_all_succeed() {
    for _ in 0..200 {
        let (pool, _dir) = file_pool(6);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let pool = pool.clone();
            set.spawn(async move { pool.get_owned().await.map(drop) });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
    }
}
