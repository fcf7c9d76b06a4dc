//! Kill and restart under load for the in-process peers (HTTP, ZeroMQ): 16
//! tasks call without pause while the server is killed — its listener and
//! every connection gone at once — and started again on the same address.
//! Every call returns within its bound, calls fail while the server is down,
//! and the pool serves again by itself; the time from the restart to the
//! first success is printed (docs/reliability.md quotes it). PostgreSQL,
//! Redis, WebSocket and MongoDB have theirs in their own test files.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use unipool_tests::http_server::RestartableServer;
use unipool_tests::zmq_peer::{Echo, ZmqPeer};

const TASKS: usize = 16;

/// One call: when it started and ended (since the run began), and whether it
/// succeeded.
#[derive(Debug, Clone, Copy)]
struct Call {
    start: Duration,
    end: Duration,
    ok: bool,
}

/// What a run saw around the outage.
#[derive(Debug)]
struct Outage {
    calls: Vec<Call>,
    killed_at: Duration,
    restarted_at: Duration,
}

impl Outage {
    fn longest(&self) -> Duration {
        self.calls
            .iter()
            .map(|c| c.end - c.start)
            .max()
            .unwrap_or_default()
    }

    fn ok_before_kill(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| c.ok && c.end < self.killed_at)
            .count()
    }

    fn failed(&self) -> usize {
        self.calls.iter().filter(|c| !c.ok).count()
    }

    /// From the restart to the end of the first call that succeeded after it
    /// and started after the kill (a call of before the kill may have been
    /// answered before the server died).
    fn time_to_recover(&self) -> Option<Duration> {
        self.calls
            .iter()
            .filter(|c| c.ok && c.start > self.killed_at && c.end > self.restarted_at)
            .map(|c| c.end - self.restarted_at)
            .min()
    }

    fn ok_after_restart(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| c.ok && c.start > self.restarted_at)
            .count()
    }
}

/// Runs `call` from 16 tasks for 300 ms, kills the server, restarts it
/// 500 ms later, and goes on for 1.5 s. Each call is bounded by `bound`
/// (a call that reaches it counts as failed; the test then checks none did).
async fn outage_under_load<F, Fut>(
    bound: Duration,
    kill: impl FnOnce(),
    restart: impl FnOnce(),
    call: F,
) -> Outage
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let begin = Instant::now();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (call, calls, stop) = (call.clone(), calls.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let start = begin.elapsed();
                let ok = tokio::time::timeout(bound, call(t * 1_000_000 + i))
                    .await
                    .unwrap_or(false);
                let end = begin.elapsed();
                calls.lock().unwrap().push(Call { start, end, ok });
                if !ok {
                    // A caller that failed does not spin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_at = begin.elapsed();
    kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted_at = begin.elapsed();
    restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let calls = calls.lock().unwrap().clone();
    Outage {
        calls,
        killed_at,
        restarted_at,
    }
}

fn check(what: &str, o: &Outage, bound: Duration) {
    let recover = o.time_to_recover();
    eprintln!(
        "{what}: {} calls, {} ok before the kill, {} failed, {} ok after the restart; \
         longest call {:?}; served again {:?} after the restart",
        o.calls.len(),
        o.ok_before_kill(),
        o.failed(),
        o.ok_after_restart(),
        o.longest(),
        recover
    );
    assert!(
        o.ok_before_kill() > 0,
        "{what}: nothing served before the kill"
    );
    assert!(o.failed() > 0, "{what}: the kill was not noticed");
    assert!(
        o.longest() < bound,
        "{what}: a call took {:?}, its bound is {bound:?}",
        o.longest()
    );
    let recover = recover.unwrap_or_else(|| panic!("{what}: never served after the restart"));
    assert!(
        recover < Duration::from_secs(1),
        "{what}: served again only {recover:?} after the restart"
    );
    assert!(
        o.ok_after_restart() > 0,
        "{what}: nothing served after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_killed_and_restarted_under_load() {
    let server = Arc::new(Mutex::new(RestartableServer::start()));
    let url = format!("http://{}/ok", server.lock().unwrap().addr);
    let config = pool_http::HttpConfig {
        max_in_flight: 10,
        max_in_flight_per_host: 10,
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(1),
        acquire_timeout: Duration::from_secs(2),
        ..pool_http::HttpConfig::default()
    };
    let pool = pool_http::HttpPool::new("restart", config).unwrap();
    let bound = Duration::from_secs(5);
    let p = pool.clone();
    let (s1, s2) = (server.clone(), server.clone());
    let outage = outage_under_load(
        bound,
        move || s1.lock().unwrap().kill(),
        move || s2.lock().unwrap().start_again(),
        move |_| {
            let (p, url) = (p.clone(), url.clone());
            async move {
                match p.send(p.get(&url).expect("url")).await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        },
    )
    .await;
    check("http", &outage, bound);
    assert_eq!(pool.stats().in_flight, 0, "{:?}", pool.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zeromq_peer_killed_and_restarted_under_load() {
    let peer = ZmqPeer::echo(Echo::Router, Duration::ZERO);
    let endpoint = peer.endpoint.clone();
    let peer = Arc::new(Mutex::new(Some(peer)));
    let mut config = pool_zmq::ZmqConfig::default();
    config.pool.max_size = 10;
    config.max_total = 10;
    config.pool.acquire_timeout = Duration::from_secs(2);
    // A request sent to the dead peer gets no reply: it ends here and its
    // socket is retired.
    config.request_timeout = Duration::from_millis(300);
    let pool = pool_zmq::ZmqPool::new(config).unwrap();
    let socket = pool_zmq::SocketConfig::connect(pool_zmq::SocketKind::Req, endpoint.clone());
    let bound = Duration::from_secs(3);
    let p = pool.clone();
    let (k, r) = (peer.clone(), peer.clone());
    let outage = outage_under_load(
        bound,
        // Dropping the peer closes its socket (linger 0) and ends its thread.
        move || drop(k.lock().unwrap().take()),
        move || {
            *r.lock().unwrap() = Some(ZmqPeer::echo_on(Echo::Router, Duration::ZERO, endpoint));
        },
        move |i| {
            let (p, socket) = (p.clone(), socket.clone());
            async move {
                let msg = i.to_string().into_bytes();
                match p.request(&socket, [msg.clone()]).await {
                    Ok(reply) => {
                        assert_eq!(reply.last(), Some(&msg), "a reply went to another caller");
                        true
                    }
                    Err(_) => false,
                }
            }
        },
    )
    .await;
    check("zmq", &outage, bound);
    let s = pool_core::Pool::stats(&pool);
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
}
