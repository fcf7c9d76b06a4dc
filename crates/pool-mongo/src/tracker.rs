//! `Tracker`: the driver's CMAP events (its connection pools) and heartbeat
//! events (its server monitors) turned into unipool's `Stats`, engine events
//! and health inputs.
//!
//! The driver calls the handlers synchronously on its own tasks. One mutex
//! guards the state: the driver already takes locks and allocates an event
//! per checkout, so one short critical section adds little (docs/mongo.md
//! has the bench).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::error::{Error, ErrorKind};
use mongodb::event::cmap::{CmapEvent, ConnectionCheckoutFailedReason, ConnectionClosedReason};
use mongodb::event::sdam::SdamEvent;
use mongodb::options::ServerAddress;
use pool_core::util::lock;
use pool_core::{CloseReason, Event, FailureKind, Observer, Stats, Timing};

/// How long a failure colours `health()` (as for engine pools).
const HEALTH_WINDOW: Duration = Duration::from_secs(60);

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
    waiting: usize,
    /// Checkouts that started while every connection the driver may open
    /// was open and in use, and have not ended: they wait for a return.
    waiting_for_one: usize,
    stats: Stats,
    last_error: Option<(Instant, String)>,
    last_ok: Option<Instant>,
    /// Checkouts that failed on a connection error (not counted as failed
    /// connects: the connect's own close event is).
    checkout_errors: u64,
}

/// The driver's view, kept for a pool. Shared with the driver's handlers.
pub(crate) struct Tracker {
    name: String,
    max_per_server: usize,
    observer: Option<Arc<dyn Observer>>,
    hasher: std::collections::hash_map::RandomState,
    state: Mutex<State>,
}

impl Tracker {
    pub(crate) fn new(
        name: &str,
        max_per_server: usize,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        Tracker {
            name: name.to_string(),
            max_per_server,
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
                s.waiting += 1;
                let full = self.max_per_server * s.servers.max(1);
                if s.idle == 0 && s.in_use + s.opening >= full {
                    s.waiting_for_one += 1;
                }
            }
            CmapEvent::ConnectionCheckoutFailed(e) => {
                s.waiting = s.waiting.saturating_sub(1);
                s.waiting_for_one = s.waiting_for_one.saturating_sub(1);
                if e.reason == ConnectionCheckoutFailedReason::Timeout {
                    s.stats.timeouts += 1;
                    return Some(Event::TimedOut { waited: e.duration });
                }
                s.checkout_errors += 1;
            }
            CmapEvent::ConnectionCheckedOut(e) => {
                s.waiting = s.waiting.saturating_sub(1);
                let now = Instant::now();
                let started = now.checked_sub(e.duration).unwrap_or(now);
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
                if s.waiting_for_one > 0 {
                    s.waiting_for_one -= 1;
                    waited = true;
                }
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
        let s = lock(&self.state);
        let mut stats = s.stats.clone();
        stats.max_size = self.max_per_server * s.servers.max(1);
        stats.opening = s.opening;
        stats.idle = s.idle;
        stats.in_use = s.in_use;
        stats.size = s.opening + s.idle + s.in_use;
        stats.waiting = s.waiting;
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
