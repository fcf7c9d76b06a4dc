//! pool-zmq against real libzmq peers on 127.0.0.1 (their own threads and
//! contexts), and pool sockets talking to each other.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_zmq::{SocketConfig, SocketKind, ZmqConfig, ZmqError, ZmqPool};
use unipool_tests::free_port;
use unipool_tests::zmq_peer::{Echo, ZmqPeer};

fn config(per: usize, total: usize) -> ZmqConfig {
    let mut c = ZmqConfig::default();
    c.pool.max_size = per;
    c.max_total = total;
    c.pool.acquire_timeout = Duration::from_secs(5);
    c.request_timeout = Duration::from_secs(5);
    c
}

fn text(parts: &[Vec<u8>]) -> Vec<String> {
    parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

#[tokio::test]
async fn req_rep_and_dealer_router_through_the_pool() {
    let rep = ZmqPeer::echo(Echo::Rep, Duration::ZERO);
    let router = ZmqPeer::echo(Echo::Router, Duration::ZERO);
    let pool = ZmqPool::new(config(2, 4)).unwrap();
    let req = SocketConfig::connect(SocketKind::Req, &rep.endpoint);
    for i in 0..5 {
        let reply = pool
            .request(&req, [format!("hello {i}").into_bytes(), b"more".to_vec()])
            .await
            .unwrap();
        assert_eq!(text(&reply), [format!("hello {i}"), "more".into()]);
    }
    let dealer = SocketConfig::connect(SocketKind::Dealer, &router.endpoint);
    let reply = pool
        .request(&dealer, [b"via dealer".to_vec()])
        .await
        .unwrap();
    assert_eq!(text(&reply), ["via dealer"]);
    let s = pool.stats();
    assert_eq!(s.pool.acquired_total, 6);
    assert_eq!(s.pool.created, 2, "one REQ reused five times, one DEALER");
}

#[tokio::test]
async fn pub_sub_and_push_pull_through_the_pool() {
    let pool = ZmqPool::new(config(1, 4)).unwrap();
    let port = free_port();
    let publisher = SocketConfig::bind(SocketKind::Pub, format!("tcp://127.0.0.1:{port}"));
    let sub =
        SocketConfig::connect(SocketKind::Sub, format!("tcp://127.0.0.1:{port}")).subscribe("news");
    let mut feed = pool.subscribe(&sub).await.unwrap();
    let mut publisher = pool.get(&publisher).await.unwrap();
    // Slow joiner: publish until the subscription is live.
    let got = loop {
        publisher
            .send([b"weather".to_vec(), b"rain".to_vec()])
            .await
            .unwrap();
        publisher
            .send([b"news".to_vec(), b"hello".to_vec()])
            .await
            .unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(50), feed.next()).await {
            break m.unwrap();
        }
    };
    assert_eq!(text(&got), ["news", "hello"], "only the subscribed prefix");

    let port = free_port();
    let pull = SocketConfig::bind(SocketKind::Pull, format!("tcp://127.0.0.1:{port}"));
    let push = SocketConfig::connect(SocketKind::Push, format!("tcp://127.0.0.1:{port}"));
    let mut puller = pool.get(&pull).await.unwrap();
    for i in 0..3 {
        pool.send(&push, [format!("job {i}").into_bytes()])
            .await
            .unwrap();
    }
    for i in 0..3 {
        assert_eq!(text(&puller.recv().await.unwrap()), [format!("job {i}")]);
    }
    let e = pool
        .send(
            &SocketConfig::connect(SocketKind::Sub, "tcp://127.0.0.1:1"),
            [b"x".to_vec()],
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("a SUB socket cannot send"), "{e}");
}

/// The reply to an abandoned request never reaches the next holder: the
/// socket it would arrive on is closed. (With the socket reused, the next
/// DEALER request would read the abandoned one's late reply; a reused REQ
/// socket would refuse to send.) Abandoned by a timeout, then by cancellation.
#[tokio::test]
async fn a_socket_left_mid_exchange_is_never_reused() {
    for (kind, echo) in [
        (SocketKind::Req, Echo::Rep),
        (SocketKind::Dealer, Echo::Router),
    ] {
        for cancel in [false, true] {
            let peer = ZmqPeer::echo(echo, Duration::from_millis(300));
            let mut c = config(1, 1);
            c.request_timeout = Duration::from_millis(100);
            let pool = ZmqPool::new(c).unwrap();
            let sock = SocketConfig::connect(kind, &peer.endpoint);
            if cancel {
                let first = pool.request(&sock, [b"first".to_vec()]);
                assert!(tokio::time::timeout(Duration::from_millis(40), first)
                    .await
                    .is_err());
            } else {
                let e = pool.request(&sock, [b"first".to_vec()]).await.unwrap_err();
                assert!(
                    matches!(e, ZmqError::Timeout { what: "reply", .. }),
                    "{e:?}"
                );
            }
            let mut lease = pool.get(&sock).await.unwrap();
            lease.send([b"second".to_vec()]).await.unwrap();
            let reply = lease.recv_timeout(Duration::from_secs(3)).await.unwrap();
            assert_eq!(
                text(&reply),
                ["second"],
                "{kind} (cancelled: {cancel}): its own reply"
            );
            assert_eq!(pool.stats().pool.created, 2);
        }
    }
}

