//! pool-sql against the real PostgreSQL of the machine (and throwaway clusters
//! where a password or a restart is needed).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use pool_core::{ConnectionPool, PoolError};
use pool_sql::{DbError, PgManager, PgPool, PgPoolExt, RecyclePolicy, SqlError};
use unipool_tests::pg::{url, ThrowawayPg};

fn pool_with(url: &str, policy: RecyclePolicy, max: usize) -> PgPool {
    ConnectionPool::builder()
        .max_size(max)
        .acquire_timeout(Duration::from_secs(10))
        .build(PgManager::from_url(url).unwrap().recycle_policy(policy))
        .unwrap()
}

fn pool() -> PgPool {
    pool_with(&url(), RecyclePolicy::Fast, 4)
}

/// A table name unique to this test process and call.
fn table(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("t_{what}_{}_{}", std::process::id(), N.fetch_add(1, SeqCst))
}

async fn create(pool: &PgPool, t: &str) {
    pool.execute(&format!("DROP TABLE IF EXISTS {t}"), &[])
        .await
        .unwrap();
    pool.execute(
        &format!("CREATE TABLE {t} (id int PRIMARY KEY, v text)"),
        &[],
    )
    .await
    .unwrap();
}

async fn count(pool: &PgPool, t: &str) -> i64 {
    pool.query(&format!("SELECT count(*) FROM {t}"), &[])
        .await
        .unwrap()[0]
        .get(0)
}

#[tokio::test]
async fn query_execute_and_execute_many() {
    unipool_tests::require!("postgres");
    let pool = pool();
    let t = table("helpers");
    create(&pool, &t).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES ($1, $2)");
    let n = pool
        .execute_many(&ins, &[&[&1i32, &"a"], &[&2i32, &"b"], &[&3i32, &"c"]])
        .await
        .unwrap();
    assert_eq!(n, 3);
    let rows = pool
        .query(
            &format!("SELECT v FROM {t} WHERE id >= $1 ORDER BY id"),
            &[&2i32],
        )
        .await
        .unwrap();
    let vs: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(vs, ["b", "c"]);
    let changed = pool
        .execute(&format!("UPDATE {t} SET v = 'z' WHERE id < $1"), &[&3i32])
        .await
        .unwrap();
    assert_eq!(changed, 2);
    pool.execute(&format!("DROP TABLE {t}"), &[]).await.unwrap();
    assert!(pool.stats().reused > 0);
}

#[tokio::test]
async fn execute_many_is_all_or_nothing() {
    unipool_tests::require!("postgres");
    let pool = pool();
    let t = table("many");
    create(&pool, &t).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES ($1, $2)");
    let err = pool
        .execute_many(&ins, &[&[&1i32, &"a"], &[&1i32, &"dup"]])
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("23505"), "{err}");
    assert_eq!(count(&pool, &t).await, 0);
    pool.execute(&format!("DROP TABLE {t}"), &[]).await.unwrap();
}

