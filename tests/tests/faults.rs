//! Faults on real connections, injected by a TCP proxy between the pools and the
//! machine's real PostgreSQL and Redis: a peer that goes silent (no FIN) during
//! a check must not hold the slot (sqlx #4349), a refused server fails fast, and
//! cut connections are replaced.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pool_core::{ConnectionPool, PoolError};
use pool_redis::{RedisConfig, RedisPool};
use pool_sql::{PgManager, PgPool, PgPoolExt};
use unipool_tests::proxy::{Mode, Proxy};

fn addr_of(url: &str) -> SocketAddr {
    let u = url::Url::parse(url).unwrap();
    let host = match u.host_str().unwrap() {
        "localhost" => "127.0.0.1",
        h => h,
    };
    format!("{host}:{}", u.port().unwrap()).parse().unwrap()
}

fn through(url: &str, proxy: &Proxy) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_host(Some("127.0.0.1")).unwrap();
    u.set_port(Some(proxy.addr.port())).unwrap();
    u.to_string()
}

#[tokio::test]
async fn a_postgres_peer_gone_silent_does_not_hold_the_slot() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let pool: PgPool = ConnectionPool::builder()
        .max_size(1)
        .validate_after(Duration::ZERO)
        .connect_timeout(Duration::from_millis(500))
        .acquire_timeout(Duration::from_secs(5))
        .build(PgManager::from_url(&through(&url, &proxy)).unwrap())
        .unwrap();
    pool.query("SELECT 1", &[]).await.unwrap();

    proxy.set_mode(Mode::Blackhole);
    let start = Instant::now();
    let err = pool.get().await.unwrap_err();
    // The check on the silent connection times out (500 ms) and the connection
    // is closed; the new connect meets the same silence and times out too.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "hung for {:?}",
        start.elapsed()
    );
    assert!(matches!(err, PoolError::ConnectTimeout { .. }), "{err}");
    assert_eq!(pool.stats().closed_check_failed, 1);
    assert_eq!(
        pool.stats().size,
        0,
        "the silent connection still holds the slot"
    );

    proxy.set_mode(Mode::Pass);
    let rows = pool.query("SELECT 2::int4", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 2);
}

#[tokio::test]
async fn a_refused_postgres_fails_fast_and_cut_connections_are_replaced() {
    unipool_tests::require!("postgres");
    let url = unipool_tests::pg::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let pool: PgPool = ConnectionPool::builder()
        .max_size(2)
        .acquire_timeout(Duration::from_secs(5))
        .build(PgManager::from_url(&through(&url, &proxy)).unwrap())
        .unwrap();
    pool.query("SELECT 1", &[]).await.unwrap();
    proxy.cut_all();
    proxy.set_mode(Mode::Refuse);
    // The cut connection is noticed (closed) and a new one is refused: at once.
    let start = Instant::now();
    let _ = pool.query("SELECT 1", &[]).await;
    let err = pool.query("SELECT 1", &[]).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "{err}");
    proxy.set_mode(Mode::Pass);
    pool.query("SELECT 1", &[]).await.unwrap();
    assert!(pool.stats().created >= 2);
}

#[tokio::test]
async fn a_redis_lease_gone_silent_is_bounded_by_the_command_timeout() {
    unipool_tests::require!("redis");
    let url = unipool_tests::redis_server::url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let config = RedisConfig {
        shared_connections: 1,
        command_timeout: Duration::from_millis(300),
        pool: pool_core::PoolConfig {
            max_size: 1,
            connect_timeout: Duration::from_millis(300),
            acquire_timeout: Duration::from_secs(3),
            ..pool_core::PoolConfig::default()
        },
        ..RedisConfig::default()
    };
    let pool = RedisPool::connect(&through(&url, &proxy), config)
        .await
        .unwrap();
    let mut lease = pool.lease().await.unwrap();
    redis::cmd("PING")
        .query_async::<String>(&mut lease)
        .await
        .unwrap();
    proxy.set_mode(Mode::Blackhole);
    let start = Instant::now();
    let r = redis::cmd("PING").query_async::<String>(&mut lease).await;
    assert!(r.is_err());
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(lease);
    // The timed-out lease was discarded, not kept.
    assert_eq!(pool.exclusive().stats().closed_broken, 1);
    proxy.set_mode(Mode::Pass);
    let mut lease = pool.lease().await.unwrap();
    assert_eq!(
        redis::cmd("PING")
            .query_async::<String>(&mut lease)
            .await
            .unwrap(),
        "PONG"
    );
}