#[tokio::test]
async fn a_peer_that_is_gone_gives_a_timeout_not_a_hang() {
    let mut c = config(1, 1);
    c.send_timeout = Duration::from_millis(200);
    c.request_timeout = Duration::from_millis(200);
    let pool = ZmqPool::new(c).unwrap();
    let nobody = SocketConfig::connect(SocketKind::Req, format!("tcp://127.0.0.1:{}", free_port()));
    let start = Instant::now();
    let e = pool
        .request(&nobody, [b"anyone?".to_vec()])
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(e, ZmqError::Timeout { .. }), "{e:?}");
    // A peer that answered once and went away: the same.
    let peer = ZmqPeer::echo(Echo::Rep, Duration::ZERO);
    let sock = SocketConfig::connect(SocketKind::Req, &peer.endpoint);
    pool.request(&sock, [b"once".to_vec()]).await.unwrap();
    drop(peer);
    let start = Instant::now();
    let e = pool.request(&sock, [b"again".to_vec()]).await.unwrap_err();
    assert!(matches!(e, ZmqError::Timeout { .. }), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
    let e = pool
        .get(&SocketConfig::connect(SocketKind::Req, "bogus://x"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("REQ to bogus://x: connect:"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold() {
    let router = ZmqPeer::echo(Echo::Router, Duration::ZERO);
    let pool = ZmqPool::new(config(3, 3)).unwrap();
    let dealer = SocketConfig::connect(SocketKind::Dealer, &router.endpoint);
    let max_seen = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (pool, dealer, max_seen) = (pool.clone(), dealer.clone(), max_seen.clone());
        tasks.spawn(async move {
            let reply = pool
                .request(&dealer, [format!("{i}").into_bytes()])
                .await
                .unwrap();
            assert_eq!(text(&reply), [format!("{i}")]);
            max_seen.fetch_max(pool.total_size(), SeqCst);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    assert_eq!(router.requests(), 40);
    assert!(
        router.distinct_peers() <= 3,
        "{} sockets",
        router.distinct_peers()
    );
    assert!(max_seen.load(SeqCst) <= 3);
}

/// A receive waits on the descriptor: on a current-thread runtime the other
/// tasks keep running meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn a_waiting_receive_does_not_block_a_current_thread_runtime() {
    let pool = ZmqPool::new(config(1, 2)).unwrap();
    let port = free_port();
    let pull = SocketConfig::bind(SocketKind::Pull, format!("tcp://127.0.0.1:{port}"));
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, SeqCst);
            }
        }
    });
    let mut lease = pool.get(&pull).await.unwrap();
    let e = lease
        .recv_timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, ZmqError::Timeout { .. }));
    assert!(
        ticks.load(SeqCst) >= 10,
        "only {} ticks",
        ticks.load(SeqCst)
    );
    // And a message that arrives wakes it.
    let push = SocketConfig::connect(SocketKind::Push, format!("tcp://127.0.0.1:{port}"));
    let sender = tokio::spawn({
        let pool = pool.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            pool.send(&push, [b"wake".to_vec()]).await.unwrap();
        }
    });
    assert_eq!(
        text(&lease.recv_timeout(Duration::from_secs(3)).await.unwrap()),
        ["wake"]
    );
    sender.await.unwrap();
    ticker.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn closing_with_unsent_messages_returns_within_its_deadline() {
    let pool = ZmqPool::new(config(2, 2)).unwrap();
    let nowhere =
        SocketConfig::connect(SocketKind::Push, format!("tcp://127.0.0.1:{}", free_port()));
    {
        let mut lease = pool.get(&nowhere).await.unwrap();
        for i in 0..100 {
            lease
                .send([format!("unsent {i}").into_bytes()])
                .await
                .unwrap();
        }
    }
    let start = Instant::now();
    assert!(pool.close(Duration::from_secs(2)).await);
    drop(pool);
    // The runtime's one thread is free: a timer fires on time.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

/// Connectivity comes from the socket monitor: a socket connected to nobody
/// makes the pool Unhealthy, the peer's arrival Healthy, its departure
/// Unhealthy again; the monitors end with their sockets.
#[tokio::test]
async fn health_follows_the_peer_through_the_socket_monitor() {
    use pool_core::{Health, HealthStatus};
    let pool = ZmqPool::new(config(1, 2)).unwrap();
    let port = free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let mut c = SocketConfig::connect(SocketKind::Dealer, &endpoint);
    c.options.reconnect_interval = Some(Duration::from_millis(20));
    let lease = pool.get(&c).await.unwrap();
    let wait = |want: fn(&HealthStatus) -> bool| {
        let pool = pool.clone();
        async move {
            let start = Instant::now();
            while !want(&pool.health()) {
                assert!(
                    start.elapsed() < Duration::from_secs(3),
                    "{}",
                    pool.health()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait(|h| matches!(h, HealthStatus::Unhealthy { .. })).await;
    assert!(pool
        .health()
        .reason()
        .unwrap()
        .contains("none of the 1 connecting sockets has a peer"));
    // A peer binds the endpoint: the handshake completes.
    let peer = std::thread::spawn(move || {
        let ctx = zmq::Context::new();
        let s = ctx.socket(zmq::ROUTER).unwrap();
        s.set_linger(0).unwrap();
        s.bind(&format!("tcp://127.0.0.1:{port}")).unwrap();
        std::thread::sleep(Duration::from_millis(400));
    });
    wait(|h| h.is_healthy()).await;
    assert_eq!(
        (
            pool.stats().connecting_sockets,
            pool.stats().connected_sockets
        ),
        (1, 1)
    );
    peer.join().unwrap();
    wait(|h| matches!(h, HealthStatus::Unhealthy { .. })).await;
    drop(lease);
    pool.close(Duration::from_secs(1)).await;
    let start = Instant::now();
    while pool.stats().connecting_sockets != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the monitor outlived its socket"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
