//! Which connections a host's responses came over: the figure behind
//! `connections_opened`, `open_connections` and `reuse_rate`.
//!
//! hyper tags every response with the local and remote address of the
//! connection that carried it (`HttpInfo`). A local address not seen before is a
//! new connection. This costs one lock (of eight shards, picked by port, so
//! two cores working on different connections rarely meet) and one hash lookup
//! per response; a reqwest connector layer would see every connect directly, but
//! reqwest then type-erases its whole connector stack and clones it (three boxed
//! layers) several times per request (docs/http.md has the measured cost).
//!
//! What this cannot see: a connection that never carried a response (its
//! request failed) is not counted, and a connection the server closed counts as
//! open until it has been unseen for `pool_idle_timeout`, after which reqwest
//! would have closed it anyway (reading `Connection: close` on every response
//! would cost as much as the rest of this together).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 8;

type Live = HashMap<SocketAddr, Instant, BuildHasherDefault<AddrHasher>>;

/// Local address of each connection still thought open -> its last response.
/// Aligned so that two shards never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Live>);

/// Connections seen on one host.
#[derive(Debug)]
pub(crate) struct Tracker {
    shards: [Shard; SHARDS],
    /// Distinct connections that carried a response.
    opened: AtomicU64,
    /// A connection unseen for this long is closed: reqwest closes idle ones
    /// after `pool_idle_timeout`, and one request lasts at most `request_timeout`.
    forget_after: Duration,
    idle_timeout: Duration,
}

impl Tracker {
    pub(crate) fn new(idle_timeout: Duration, request_timeout: Duration) -> Self {
        Tracker {
            shards: Default::default(),
            opened: AtomicU64::new(0),
            forget_after: idle_timeout.saturating_add(request_timeout),
            idle_timeout,
        }
    }

    /// A response came over the connection bound to `local` at about `now`.
    pub(crate) fn saw(&self, local: SocketAddr, now: Instant) {
        let shard = &self.shards[usize::from(local.port()) % SHARDS];
        let mut live = pool_core::util::lock(&shard.0);
        match live.get_mut(&local) {
            Some(last) if now.saturating_duration_since(*last) < self.forget_after => {
                *last = (*last).max(now);
            }
            // Unseen for that long: the port now belongs to a new connection.
            Some(last) => {
                self.opened.fetch_add(1, Relaxed);
                *last = now;
            }
            None => {
                self.opened.fetch_add(1, Relaxed);
                // New connections are rare on a reused pool: pruning here keeps
                // the map bounded by the connections of the last few seconds.
                let forget_after = self.forget_after;
                live.retain(|_, last| now.saturating_duration_since(*last) < forget_after);
                live.insert(local, now);
            }
        }
    }

    /// (connections opened, connections that carried a response within
    /// `pool_idle_timeout`).
    pub(crate) fn counts(&self) -> (u64, usize) {
        let now = Instant::now();
        let open = self
            .shards
            .iter()
            .map(|shard| {
                let live = pool_core::util::lock(&shard.0);
                live.values()
                    .filter(|last| now.saturating_duration_since(**last) < self.idle_timeout)
                    .count()
            })
            .sum();
        (self.opened.load(Relaxed), open)
    }
}

/// Local addresses of one host differ mostly in the port: a multiply-xor hash
/// is enough, and a tenth of SipHash's cost on this path.
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn counts_distinct_connections() {
        let t = Tracker::new(Duration::from_secs(4), Duration::from_secs(30));
        let t0 = Instant::now();
        t.saw(addr(1), t0);
        t.saw(addr(1), t0);
        t.saw(addr(2), t0);
        assert_eq!(t.counts(), (2, 2));
    }

    #[test]
    fn a_connection_unseen_past_the_limit_is_forgotten_on_the_next_new_one() {
        let t = Tracker::new(Duration::from_secs(1), Duration::from_secs(1));
        let t0 = Instant::now();
        t.saw(addr(1), t0);
        // Same shard (ports 8 apart), past the limit: port 1 is dropped.
        t.saw(addr(9), t0 + Duration::from_secs(3));
        assert_eq!(t.shards[1].0.lock().unwrap().len(), 1);
        // Its port reused by a new connection counts again.
        t.saw(addr(1), t0 + Duration::from_secs(3));
        assert_eq!(t.counts().0, 3);
    }
}
