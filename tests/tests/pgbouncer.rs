//! pool-sql through a real PgBouncer (Debian's 1.18) in transaction mode, in
//! front of the machine's PostgreSQL: the statement cache breaks there with an
//! error that names the setting; with `pgbouncer(true)` every helper works.

use std::time::Duration;

use pool_core::ConnectionPool;
use pool_sql::{PgManager, PgPool, PgPoolExt, RecyclePolicy, SqlError};
use tokio_postgres::types::Type;
use unipool_tests::pgbouncer::{self, Settings, ThrowawayPgBouncer};

/// PgBouncer in front of the shared server, or `None` (loudly) when this
/// machine has none outside CI; under CI its absence fails the test.
fn bouncer(pool_size: u32) -> Option<ThrowawayPgBouncer> {
    if !pgbouncer::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "pgbouncer is not installed (.ci/run installs Debian's package)"
        );
        eprintln!("SKIPPED: pgbouncer is not installed");
        return None;
    }
    let shared = url::Url::parse(&unipool_tests::pg::url()).unwrap();
    Some(ThrowawayPgBouncer::start(Settings {
        upstream_port: shared.port().unwrap_or(5432),
        pool_size,
        ..Settings::default()
    }))
}

fn database() -> String {
    let shared = url::Url::parse(&unipool_tests::pg::url()).unwrap();
    shared.path().trim_start_matches('/').to_string()
}

fn pool(manager: PgManager, max: usize) -> PgPool {
    ConnectionPool::builder()
        .max_size(max)
        .acquire_timeout(Duration::from_secs(10))
        .build(manager)
        .unwrap()
}

/// Makes PgBouncer open `n` server connections, so that its round robin has
/// several to alternate between.
async fn open_server_connections(pool: &PgPool, n: usize) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.get().await.unwrap();
            conn.simple_query("SELECT pg_sleep(0.2)").await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn the_statement_cache_fails_behind_pgbouncer_and_the_error_names_the_setting() {
    unipool_tests::require!("postgres");
    let Some(bouncer) = bouncer(2) else { return };
    let pool = pool(PgManager::from_url(&bouncer.url(&database())).unwrap(), 4);
    open_server_connections(&pool, 2).await;
    let mut failures = Vec::new();
    for i in 0..10i32 {
        // A new statement each time: prepared in one transaction, bound in the
        // next, which PgBouncer hands to the other server connection.
        let sql = format!("SELECT $1::int4 + {i}");
        if let Err(e) = pool.query(&sql, &[&1i32]).await {
            failures.push(e);
        }
    }
    assert!(
        !failures.is_empty(),
        "the statement cache never failed behind PgBouncer:\n{}",
        bouncer.log()
    );
    for e in &failures {
        assert_eq!(e.sqlstate(), Some("26000"), "{e}");
        let text = e.to_string();
        assert!(text.contains("prepared statement"), "{text}");
        assert!(text.contains("pgbouncer = true"), "{text}");
        assert!(text.contains("?pgbouncer=true"), "{text}");
    }
}

#[tokio::test]
async fn every_helper_works_behind_pgbouncer_in_transaction_mode() {
    unipool_tests::require!("postgres");
    let Some(bouncer) = bouncer(2) else { return };
    let url = format!("{}?pgbouncer=true", bouncer.url(&database()));
    let manager = PgManager::from_url(&url).unwrap();
    assert!(manager.is_pgbouncer());
    let pool = pool(manager, 8);
    open_server_connections(&pool, 4).await;

    let t = format!("t_bouncer_{}", std::process::id());
    pool.execute(&format!("DROP TABLE IF EXISTS {t}"), &[])
        .await
        .unwrap();
    assert_eq!(
        pool.execute(
            &format!("CREATE TABLE {t} (id int PRIMARY KEY, v text)"),
            &[]
        )
        .await
        .unwrap(),
        0
    );
    let insert = format!("INSERT INTO {t} (id, v) VALUES ($1, $2)");
    let mut tasks = Vec::new();
    for task in 0..8i32 {
        let (pool, insert, t) = (pool.clone(), insert.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10i32 {
                let id = task * 100 + i;
                let v = format!("v{id}");
                assert_eq!(pool.execute(&insert, &[&id, &v]).await?, 1);
                let rows = pool
                    .query(&format!("SELECT v FROM {t} WHERE id = $1"), &[&id])
                    .await?;
                assert_eq!(rows[0].get::<_, String>(0), v);
                let rows = pool
                    .query_typed("SELECT $1::int4 * 2", &[(&id, Type::INT4)])
                    .await?;
                assert_eq!(rows[0].get::<_, i32>(0), id * 2);
                let rows = pool.query("SELECT 1::int4", &[]).await?;
                assert_eq!(rows[0].get::<_, i32>(0), 1);
            }
            let batch: Vec<i32> = (0..5).map(|i| task * 100 + 50 + i).collect();
            let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 2]> =
                batch.iter().map(|id| [id as _, &"batch" as _]).collect();
            let refs: Vec<&[&(dyn tokio_postgres::types::ToSql + Sync)]> =
                params.iter().map(|p| &p[..]).collect();
            assert_eq!(pool.execute_many(&insert, &refs).await?, 5);
            // Session settings belong inside a transaction: SET LOCAL holds
            // for the transaction, on whichever server connection it runs.
            let mem = pool
                .transaction(|tx| {
                    Box::pin(async move {
                        tx.batch_execute("SET LOCAL work_mem = '2345kB'").await?;
                        let row = tx.query_one("SHOW work_mem", &[]).await?;
                        Ok(row.get::<_, String>(0))
                    })
                })
                .await?;
            assert_eq!(mem, "2345kB");
            Ok::<_, SqlError>(())
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}\n{}", bouncer.log()));
    }
    let rows = pool
        .query(&format!("SELECT count(*) FROM {t}"), &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 8 * 15);
    // A failing statement rolls its own transaction back and the connection
    // stays usable.
    let dup = pool.execute(&insert, &[&0i32, &"again"]).await.unwrap_err();
    assert_eq!(dup.sqlstate(), Some("23505"), "{dup}");
    pool.execute(&format!("DROP TABLE {t}"), &[]).await.unwrap();
    let stats = pool.stats();
    assert!(stats.created <= 8, "{stats:?}");
    assert_eq!(
        stats.closed_broken + stats.closed_check_failed,
        0,
        "{stats:?}"
    );
}

