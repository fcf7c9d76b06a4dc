//! `Tracker`: the driver's CMAP events (its connection pools) and heartbeat
//! events (its server monitors) turned into unipool's `Stats`, engine events
//! and health inputs.
//!
//! The driver calls the handlers synchronously on its own tasks. One mutex
//! guards the state: the driver already takes locks and allocates an event
//! per checkout, so one short critical section adds little (docs/mongo.md
//! has the bench).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::error::{Error, ErrorKind};
use mongodb::event::cmap::{CmapEvent, ConnectionCheckoutFailedReason, ConnectionClosedReason};
use mongodb::event::sdam::SdamEvent;
use mongodb::options::ServerAddress;
use pool_core::util::{lock, HEALTH_WINDOW};
use pool_core::{CloseReason, Event, FailureKind, Observer, Stats, Timing};

/// One driver connection, keyed by its server and id.
#[derive(Debug, Clone, Copy)]
enum Conn {
    /// Created, handshake not done.
    Opening,
    /// Ready in the pool since `since`; `used` once it has been checked
    /// out before.
    Idle { used: bool, since: Instant },
    /// Checked out since then.
    InUse { since: Instant },
}

#[derive(Default)]
struct State {
    conns: HashMap<(u64, u32), Conn>,
    servers: usize,
    opening: usize,
    idle: usize,
    in_use: usize,
    /// Checkouts started and not ended, oldest first. The driver emits no
    /// event when a caller drops an operation while it waits for a
    /// connection, so a start is matched with its end by its start time
    /// (the end event carries the duration), and one left unmatched past
    /// `abandon_after` is taken as abandoned.
    pending: VecDeque<Pending>,
    stats: Stats,
    last_error: Option<(Instant, String)>,
    last_ok: Option<Instant>,
}

/// A checkout in progress.
#[derive(Debug, Clone, Copy)]
struct Pending {
    at: Instant,
    /// It started while every connection the driver may open was open and
    /// in use: it waits for a return.
    full: bool,
}

impl State {
    /// Removes the pending checkout that started closest to `started`;
    /// whether it started on a full pool.
    fn end_checkout(&mut self, started: Instant) -> bool {
        let nearest = self
            .pending
            .iter()
            .enumerate()
            .min_by_key(|(_, p)| {
                if p.at > started {
                    p.at - started
                } else {
                    started - p.at
                }
            })
            .map(|(i, _)| i);
        nearest
            .and_then(|i| self.pending.remove(i))
            .is_some_and(|p| p.full)
    }

    /// Forgets checkouts older than `after`: their callers gave up.
    fn expire(&mut self, after: Duration) {
        while self.pending.front().is_some_and(|p| p.at.elapsed() > after) {
            self.pending.pop_front();
        }
    }
}

/// The driver's view, kept for a pool. Shared with the driver's handlers.
pub(crate) struct Tracker {
    name: String,
    max_per_server: usize,
    /// When a checkout start with no end is taken as abandoned.
    abandon_after: Duration,
    observer: Option<Arc<dyn Observer>>,
    hasher: std::collections::hash_map::RandomState,
    state: Mutex<State>,
}

impl Tracker {
    pub(crate) fn new(
        name: &str,
        max_per_server: usize,
        abandon_after: Duration,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        Tracker {
            name: name.to_string(),
            max_per_server,
            abandon_after,
            observer,
            hasher: Default::default(),
            state: Mutex::new(State::default()),
        }
    }

    fn key(&self, address: &ServerAddress, id: u32) -> (u64, u32) {
        (self.hasher.hash_one(address), id)
    }

    fn emit(&self, event: Event) {
        if let Some(o) = &self.observer {
            o.on_event(&self.name, event);
        }
    }

    /// Handles one CMAP event.
    pub(crate) fn on_cmap(&self, event: CmapEvent) {
        let emitted = {
            let mut s = lock(&self.state);
            self.apply(&mut s, event)
        };
        if let Some(e) = emitted {
            self.emit(e);
        }
    }

