//! Opening connections: how many (only what waiters and `min_idle` need, within
//! `max_size` and a keyed pool's total), and the connect task itself, with its
//! timeout, opt-in retries and the failure handed to the oldest waiter.

use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::nanos_of;
use crate::error::{ConnectFailure, LastError};
use crate::event_log::EventLog;
use crate::events::{Event, FailureKind};
use crate::inner::Inner;
use crate::jitter::{backoff, unit_random};
use crate::limit::Capacity;
use crate::lock::lock;
use crate::manager::Manager;
use crate::slots::{Entry, Vacant};
use crate::stats::CloseReason;

/// Cap of one retry backoff step.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl<M: Manager> Inner<M> {
    /// Starts connects for waiters not yet covered by one in flight, while there
    /// is capacity. Returns whether it started one.
    pub(crate) fn maybe_open(&self) -> bool {
        let mut started = false;
        loop {
            if self.is_closed() {
                return started;
            }
            let waiting = self.waiters.len();
            let opening = self.opening.load(SeqCst);
            if opening >= waiting {
                return started;
            }
            if self
                .opening
                .compare_exchange(opening, opening + 1, SeqCst, SeqCst)
                .is_err()
            {
                continue;
            }
            if !self.start_open() {
                self.opening.fetch_sub(1, SeqCst);
                return started;
            }
            started = true;
        }
    }

    /// Opens connections until `min_idle` idle ones exist or are on their way.
    pub(crate) fn top_up_min_idle(&self) {
        while !self.is_closed()
            && self.slots.idle_count() + self.opening.load(SeqCst) < self.min_idle.load(SeqCst)
        {
            self.opening.fetch_add(1, SeqCst);
            if !self.start_open() {
                self.opening.fetch_sub(1, SeqCst);
                return;
            }
        }
    }

    /// Starts one connect if none is in flight (for `try_get`).
    pub(crate) fn top_up_one(&self) {
        if self.opening.compare_exchange(0, 1, SeqCst, SeqCst).is_ok() && !self.start_open() {
            self.opening.fetch_sub(1, SeqCst);
        }
    }

    /// Reserves capacity and a slot and spawns the connect; `opening` is already
    /// counted by the caller.
    fn start_open(&self) -> bool {
        if !self.breaker.admits_connect() {
            return false;
        }
        if !self.reserve() {
            return false;
        }
        let Some(slot) = self.slots.take_vacant() else {
            // Unreachable while the counts hold (a slot is freed before `size`
            // drops); give the reservation back rather than panic.
            self.size.fetch_sub(1, SeqCst);
            if let Some(total) = &self.total {
                total.release();
            }
            return false;
        };
        let Some(me) = self.me.upgrade() else {
            self.free(slot);
            return false;
        };
        self.handle.spawn(async move { me.open_into(slot).await });
        true
    }

    /// Reserves one unit of `size` (and of the keyed pool's total).
    fn reserve(&self) -> bool {
        let max = self.max_size.load(SeqCst);
        let mut s = self.size.load(SeqCst);
        loop {
            if s >= max {
                return false;
            }
            match self.size.compare_exchange_weak(s, s + 1, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if let Some(total) = &self.total {
            let me: Weak<dyn Capacity> = self.me.clone();
            if !total.try_acquire(&me) {
                self.size.fetch_sub(1, SeqCst);
                return false;
            }
        }
        true
    }

    /// The connect task: runs detached from any `get()`, so a cancelled caller
    /// never abandons a half-open connection (guarantee 2), and the result goes to
    /// whoever waits longest.
    async fn open_into(self: Arc<Self>, slot: Vacant) {
        let (result, generation) = loop {
            let generation = self.generation.load(Acquire);
            let result = self.connect_with_retry().await;
            if generation == self.generation.load(Acquire) || self.is_closed() {
                break (result, generation);
            }
            // `evict_all` ran while this connect was in flight: what it made
            // (or why it failed) belongs to the old credentials. Made again.
            if let Ok((conn, connect_time)) = result {
                self.opened(connect_time);
                drop(conn);
                self.closed_one(CloseReason::Evicted);
            }
        };
        self.opening.fetch_sub(1, SeqCst);
        match result {
            Ok((conn, connect_time)) => {
                self.opened(connect_time);
                self.breaker.succeeded();
                let created = Instant::now();
                *lock(&self.last_connect_ok) = Some(created);
                let now = self.clock.exact();
                let entry = Entry {
                    conn,
                    created,
                    expires: self.lifetime_deadline(now),
                    last_used: now,
                    last_checked: now,
                    fresh: true,
                    generation,
                    log: EventLog::new(),
                };
                let slot = self.slots.fill(slot, entry);
                self.mark_used(&slot);
                self.release(slot);
            }
            Err(failure) => {
                tracing::warn!(pool = %self.name, error = %failure, "connect failed");
                let message = self.record_error(&failure);
                let open = self.breaker.failed(message);
                // Fail fast (guarantee 5): the oldest waiter gets the cause now.
                // It leaves the queue before the slot is freed, or freeing would
                // start another connect on its behalf.
                self.waiters.fail_oldest(failure.into_pool_error());
                if let Some(open) = open {
                    // No connect will be tried for them until the probe.
                    self.waiters.fail_all(|| open.error());
                }
                self.free(slot);
            }
        }
    }

    /// Counts (and reports) a connection opened by an attempt of `connect_time`.
    fn opened(&self, connect_time: Duration) {
        self.counters.created.fetch_add(1, Relaxed);
        self.counters.create.record(nanos_of(connect_time));
        self.emit(|| Event::Created { connect_time });
    }

    /// Connects (with the retries the config allows); the connection and how
    /// long its successful attempt took.
    async fn connect_with_retry(
        &self,
    ) -> Result<(M::Connection, Duration), ConnectFailure<M::Error>> {
        let budget_end = Instant::now() + self.config.acquire_timeout;
        let mut attempt = 0u32;
        loop {
            let timeout = self.config.connect_timeout;
            let began = Instant::now();
            let (failure, transient) =
                match tokio::time::timeout(timeout, self.manager.connect()).await {
                    Ok(Ok(conn)) => match self.after_connect(conn).await {
                        Ok(conn) => return Ok((conn, began.elapsed())),
                        Err(failure) => failure,
                    },
                    Ok(Err(e)) => {
                        let transient = self.manager.is_transient(&e);
                        (ConnectFailure::Backend(e), transient)
                    }
                    Err(_) => (ConnectFailure::Timeout(timeout), true),
                };
            self.counters.create_failures.fetch_add(1, Relaxed);
            self.emit(|| Event::ConnectFailed {
                kind: match (&failure, transient) {
                    (ConnectFailure::Timeout(_), _) => FailureKind::Timeout,
                    (_, true) => FailureKind::Transient,
                    (_, false) => FailureKind::Permanent,
                },
            });
            if attempt >= self.config.connect_retries || !transient || self.is_closed() {
                return Err(failure);
            }
            self.record_error(&failure);
            let backoff = backoff(self.config.retry_backoff, attempt, MAX_BACKOFF);
            if Instant::now() + backoff >= budget_end {
                return Err(failure);
            }
            tracing::debug!(pool = %self.name, attempt, ?backoff, "retrying connect");
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    /// The `after_connect` hook, if any, under its own `connect_timeout`: its
    /// failure is the connect's (with whether to retry it).
    async fn after_connect(
        &self,
        mut conn: M::Connection,
    ) -> Result<M::Connection, (ConnectFailure<M::Error>, bool)> {
        let Some(hook) = &self.hooks.after_connect else {
            return Ok(conn);
        };
        let timeout = self.config.connect_timeout;
        match tokio::time::timeout(timeout, hook(&mut conn)).await {
            Ok(Ok(())) => Ok(conn),
            Ok(Err(e)) => {
                let transient = self.manager.is_transient(&e);
                Err((ConnectFailure::Backend(e), transient))
            }
            Err(_) => Err((ConnectFailure::Timeout(timeout), true)),
        }
    }

    fn record_error(&self, failure: &ConnectFailure<M::Error>) -> LastError {
        let message: LastError = Arc::new(ErrorMessage(failure.to_string()));
        *lock(&self.last_error) = Some((Instant::now(), message.clone()));
        message
    }

    /// The last connect failure, whenever it happened.
    pub(crate) fn last_error(&self) -> Option<LastError> {
        lock(&self.last_error).as_ref().map(|(_, e)| e.clone())
    }

    /// The last connect failure, if it happened after `since`.
    pub(crate) fn last_error_since(&self, since: Instant) -> Option<LastError> {
        match &*lock(&self.last_error) {
            Some((at, e)) if *at >= since => Some(e.clone()),
            _ => None,
        }
    }

    /// When a connection opened at `now` retires; `u64::MAX`: never.
    fn lifetime_deadline(&self, now: u64) -> u64 {
        let Some(life) = self.config.max_lifetime else {
            return u64::MAX;
        };
        // Up to −10 % so connections opened together do not expire together
        // (sqlx #3051).
        let life = life - (life / 10).mul_f64(unit_random());
        now.saturating_add(crate::clock::nanos_of(life))
    }
}

/// A connect failure kept as text, for `PoolError::Timeout::last_error` and health.
#[derive(Debug)]
struct ErrorMessage(String);

impl std::fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorMessage {}
