//! pool-redis's `ClusterPool` against real local Redis Clusters
//! (`redis-server --cluster-enabled yes` nodes joined by `redis-cli --cluster
//! create`): keys across slots, leases on a key's node, and a failover.

use std::time::{Duration, Instant};

use pool_core::{Health, PoolConfig};
use pool_redis::redis::{self, Value};
use pool_redis::{ClusterPool, RedisConfig};
use unipool_tests::redis_cluster::ThrowawayCluster;

fn config(command_timeout: Duration) -> RedisConfig {
    RedisConfig {
        shared_connections: 2,
        command_timeout,
        pool: PoolConfig {
            max_size: 4,
            acquire_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            ..PoolConfig::default()
        },
        ..RedisConfig::default()
    }
}

fn dbsize(port: u16) -> usize {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "DBSIZE"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn keys_across_slots_and_leases_on_the_owning_node() {
    let cluster = ThrowawayCluster::start(3, 0, Duration::from_millis(2000));
    let pool = ClusterPool::connect(&cluster.url(), config(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(pool.primaries().len(), 3, "{pool:?}");

    // Through the shared lane, on whichever node owns each key.
    for i in 0..300 {
        pool.cmd::<()>(redis::cmd("SET").arg(format!("k{i}")).arg(i))
            .await
            .unwrap();
    }
    for i in (0..300).step_by(7) {
        let v: i64 = pool
            .cmd(redis::cmd("GET").arg(format!("k{i}")))
            .await
            .unwrap();
        assert_eq!(v, i);
    }
    for n in &cluster.nodes {
        assert!(dbsize(n.port) > 50, "node {} holds too few keys", n.port);
    }
    // A pipeline on one slot (hash tag).
    let (a, b): (i64, i64) = pool
        .pipe(
            redis::pipe()
                .cmd("INCR")
                .arg("{user7}.visits")
                .cmd("INCRBY")
                .arg("{user7}.points")
                .arg(5),
        )
        .await
        .unwrap();
    assert_eq!((a, b), (1, 5));

    // A lease talks to the key's own primary: a command on any other node
    // would answer MOVED.
    for i in 0..30 {
        let key = format!("k{i}");
        let mut lease = pool.lease(&key).await.unwrap();
        let v: i64 = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut lease)
            .await
            .unwrap();
        assert_eq!(v, i);
    }
    // WATCH/MULTI/EXEC on one slot: applied when nothing interferes, and
    // aborted (nil) when the shared lane changes the watched key meanwhile.
    let mut lease = pool.lease("acct").await.unwrap();
    redis::cmd("SET")
        .arg("acct")
        .arg(10)
        .query_async::<()>(&mut lease)
        .await
        .unwrap();
    redis::cmd("WATCH")
        .arg("acct")
        .query_async::<()>(&mut lease)
        .await
        .unwrap();
    let applied: Value = redis::pipe()
        .atomic()
        .cmd("INCRBY")
        .arg("acct")
        .arg(5)
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(applied, Value::Array(vec![Value::Int(15)]));
    redis::cmd("WATCH")
        .arg("acct")
        .query_async::<()>(&mut lease)
        .await
        .unwrap();
    pool.cmd::<()>(redis::cmd("SET").arg("acct").arg(100))
        .await
        .unwrap();
    let aborted: Value = redis::pipe()
        .atomic()
        .cmd("INCRBY")
        .arg("acct")
        .arg(5)
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(aborted, Value::Nil);
    drop(lease);
    let v: i64 = pool.cmd(redis::cmd("GET").arg("acct")).await.unwrap();
    assert_eq!(v, 100);

    // Pub/sub on the channel's node: a message published through the
    // shared lane (on whichever node) reaches the subscriber.
    let mut sub = pool.pubsub("news").await.unwrap();
    sub.subscribe("news").await.unwrap();
    // PUBLISH counts the subscribers of the node it ran on only; the
    // cluster bus carries it to every other node.
    pool.cmd::<i64>(redis::cmd("PUBLISH").arg("news").arg("hello"))
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        sub.on_message().next().await
    })
    .await
    .expect("the message within 5 s")
    .expect("a message");
    assert_eq!(msg.get_payload::<String>().unwrap(), "hello");

    // A call its caller gives up on stops counting as in flight.
    let cut = tokio::time::timeout(
        Duration::from_millis(50),
        pool.cmd::<Value>(redis::cmd("BLPOP").arg("{acct}.nothing").arg(1)),
    )
    .await;
    assert!(cut.is_err(), "{cut:?}");
    assert_eq!(
        pool.shared_stats().in_flight,
        0,
        "{:?}",
        pool.shared_stats()
    );

    // Stats per node, and the whole.
    let nodes = pool.node_stats();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|(_, s)| s.acquired_total > 0), "{nodes:?}");
    let shared = pool.shared_stats();
    assert_eq!(shared.errors, 0, "{shared:?}");
    assert!(shared.requests >= 300, "{shared:?}");
    assert!(pool.probe(Duration::from_secs(2)).await.is_healthy());
}

