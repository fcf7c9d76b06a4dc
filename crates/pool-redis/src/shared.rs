//! The shared lane: N multiplexed connections, round-robin, reconnecting by
//! themselves.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use pool_core::util::{read, write};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Counters of the shared lane.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) in_flight: AtomicUsize,
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// A snapshot of the shared lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedStats {
    /// Multiplexed connections in the lane.
    pub connections: usize,
    /// Commands (or pipelines) sent and not yet answered.
    pub in_flight: usize,
    /// Commands (or pipelines) sent in total.
    pub requests: u64,
    /// Of which failed (server or connection errors).
    pub errors: u64,
}

/// A cheap clone of one of the lane's multiplexed connections. Many tasks may use
/// clones at once; do not send blocking commands (`BLPOP`) here — they hold up
/// every other caller of that connection: use a [`Lease`](crate::Lease).
#[derive(Clone)]
pub struct SharedConnection {
    pub(crate) conn: ConnectionManager,
    pub(crate) counters: Arc<Counters>,
}

impl std::fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConnection").finish_non_exhaustive()
    }
}

/// Counts a request as in flight until dropped (so a cancelled one is uncounted).
pub(crate) struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    pub(crate) fn start(c: &'a Counters) -> Self {
        c.in_flight.fetch_add(1, Relaxed);
        c.requests.fetch_add(1, Relaxed);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl ConnectionLike for SharedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let _f = InFlight::start(&self.counters);
            let r = self.conn.req_packed_command(cmd).await;
            if r.is_err() {
                self.counters.errors.fetch_add(1, Relaxed);
            }
            r
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let _f = InFlight::start(&self.counters);
            let r = self.conn.req_packed_commands(pipeline, offset, count).await;
            if r.is_err() {
                self.counters.errors.fetch_add(1, Relaxed);
            }
            r
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// The lane: its connections and where the round-robin stands.
pub(crate) struct Lane {
    /// Replaced as a whole by `RedisPool::evict_all`; read (one clone) per
    /// `pick`, which is cheap next to a round trip to the server.
    pub(crate) conns: RwLock<Vec<ConnectionManager>>,
    pub(crate) next: AtomicUsize,
    pub(crate) counters: Arc<Counters>,
}

impl Lane {
    pub(crate) fn pick(&self) -> SharedConnection {
        let conns = read(&self.conns);
        let i = self.next.fetch_add(1, Relaxed) % conns.len();
        SharedConnection {
            conn: conns[i].clone(),
            counters: self.counters.clone(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.conns).len()
    }

    /// Puts `fresh` connections in place of the lane's (same number).
    pub(crate) fn replace(&self, fresh: Vec<ConnectionManager>) {
        let old = std::mem::replace(&mut *write(&self.conns), fresh);
        drop(old);
    }

    pub(crate) fn stats(&self) -> SharedStats {
        SharedStats {
            connections: self.len(),
            in_flight: self.counters.in_flight.load(Relaxed),
            requests: self.counters.requests.load(Relaxed),
            errors: self.counters.errors.load(Relaxed),
        }
    }
}
