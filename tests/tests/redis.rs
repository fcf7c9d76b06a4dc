//! pool-redis against the real Redis of the machine (and throwaway servers where
//! a password, a socket or a restart is needed).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_core::PoolConfig;
use pool_redis::{RedisConfig, RedisPool, RedisPoolError};
use redis::AsyncCommands;
use unipool_tests::redis_server::{url, ThrowawayRedis};

fn config(shared: usize, max: usize) -> RedisConfig {
    RedisConfig {
        shared_connections: shared,
        pool: PoolConfig {
            max_size: max,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            ..PoolConfig::default()
        },
        ..RedisConfig::default()
    }
}

fn key(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "unipool:test:{what}:{}:{}",
        std::process::id(),
        N.fetch_add(1, SeqCst)
    )
}

#[tokio::test]
async fn the_shared_lane_round_robins_over_its_connections() {
    unipool_tests::require!("redis");
    let pool = RedisPool::connect(&url(), config(2, 2)).await.unwrap();
    let k = key("shared");
    pool.cmd::<()>(redis::cmd("SET").arg(&k).arg("v"))
        .await
        .unwrap();
    assert_eq!(
        pool.cmd::<String>(redis::cmd("GET").arg(&k)).await.unwrap(),
        "v"
    );
    let mut ids = std::collections::HashSet::new();
    for _ in 0..4 {
        ids.insert(
            pool.cmd::<i64>(&redis::cmd("CLIENT").arg("ID").clone())
                .await
                .unwrap(),
        );
    }
    assert_eq!(ids.len(), 2, "two shared connections, used in turn");
    // Clones used concurrently through the AsyncCommands API.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let mut c = pool.shared();
            let k = k.clone();
            tokio::spawn(async move { c.incr::<_, _, i64>(format!("{k}:n"), i).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        pool.cmd::<i64>(redis::cmd("GET").arg(format!("{k}:n")))
            .await
            .unwrap(),
        1225
    );
    let s = pool.lane_stats().shared;
    assert_eq!(s.in_flight, 0);
    assert!(s.requests >= 56);
    pool.cmd::<()>(redis::cmd("DEL").arg(&k).arg(format!("{k}:n")))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lease_runs_watch_multi_exec() {
    unipool_tests::require!("redis");
    let pool = RedisPool::connect(&url(), config(1, 2)).await.unwrap();
    let k = key("tx");
    let mut lease = pool.lease().await.unwrap();
    redis::cmd("WATCH")
        .arg(&k)
        .query_async::<()>(&mut lease)
        .await
        .unwrap();
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .incr(&k, 5)
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(n, 5);
    drop(lease);
    pool.cmd::<()>(redis::cmd("DEL").arg(&k)).await.unwrap();
}

#[tokio::test]
async fn a_returned_lease_is_reset_before_reuse() {
    unipool_tests::require!("redis");
    let pool = RedisPool::connect(&url(), config(1, 1)).await.unwrap();
    let k = key("reset");
    // A WATCH left behind would abort the next holder's EXEC.
    let mut lease = pool.lease().await.unwrap();
    redis::cmd("WATCH")
        .arg(&k)
        .query_async::<()>(&mut lease)
        .await
        .unwrap();
    drop(lease);
    pool.cmd::<()>(redis::cmd("SET").arg(&k).arg("changed"))
        .await
        .unwrap();
    let mut lease = pool.lease().await.unwrap();
    let r: Option<(String,)> = redis::pipe()
        .atomic()
        .get(&k)
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(
        r,
        Some(("changed".to_string(),)),
        "a stale WATCH aborted the EXEC"
    );
    // A MULTI left open would queue the next holder's commands.
    redis::cmd("MULTI")
        .query_async::<()>(&mut lease)
        .await
        .unwrap();
    drop(lease);
    let mut lease = pool.lease().await.unwrap();
    let v: String = redis::cmd("GET")
        .arg(&k)
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(v, "changed");
    assert_eq!(pool.exclusive().stats().created, 1, "reset, not replaced");
    drop(lease);
    pool.cmd::<()>(redis::cmd("DEL").arg(&k)).await.unwrap();
}

#[tokio::test]
async fn a_cancelled_command_does_not_poison_the_next_lease() {
    unipool_tests::require!("redis");
    let pool = RedisPool::connect(&url(), config(1, 1)).await.unwrap();
    let k = key("cancel");
    let first_id = {
        let mut lease = pool.lease().await.unwrap();
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut lease)
            .await
            .unwrap();
        // BLPOP for 5 s, cancelled after 100 ms: its reply would arrive later on
        // this connection.
        let r = tokio::time::timeout(
            Duration::from_millis(100),
            redis::cmd("BLPOP")
                .arg(&k)
                .arg(5)
                .query_async::<Option<(String, String)>>(&mut lease),
        )
        .await;
        assert!(r.is_err());
        id
    };
    let mut lease = pool.lease().await.unwrap();
    let start = Instant::now();
    let pong: String = redis::cmd("PING").query_async(&mut lease).await.unwrap();
    assert_eq!(pong, "PONG");
    assert!(start.elapsed() < Duration::from_secs(1));
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_ne!(id, first_id, "the poisoned connection was reused");
    assert_eq!(pool.exclusive().stats().closed_broken, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blpop_on_a_lease_does_not_stall_the_shared_lane() {
    unipool_tests::require!("redis");
    let pool = RedisPool::connect(&url(), config(1, 2)).await.unwrap();
    let k = key("blpop");
    let waiter = {
        let (pool, k) = (pool.clone(), k.clone());
        tokio::spawn(async move {
            let mut lease = pool.lease().await.unwrap();
            redis::cmd("BLPOP")
                .arg(&k)
                .arg(5)
                .query_async::<Option<(String, String)>>(&mut lease)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    for _ in 0..100 {
        pool.cmd::<String>(&redis::cmd("PING").clone())
            .await
            .unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "shared lane stalled: {:?}",
        start.elapsed()
    );
    assert!(!waiter.is_finished());
    pool.cmd::<()>(redis::cmd("RPUSH").arg(&k).arg("job"))
        .await
        .unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got, Some((k, "job".to_string())));
}

#[tokio::test]
async fn a_wrong_password_fails_at_once_with_the_auth_error() {
    unipool_tests::require!("redis");
    let server = ThrowawayRedis::start(Some("right-horse"));
    let start = Instant::now();
    let err = RedisPool::connect(&server.url_with(Some("wrong-staple")), config(1, 1))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    let e = err.redis_error().expect("a redis error");
    assert_eq!(e.kind(), redis::ErrorKind::AuthenticationFailed, "{e}");
    assert!(!format!("{err} {err:?}").contains("wrong-staple"));
    assert!(
        err.to_string().contains("Password authentication failed"),
        "the server's message is named: {err}"
    );
    // The exclusive lane fails fast too, with the same cause.
    let ok = RedisPool::connect(&server.url(), config(1, 1))
        .await
        .unwrap();
    assert_eq!(
        ok.cmd::<String>(&redis::cmd("PING").clone()).await.unwrap(),
        "PONG"
    );
    assert!(!format!("{ok:?}").contains("right-horse"));
}

#[tokio::test]
async fn urls_carry_database_index_and_unix_sockets() {
    unipool_tests::require!("redis");
    let server = ThrowawayRedis::start(None);
    let db3 = RedisPool::connect(&format!("{}/3", server.url()), config(1, 1))
        .await
        .unwrap();
    db3.cmd::<()>(redis::cmd("SET").arg("in3").arg("yes"))
        .await
        .unwrap();
    let mut lease = db3.lease().await.unwrap();
    let v: String = redis::cmd("GET")
        .arg("in3")
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(v, "yes");
    let db0 = RedisPool::connect(&server.url(), config(1, 1))
        .await
        .unwrap();
    assert_eq!(
        db0.cmd::<Option<String>>(redis::cmd("GET").arg("in3"))
            .await
            .unwrap(),
        None
    );
    let unix = RedisPool::connect(
        &format!("redis+unix://{}?db=3", server.socket.display()),
        config(1, 1),
    )
    .await
    .unwrap();
    assert_eq!(
        unix.cmd::<String>(redis::cmd("GET").arg("in3"))
            .await
            .unwrap(),
        "yes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_lanes_recover_by_themselves_after_a_restart_under_load() {
    unipool_tests::require!("redis");
    let mut server = ThrowawayRedis::start(None);
    let mut cfg = config(2, 4);
    cfg.command_timeout = Duration::from_secs(1);
    let pool = RedisPool::connect(&server.url(), cfg).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|i: u32| {
            let (pool, stop) = (pool.clone(), stop.clone());
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                while !stop.load(SeqCst) {
                    let t = Instant::now();
                    let r = if i.is_multiple_of(2) {
                        pool.cmd::<String>(&redis::cmd("PING").clone())
                            .await
                            .map(drop)
                    } else {
                        match pool.lease().await {
                            Ok(mut l) => redis::cmd("PING")
                                .query_async::<String>(&mut l)
                                .await
                                .map(drop)
                                .map_err(RedisPoolError::from),
                            Err(e) => Err(e),
                        }
                    };
                    slowest = slowest.max(t.elapsed());
                    if r.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                slowest
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.start_again();
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut shared_ok, mut lease_ok) = (false, false);
    while !(shared_ok && lease_ok) {
        assert!(
            Instant::now() < deadline,
            "did not recover: shared {shared_ok}, lease {lease_ok}"
        );
        shared_ok = shared_ok
            || pool
                .cmd::<String>(&redis::cmd("PING").clone())
                .await
                .is_ok();
        if !lease_ok {
            if let Ok(mut l) = pool.lease().await {
                lease_ok = redis::cmd("PING")
                    .query_async::<String>(&mut l)
                    .await
                    .is_ok();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "redis: both lanes served again {:?} after the restart returned (probed every 50 ms)",
        restarted.elapsed()
    );
    // Every shared connection works again, not just one.
    for _ in 0..4 {
        pool.cmd::<String>(&redis::cmd("PING").clone())
            .await
            .unwrap();
    }
    stop.store(true, SeqCst);
    for w in workers {
        let slowest = w.await.unwrap();
        assert!(
            slowest < Duration::from_secs(7),
            "a call hung for {slowest:?}"
        );
    }
}

#[tokio::test]
async fn rediss_verifies_the_server_certificate() {
    unipool_tests::require!("redis");
    let (cert, key) = unipool_tests::http_server::self_signed();
    let server = ThrowawayRedis::start_tls(&cert, &key);
    let url = format!("rediss://localhost:{}", server.port);
    // Not trusted: the handshake fails, at once.
    let start = Instant::now();
    let err = RedisPool::connect(&url, config(1, 1)).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(err.redis_error().is_some(), "{err}");
    // Trusted: TLS works on both lanes.
    let trusted = RedisConfig {
        root_certificate_pem: Some(cert),
        ..config(1, 1)
    };
    let pool = RedisPool::connect(&url, trusted).await.unwrap();
    assert_eq!(
        pool.cmd::<String>(&redis::cmd("PING").clone())
            .await
            .unwrap(),
        "PONG"
    );
    let mut lease = pool.lease().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut lease).await.unwrap();
    assert_eq!(pong, "PONG");
}