#[tokio::test]
async fn transaction_commits_on_ok_and_rolls_back_on_err_or_panic() {
    unipool_tests::require!("postgres");
    let pool = pool();
    let t = table("tx");
    create(&pool, &t).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES ($1, 'x')");

    let ins2 = ins.clone();
    let n = pool
        .transaction(move |tx| {
            Box::pin(async move {
                tx.execute(&ins2, &[&1i32]).await?;
                Ok(tx.execute(&ins2, &[&2i32]).await?)
            })
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(count(&pool, &t).await, 2);

    let ins2 = ins.clone();
    let err = pool
        .transaction(move |tx| {
            Box::pin(async move {
                tx.execute(&ins2, &[&3i32]).await?;
                Err::<(), _>(SqlError::Config("changed my mind".into()))
            })
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("changed my mind"));
    assert_eq!(count(&pool, &t).await, 2);

    let before = pool.stats().closed_broken;
    let ins2 = ins.clone();
    let err = pool
        .transaction(move |tx| {
            Box::pin(async move {
                tx.execute(&ins2, &[&4i32]).await?;
                if ins2.len() > 1 {
                    panic!("boom inside the transaction");
                }
                Ok(())
            })
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Panicked));
    assert_eq!(count(&pool, &t).await, 2);
    assert_eq!(
        pool.stats().closed_broken,
        before + 1,
        "panicked connection discarded"
    );
    pool.execute(&format!("DROP TABLE {t}"), &[]).await.unwrap();
}

#[tokio::test]
async fn the_database_error_comes_through_as_the_source() {
    unipool_tests::require!("postgres");
    let pool = pool();
    let err = pool
        .query("SELECT * FROM no_such_table_here", &[])
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("42P01"));
    let text = err.to_string();
    assert!(
        text.contains(r#"relation "no_such_table_here" does not exist (42P01)"#),
        "{text}"
    );
    let mut chain = String::new();
    let mut e: Option<&dyn std::error::Error> = Some(&err);
    while let Some(x) = e {
        chain.push_str(&x.to_string());
        chain.push('\n');
        e = x.source();
    }
    assert!(chain.contains("no_such_table_here"), "{chain}");
}

#[tokio::test]
async fn a_wrong_password_fails_fast_with_the_auth_error() {
    unipool_tests::require!("postgres");
    let pg = ThrowawayPg::start(Some("right-horse-battery"));
    let wrong = pg.url_with(Some("wrong-staple"));
    let pool = pool_with(&wrong, RecyclePolicy::Fast, 2);
    let start = Instant::now();
    let err = pool.query("SELECT 1", &[]).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(err.sqlstate(), Some("28P01"), "{err}");
    assert!(matches!(
        err,
        SqlError::Pool(PoolError::Backend(DbError::Postgres(_)))
    ));
    // What a person reads in a log line names the cause (issue 16).
    let text = err.to_string();
    assert!(
        text.contains(r#"password authentication failed for user "postgres""#)
            && text.contains("28P01"),
        "{text}"
    );
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{pool:?}"),
        format!("{:?}", pool.manager()),
        pool.health().to_string(),
    ] {
        assert!(!text.contains("wrong-staple"), "password leaked: {text}");
    }
    // The right one works.
    let ok = pool_with(&pg.url(), RecyclePolicy::Fast, 2);
    assert_eq!(
        ok.query("SELECT 1::int4", &[]).await.unwrap()[0].get::<_, i32>(0),
        1
    );
}

#[tokio::test]
async fn an_unreachable_host_fails_fast() {
    unipool_tests::require!("postgres");
    let port = unipool_tests::free_port();
    let pool = pool_with(
        &format!("postgres://postgres@127.0.0.1:{port}/test"),
        RecyclePolicy::Fast,
        2,
    );
    let start = Instant::now();
    let err = pool.query("SELECT 1", &[]).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(err, SqlError::Pool(PoolError::Backend(_))),
        "{err}"
    );
    assert!(err.to_string().contains("Connection refused"), "{err}");
}

#[tokio::test]
async fn the_clean_policy_resets_session_state() {
    unipool_tests::require!("postgres");
    async fn leaks(policy: RecyclePolicy) -> bool {
        let pool = pool_with(&url(), policy, 1);
        {
            let conn = pool.get().await.unwrap();
            conn.batch_execute("SET application_name = 'leaky'")
                .await
                .unwrap();
        }
        let conn = pool.get().await.unwrap();
        let row = conn.query_one("SHOW application_name", &[]).await.unwrap();
        row.get::<_, String>(0) == "leaky"
    }
    assert!(leaks(RecyclePolicy::Fast).await, "fast keeps session state");
    assert!(!leaks(RecyclePolicy::Clean).await, "clean must reset it");
}

async fn in_transaction(conn: &pool_sql::PgConnection) -> bool {
    // One simple-protocol message: outside a transaction both timestamps are equal.
    let msgs = conn
        .simple_query("SELECT statement_timestamp() <> transaction_timestamp()")
        .await
        .unwrap();
    msgs.iter().any(|m| match m {
        pool_sql::tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
        _ => false,
    })
}

#[tokio::test]
async fn the_transaction_probe_tells_inside_from_outside() {
    unipool_tests::require!("postgres");
    let pool = pool_with(&url(), RecyclePolicy::Fast, 1);
    let conn = pool.get().await.unwrap();
    assert!(!in_transaction(&conn).await);
    conn.batch_execute("BEGIN").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(in_transaction(&conn).await);
    conn.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn a_transaction_abandoned_mid_way_never_reaches_the_next_caller() {
    unipool_tests::require!("postgres");
    let pool = pool_with(&url(), RecyclePolicy::Fast, 1);
    let t = table("abandon");
    create(&pool, &t).await;
    let task = {
        let (pool, t) = (pool.clone(), t.clone());
        tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            let tx = conn.transaction().await.unwrap();
            tx.execute(&format!("INSERT INTO {t} VALUES (1, 'x')"), &[])
                .await
                .unwrap();
            std::future::pending::<()>().await;
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    let _ = task.await;
    let conn = pool.get().await.unwrap();
    assert!(!in_transaction(&conn).await);
    drop(conn);
    assert_eq!(count(&pool, &t).await, 0);
    pool.execute(&format!("DROP TABLE {t}"), &[]).await.unwrap();
}

#[tokio::test]
async fn a_raw_begin_is_discarded_by_the_verified_and_clean_policies() {
    unipool_tests::require!("postgres");
    for policy in [RecyclePolicy::Verified, RecyclePolicy::Clean] {
        let pool = pool_with(&url(), policy, 1);
        {
            let conn = pool.get().await.unwrap();
            conn.batch_execute("BEGIN").await.unwrap();
        }
        let conn = pool.get().await.unwrap();
        assert!(
            !in_transaction(&conn).await,
            "{policy:?} handed out a dirty connection"
        );
        assert_eq!(pool.stats().closed_check_failed, 1, "{policy:?}");
    }
}

#[tokio::test]
async fn sslmode_require_encrypts_and_verify_full_checks_the_certificate() {
    unipool_tests::require!("postgres");
    let base = url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let pool = pool_with(
        &format!("{base}{sep}sslmode=require"),
        RecyclePolicy::Fast,
        1,
    );
    let rows = pool
        .query(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(rows[0].get::<_, bool>(0), "the session is not encrypted");

    // The local server's certificate is self-signed: verification must fail, fast.
    let pool = pool_with(
        &format!("{base}{sep}sslmode=verify-full"),
        RecyclePolicy::Fast,
        1,
    );
    let start = Instant::now();
    let err = pool.query("SELECT 1", &[]).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    let mut chain = String::new();
    let mut e: Option<&dyn std::error::Error> = Some(&err);
    while let Some(x) = e {
        chain.push_str(&x.to_string());
        e = x.source();
    }
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_recovers_by_itself_after_a_server_restart_under_load() {
    unipool_tests::require!("postgres");
    let pg = ThrowawayPg::start(None);
    let acquire = Duration::from_secs(2);
    let pool: PgPool = ConnectionPool::builder()
        .max_size(4)
        .acquire_timeout(acquire)
        .connect_timeout(Duration::from_secs(1))
        .build(PgManager::from_url(&pg.url()).unwrap())
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (pool, stop) = (pool.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed, mut slowest) = (0u32, 0u32, Duration::ZERO);
                while !stop.load(SeqCst) {
                    let t = Instant::now();
                    match pool.query("SELECT 1", &[]).await {
                        Ok(_) => ok += 1,
                        Err(_) => {
                            failed += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    slowest = slowest.max(t.elapsed());
                }
                (ok, failed, slowest)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.stop_immediate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.start_again();
    let restarted = Instant::now();
    // Back to normal by itself: no call to the pool was needed to recover.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if pool.query("SELECT 1", &[]).await.is_ok() {
            eprintln!(
                "postgres: served again {:?} after the restart returned (probed every 50 ms)",
                restarted.elapsed()
            );
            break;
        }
        assert!(Instant::now() < deadline, "the pool did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, SeqCst);
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (o, f, slowest) = w.await.unwrap();
        ok += o;
        failed += f;
        assert!(
            slowest <= acquire + Duration::from_secs(1),
            "a call hung for {slowest:?}"
        );
    }
    assert!(failed > 0, "the restart was not noticed");
    assert!(ok > 0);
    assert!(pool.stats().size <= 4);
}