/// `RecyclePolicy::Clean` sends `DISCARD ALL`, which behind PgBouncer would
/// reset whichever client's server connection it landed on: under
/// `pgbouncer(true)` it is never sent. Checked on the shared server directly,
/// where a session setting shows whether it was.
#[tokio::test]
async fn pgbouncer_mode_never_sends_discard_all() {
    unipool_tests::require!("postgres");
    async fn work_mem_after_return(pgbouncer: bool) -> String {
        let manager = PgManager::from_url(&unipool_tests::pg::url())
            .unwrap()
            .recycle_policy(RecyclePolicy::Clean)
            .pgbouncer(pgbouncer);
        let pool = pool(manager, 1);
        let conn = pool.get().await.unwrap();
        conn.batch_execute("SET work_mem = '1234kB'").await.unwrap();
        drop(conn);
        let conn = pool.get().await.unwrap();
        conn.query_one("SHOW work_mem", &[]).await.unwrap().get(0)
    }
    assert_ne!(work_mem_after_return(false).await, "1234kB");
    assert_eq!(work_mem_after_return(true).await, "1234kB");
}

#[test]
fn the_pgbouncer_url_parameter_is_read_and_checked() {
    let base = "postgres://app:s3cret@db:6432/app";
    assert!(!PgManager::from_url(base).unwrap().is_pgbouncer());
    assert!(PgManager::from_url(&format!("{base}?pgbouncer=true"))
        .unwrap()
        .is_pgbouncer());
    assert!(PgManager::from_url(&format!(
        "{base}?sslmode=disable&pgbouncer=true&application_name=x"
    ))
    .unwrap()
    .is_pgbouncer());
    let e = PgManager::from_url(&format!("{base}?pgbouncer=yes")).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("pgbouncer=yes"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// A registry pool behind PgBouncer runs its helpers statement-free, and its
/// fleet budget counts against PgBouncer's client limit, which only the
/// configuration can give: `SHOW max_connections` would answer for the server
/// behind it.
#[tokio::test]
async fn a_registry_pool_behind_pgbouncer_is_budgeted_against_its_configured_limit() {
    unipool_tests::require!("postgres");
    let Some(bouncer) = bouncer(2) else { return };
    let url = bouncer.url(&database());
    let build = |limit: Option<&str>| {
        let mut vars = vec![
            ("UNIPOOL_REPLICAS", "3".to_string()),
            ("UNIPOOL_MAIN_URL", url.clone()),
            ("UNIPOOL_MAIN_PGBOUNCER", "true".to_string()),
            ("UNIPOOL_MAIN_MAX_SIZE", "5".to_string()),
        ];
        if let Some(l) = limit {
            vars.push(("UNIPOOL_MAIN_SERVER_LIMIT", l.to_string()));
        }
        unipool::RegistryConfig::new()
            .vars(vars)
            .unwrap()
            .build()
            .unwrap()
    };
    let registry = build(None);
    let report = registry.prewarm().await;
    assert!(report.is_ok(), "{report}");
    let pool = registry.postgres("main").unwrap();
    for i in 0..6i32 {
        let rows = pool.query(&format!("SELECT $1::int4 + {i}"), &[&i]).await;
        assert_eq!(rows.unwrap()[0].get::<_, i32>(0), 2 * i);
    }
    let budget = registry.budget();
    let why = budget[0].allowed.as_ref().unwrap_err();
    assert!(
        why.contains("PgBouncer") && why.contains("server_limit"),
        "{why}"
    );
    assert_eq!(report.over_budget().count(), 0, "{report}");

    let registry = build(Some("10"));
    let report = registry.prewarm().await;
    let over: Vec<_> = report.over_budget().collect();
    assert_eq!(over.len(), 1, "{report}");
    let text = over[0].to_string();
    assert!(
        text.contains("3 replicas × 5 connections") && text.contains("= 15 > 10"),
        "{text}"
    );
}