    fn apply(&self, s: &mut State, event: CmapEvent) -> Option<Event> {
        match event {
            CmapEvent::PoolCreated(_) => s.servers += 1,
            CmapEvent::PoolClosed(_) => s.servers = s.servers.saturating_sub(1),
            CmapEvent::ConnectionCreated(e) => {
                s.conns
                    .insert(self.key(&e.address, e.connection_id), Conn::Opening);
                s.opening += 1;
            }
            CmapEvent::ConnectionReady(e) => {
                let key = self.key(&e.address, e.connection_id);
                if let Some(c @ Conn::Opening) = s.conns.get_mut(&key) {
                    *c = Conn::Idle {
                        used: false,
                        since: Instant::now(),
                    };
                    s.opening -= 1;
                    s.idle += 1;
                }
                s.stats.created += 1;
                record(&mut s.stats.create_time, e.duration);
                s.last_ok = Some(Instant::now());
                return Some(Event::Created {
                    connect_time: e.duration,
                });
            }
            CmapEvent::ConnectionClosed(e) => {
                let conn = s.conns.remove(&self.key(&e.address, e.connection_id));
                match conn {
                    Some(Conn::Opening) => s.opening -= 1,
                    Some(Conn::Idle { .. }) => s.idle -= 1,
                    Some(Conn::InUse { .. }) => s.in_use -= 1,
                    None => {}
                }
                if matches!(conn, Some(Conn::Opening)) && e.reason == ConnectionClosedReason::Error
                {
                    s.stats.create_failures += 1;
                    return Some(Event::ConnectFailed {
                        kind: FailureKind::Transient,
                    });
                }
                let reason = match e.reason {
                    ConnectionClosedReason::Stale => CloseReason::Evicted,
                    ConnectionClosedReason::Idle => CloseReason::Idle,
                    ConnectionClosedReason::PoolClosed => CloseReason::PoolClosed,
                    _ => CloseReason::Broken,
                };
                match reason {
                    CloseReason::Evicted => s.stats.closed_evicted += 1,
                    CloseReason::Idle => s.stats.closed_idle += 1,
                    CloseReason::Broken => s.stats.closed_broken += 1,
                    _ => {}
                }
                return Some(Event::Closed { reason });
            }
            CmapEvent::ConnectionCheckoutStarted(_) => {
                s.expire(self.abandon_after);
                let max = self.max_per_server * s.servers.max(1);
                let full = s.idle == 0 && s.in_use + s.opening >= max;
                s.pending.push_back(Pending {
                    at: Instant::now(),
                    full,
                });
            }
            CmapEvent::ConnectionCheckoutFailed(e) => {
                let now = Instant::now();
                s.end_checkout(now.checked_sub(e.duration).unwrap_or(now));
                if e.reason == ConnectionCheckoutFailedReason::Timeout {
                    s.stats.timeouts += 1;
                    return Some(Event::TimedOut { waited: e.duration });
                }
                // A connection error: counted by the failed connect's own
                // close event, not twice.
            }
            CmapEvent::ConnectionCheckedOut(e) => {
                let now = Instant::now();
                let started = now.checked_sub(e.duration).unwrap_or(now);
                let full_at_start = s.end_checkout(started);
                // Waited: for a connection opened for this checkout, or for a
                // return because the pool was full when it started.
                let mut waited = false;
                let key = self.key(&e.address, e.connection_id);
                if let Some(c) = s.conns.get_mut(&key) {
                    if let Conn::Idle { used, since } = *c {
                        waited = !used && since > started;
                        if used {
                            s.stats.reused += 1;
                        }
                        *c = Conn::InUse { since: now };
                        s.idle -= 1;
                        s.in_use += 1;
                    }
                }
                waited |= full_at_start;
                if waited {
                    s.stats.acquired_waited += 1;
                    record(&mut s.stats.wait_time, e.duration);
                }
                s.stats.acquired_total += 1;
                s.last_ok = Some(Instant::now());
                return Some(Event::CheckedOut { wait: e.duration });
            }
            CmapEvent::ConnectionCheckedIn(e) => {
                let key = self.key(&e.address, e.connection_id);
                if let Some(c) = s.conns.get_mut(&key) {
                    if let Conn::InUse { since } = *c {
                        *c = Conn::Idle {
                            used: true,
                            since: Instant::now(),
                        };
                        s.in_use -= 1;
                        s.idle += 1;
                        let used = since.elapsed();
                        record(&mut s.stats.use_time, used);
                        return Some(Event::CheckedIn { used });
                    }
                }
            }
            _ => {}
        }
        None
    }

