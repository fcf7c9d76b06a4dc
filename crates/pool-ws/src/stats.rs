//! The pool's WebSocket counters, shared by every connection of every URL.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use pool_core::Stats;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) pings: AtomicU64,
    pub(crate) pongs: AtomicU64,
    pub(crate) rtt_nanos_total: AtomicU64,
    pub(crate) rtt_nanos_max: AtomicU64,
    pub(crate) ping_timeouts: AtomicU64,
    pub(crate) peer_closes: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) dropped_messages: AtomicU64,
}

impl Counters {
    pub(crate) fn pong(&self, rtt: Duration) {
        let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        self.pongs.fetch_add(1, Relaxed);
        self.rtt_nanos_total.fetch_add(nanos, Relaxed);
        self.rtt_nanos_max.fetch_max(nanos, Relaxed);
    }

    pub(crate) fn dropped(&self) {
        self.dropped_messages.fetch_add(1, Relaxed);
    }
}

/// A snapshot of a WebSocket pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WsStats {
    /// The engine's figures over all URLs: `created` (opened), `reused`,
    /// `reuse_rate`, `closed_idle`, `closed_lifetime`, `closed_check_failed`
    /// (a ping without pong), `closed_broken` (peer close, error, abandoned).
    pub pool: Stats,
    /// URLs with a sub-pool.
    pub urls: usize,
    /// Pings sent (keep-alive and checkout checks).
    pub pings: u64,
    /// Pongs received in time.
    pub pongs: u64,
    /// Mean ping → pong round trip.
    pub pong_rtt_mean: Duration,
    /// Longest ping → pong round trip.
    pub pong_rtt_max: Duration,
    /// Pings whose pong did not come within `ping_timeout` (connection closed).
    pub ping_timeouts: u64,
    /// Connections the peer closed.
    pub peer_closes: u64,
    /// Connections that failed (I/O or protocol error).
    pub errors: u64,
    /// Messages that arrived on an idle connection and were dropped.
    pub dropped_messages: u64,
}

impl WsStats {
    pub(crate) fn new(pool: Stats, urls: usize, c: &Counters) -> Self {
        let pongs = c.pongs.load(Relaxed);
        let total = c.rtt_nanos_total.load(Relaxed);
        WsStats {
            pool,
            urls,
            pings: c.pings.load(Relaxed),
            pongs,
            pong_rtt_mean: Duration::from_nanos(total.checked_div(pongs).unwrap_or(0)),
            pong_rtt_max: Duration::from_nanos(c.rtt_nanos_max.load(Relaxed)),
            ping_timeouts: c.ping_timeouts.load(Relaxed),
            peer_closes: c.peer_closes.load(Relaxed),
            errors: c.errors.load(Relaxed),
            dropped_messages: c.dropped_messages.load(Relaxed),
        }
    }
}