#[tokio::test]
async fn a_killed_primary_is_followed_through_the_failover_and_no_call_hangs() {
    let mut cluster = ThrowawayCluster::start(3, 1, Duration::from_millis(1000));
    let timeout = Duration::from_secs(2);
    let pool = ClusterPool::connect(&cluster.url(), config(timeout))
        .await
        .unwrap();
    let key = "{failover}";
    // The replica must have the key before its primary dies (replication
    // is asynchronous): SET and WAIT on one connection to the key's primary,
    // a lease (WAIT counts the writes of its own connection only).
    let mut lease = pool.lease(key).await.unwrap();
    redis::cmd("SET")
        .arg(key)
        .arg(1)
        .query_async::<()>(&mut lease)
        .await
        .unwrap();
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(acked, 1, "the replica did not acknowledge the write");
    drop(lease);
    let victim = cluster.primary_of(key);

    cluster.kill(victim);
    let killed = Instant::now();
    let mut longest = Duration::ZERO;
    let mut failures = 0;
    let recovered = loop {
        let start = Instant::now();
        let r: Result<i64, _> = pool.cmd(redis::cmd("INCR").arg(key)).await;
        let took = start.elapsed();
        longest = longest.max(took);
        assert!(
            took <= timeout + Duration::from_millis(500),
            "a call took {took:?} with a command_timeout of {timeout:?}"
        );
        match r {
            Ok(_) => {
                if failures > 0 || killed.elapsed() > Duration::from_secs(1) {
                    break killed.elapsed();
                }
            }
            Err(_) => failures += 1,
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the pool never followed the failover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cluster.wait_for_failover(victim);
    // The key survived on the promoted replica, and a lease finds it there
    // (the slot map is read again when the old primary refuses).
    let v: i64 = pool.cmd(redis::cmd("GET").arg(key)).await.unwrap();
    assert!(v >= 2, "{v}");
    let mut lease = pool.lease(key).await.unwrap();
    let w: i64 = redis::cmd("GET")
        .arg(key)
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(w, v);
    assert!(!pool.primaries().contains(&format!("127.0.0.1:{victim}")));
    eprintln!(
        "failover: served again {recovered:?} after the kill; {failures} failed calls; longest call {longest:?}"
    );
}

#[tokio::test]
async fn an_unreachable_cluster_or_a_bad_url_fails_at_once_with_the_cause() {
    let port = unipool_tests::free_port();
    let start = Instant::now();
    let e = ClusterPool::connect(
        &format!("redis+cluster://:s3cret@127.0.0.1:{port}"),
        config(Duration::from_secs(2)),
    )
    .await
    .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let text = e.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    let e = ClusterPool::connect("redis+cluster://:s3cret@a:7000,b:x", RedisConfig::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("invalid port \"x\"") && !e.contains("s3cret"),
        "{e}"
    );
}

/// A `redis+cluster://` pool from the Registry's configuration: built
/// without connecting, connected by `prewarm`, reached through
/// `redis_cluster(name)`, refused with a pointer by `redis(name)`, and
/// budgeted per primary.
#[tokio::test]
async fn the_registry_builds_a_cluster_pool_from_its_url() {
    let cluster = ThrowawayCluster::start(3, 0, Duration::from_millis(2000));
    let registry = unipool::RegistryConfig::new()
        .vars([
            ("UNIPOOL_CACHE_URL", cluster.url()),
            ("UNIPOOL_CACHE_SHARED_CONNECTIONS", "1".to_string()),
            ("UNIPOOL_CACHE_MAX_SIZE", "2".to_string()),
        ])
        .unwrap()
        .build()
        .unwrap();
    let report = registry.prewarm().await;
    assert!(report.is_ok(), "{report}");
    let pool = registry.redis_cluster("cache").await.unwrap();
    for i in 0..50 {
        pool.cmd::<()>(redis::cmd("SET").arg(format!("r{i}")).arg(i))
            .await
            .unwrap();
    }
    let mut lease = pool.lease("r7").await.unwrap();
    let v: i64 = redis::cmd("GET")
        .arg("r7")
        .query_async(&mut lease)
        .await
        .unwrap();
    assert_eq!(v, 7);
    drop(lease);
    let e = registry.redis("cache").await.unwrap_err().to_string();
    assert!(
        e.contains("Redis Cluster") && e.contains("redis_cluster"),
        "{e}"
    );
    let health = registry.health();
    assert!(health.status.is_healthy(), "{health:?}");
    // In the fleet budget once connected: each primary counts the shared
    // lane (1) and the leases (2) of every replica, against its maxclients.
    let budget = registry.budget();
    assert_eq!(budget.len(), 3, "{budget:?}");
    for b in &budget {
        assert_eq!(b.per_replica(), 3, "{b}");
        let allowed = b.allowed.as_ref().unwrap();
        assert!(allowed.source.starts_with("maxclients "), "{b}");
    }
    let mut primaries: Vec<String> = budget.iter().map(|b| b.server.clone()).collect();
    primaries.sort();
    let mut known = pool.primaries();
    known.sort();
    assert_eq!(primaries, known);
    assert!(registry
        .close_all(Duration::from_secs(5))
        .await
        .all_closed());

    // Over-committed: 5 replicas × 3 against a configured limit of 10 per node.
    let registry = unipool::RegistryConfig::new()
        .vars([
            ("UNIPOOL_REPLICAS", "5".to_string()),
            ("UNIPOOL_CACHE_URL", cluster.url()),
            ("UNIPOOL_CACHE_SHARED_CONNECTIONS", "1".to_string()),
            ("UNIPOOL_CACHE_MAX_SIZE", "2".to_string()),
            ("UNIPOOL_CACHE_SERVER_LIMIT", "10".to_string()),
        ])
        .unwrap()
        .build()
        .unwrap();
    let report = registry.prewarm().await;
    let over: Vec<String> = report.over_budget().map(|b| b.to_string()).collect();
    assert_eq!(over.len(), 3, "{report}");
    for text in &over {
        assert!(
            text.contains("5 replicas × 3 connections (cache 3) = 15 > 10 allowed"),
            "{text}"
        );
    }
    assert!(!registry.health().status.is_healthy());
    registry.close_all(Duration::from_secs(5)).await;
}