    /// Handles one SDAM event: the monitors' heartbeats are how the driver
    /// learns that a server is down (operations then fail at server
    /// selection, before any pool event).
    pub(crate) fn on_sdam(&self, event: SdamEvent) {
        let kind = {
            let mut s = lock(&self.state);
            match event {
                SdamEvent::ServerHeartbeatSucceeded(_) => {
                    s.last_ok = Some(Instant::now());
                    return;
                }
                SdamEvent::ServerHeartbeatFailed(e) => {
                    s.stats.create_failures += 1;
                    s.last_error = Some((
                        Instant::now(),
                        format!("{}: {}", e.server_address, e.failure),
                    ));
                    failure_kind(&e.failure)
                }
                _ => return,
            }
        };
        self.emit(Event::ConnectFailed { kind });
    }

    /// Records the outcome of one of the pool's own operations (ping,
    /// prewarm).
    pub(crate) fn record(&self, outcome: Result<(), String>) {
        let mut s = lock(&self.state);
        match outcome {
            Ok(()) => s.last_ok = Some(Instant::now()),
            Err(e) => s.last_error = Some((Instant::now(), e)),
        }
    }

    /// The stats snapshot.
    pub(crate) fn stats(&self) -> Stats {
        let mut s = lock(&self.state);
        s.expire(self.abandon_after);
        let mut stats = s.stats.clone();
        stats.max_size = self.max_per_server * s.servers.max(1);
        stats.opening = s.opening;
        stats.idle = s.idle;
        stats.in_use = s.in_use;
        stats.size = s.opening + s.idle + s.in_use;
        stats.waiting = s.pending.len();
        stats.acquired_fast = stats.acquired_total - stats.acquired_waited;
        stats.reuse_rate = if stats.acquired_total == 0 {
            0.0
        } else {
            stats.reused as f64 / stats.acquired_total as f64
        };
        stats
    }

    /// The last failure, whenever it happened.
    pub(crate) fn last_error(&self) -> Option<String> {
        lock(&self.state)
            .last_error
            .as_ref()
            .map(|(_, e)| e.clone())
    }

    /// A failure within the health window with no success after it.
    pub(crate) fn recent_failure(&self) -> Option<String> {
        let s = lock(&self.state);
        match &s.last_error {
            Some((at, e))
                if at.elapsed() < HEALTH_WINDOW && s.last_ok.is_none_or(|ok| ok < *at) =>
            {
                Some(e.clone())
            }
            _ => None,
        }
    }
}

fn record(t: &mut Timing, d: Duration) {
    t.count += 1;
    t.total += d;
    t.max = t.max.max(d);
}

/// What kind of failure a driver error is, for events and retries.
pub(crate) fn failure_kind(e: &Error) -> FailureKind {
    match &*e.kind {
        ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => FailureKind::Timeout,
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => FailureKind::Transient,
        _ if e.contains_label("RetryableWriteError")
            || e.contains_label("TransientTransactionError") =>
        {
            FailureKind::Transient
        }
        _ => FailureKind::Permanent,
    }
}
