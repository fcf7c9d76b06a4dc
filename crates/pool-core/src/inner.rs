//! The shared state of one pool and every transition of a slot: take, return,
//! hand-off, open, close.
//!
//! The counts that bound the pool:
//! - `size` = idle + in use + opening, reserved by CAS *before* a connect starts
//!   and released only *after* the connection is dropped (guarantee 1);
//! - `opening` ≤ `waiters.count` at the moment each connect is started, so a burst
//!   never opens more than the demand it saw (guarantee 7, bb8 #221).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{PoolConfig, QueueMode};
use crate::deadlines::Deadlines;
use crate::error::{ConnectFailure, LastError};
use crate::health::Health;
use crate::limit::{Capacity, TotalLimit};
use crate::manager::Manager;
use crate::padded::CachePadded;
use crate::slots::{Bitmap, Entry, Slots};
use crate::stats::{Counters, Stats};
use crate::waiters::{lock, QueueGuard, WaitQueue, Waiter, CONN, NOTIFIED};

/// Why a connection was closed (which counter it lands in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    Broken,
    Idle,
    Lifetime,
    CheckFailed,
    /// Detached by its holder, or closed because the pool is closed: no counter.
    Other,
}

/// How long a connect failure colours `health()`.
const HEALTH_WINDOW: Duration = Duration::from_secs(60);
/// Cap of one retry backoff step.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Leak warnings: set in `held_since` once the warning for that checkout is logged.
const WARNED: u64 = 1 << 63;

pub(crate) struct Inner<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: PoolConfig,
    pub(crate) name: String,
    /// Origin of the nanosecond timestamps kept in atomics.
    pub(crate) epoch: Instant,
    /// Slots holding an idle connection: the lock-free fast path.
    pub(crate) idle: Bitmap,
    /// Slots holding no connection.
    free: Bitmap,
    pub(crate) slots: Slots<M::Connection>,
    pub(crate) waiters: WaitQueue<M::Error>,
    /// The one timer for the waiters' deadlines.
    pub(crate) deadlines: Arc<Deadlines>,
    /// Live connections (idle + in use + opening); guards `max_size`.
    size: CachePadded<AtomicUsize>,
    /// Connect attempts in flight (for one waiter or for `min_idle`).
    opening: AtomicUsize,
    closed: AtomicBool,
    /// Signalled when `size` drops to 0 after `close()`.
    close_notify: Notify,
    pub(crate) counters: Counters,
    /// The last connect failure and when it happened (for `Timeout` and health).
    last_error: Mutex<Option<(Instant, LastError)>>,
    last_connect_ok: Mutex<Option<Instant>>,
    pub(crate) handle: Handle,
    /// Shared with the other sub-pools of a `KeyedPool`.
    pub(crate) total: Option<Arc<TotalLimit>>,
    pub(crate) me: Weak<Inner<M>>,
    rng: AtomicU64,
    cursor: AtomicUsize,
    window_nanos: u64,
}

impl<M: Manager> Inner<M> {
    pub(crate) fn new(
        manager: M,
        config: PoolConfig,
        name: String,
        handle: Handle,
        total: Option<Arc<TotalLimit>>,
        epoch: Instant,
    ) -> Arc<Self> {
        let n = config.max_size;
        Arc::new_cyclic(|me| Inner {
            manager,
            name,
            epoch,
            idle: Bitmap::new(n, false),
            free: Bitmap::new(n, true),
            slots: Slots::new(n),
            waiters: WaitQueue::new(),
            deadlines: Deadlines::new(),
            size: CachePadded(AtomicUsize::new(0)),
            opening: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            close_notify: Notify::new(),
            counters: Counters::new(),
            last_error: Mutex::new(None),
            last_connect_ok: Mutex::new(None),
            handle,
            total,
            me: me.clone(),
            rng: AtomicU64::new(seed(me.as_ptr() as u64)),
            cursor: AtomicUsize::new(0),
            window_nanos: config.fairness_window.as_nanos() as u64,
            config,
        })
    }

    pub(crate) fn now_nanos(&self) -> u64 {
        self.nanos(Instant::now())
    }

    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    pub(crate) fn size(&self) -> usize {
        self.size.load(SeqCst)
    }

    // ----- taking an idle connection -------------------------------------------

    fn take_idle(&self) -> Option<usize> {
        match self.config.queue_mode {
            QueueMode::Lifo => self.idle.take_lowest(),
            QueueMode::Fifo => self
                .idle
                .take_from(self.cursor.fetch_add(1, Relaxed) % self.config.max_size),
        }
    }

    /// May a task that is not queued take an idle connection now? Yes while nobody
    /// waits or the oldest waiter is younger than `fairness_window` (guarantee 3).
    /// `now` gives the pool's clock; it is read only when the answer needs it.
    #[inline]
    fn may_barge(&self, now: impl FnOnce() -> u64) -> bool {
        if self.waiters.count.load(SeqCst) == 0 {
            return true;
        }
        if self.window_nanos == 0 {
            return false;
        }
        let head = self.waiters.head_since.load(SeqCst);
        head == u64::MAX || now().saturating_sub(head) < self.window_nanos
    }

    /// The lock-free fast path: an idle connection, if fairness allows (guarantee 8).
    #[inline]
    pub(crate) fn try_fast(&self, now: impl FnOnce() -> u64) -> Option<usize> {
        if self.may_barge(now) {
            self.take_idle()
        } else {
            None
        }
    }

    /// A queued waiter may take an idle connection if it is the oldest one, or if
    /// the oldest is still young enough to be overtaken.
    pub(crate) fn take_idle_as_waiter(&self, w: &Waiter<M::Error>) -> Option<usize> {
        // Most looks find nothing idle (the caller just missed the fast path, or
        // a running task took what it was told of): skip the fairness clock.
        if !self.idle.any() {
            return None;
        }
        if w.since <= self.waiters.head_since.load(SeqCst) || self.may_barge(|| self.now_nanos()) {
            self.take_idle()
        } else {
            None
        }
    }

    // ----- giving a connection back --------------------------------------------

    /// Puts a connection (already stored in slot `idx`, owned by the caller) back
    /// into circulation: straight to the oldest waiter when it has waited past the
    /// fairness window, else into the idle set with one waiter notified.
    pub(crate) fn release_slot(&self, idx: usize) {
        if self.waiters.count.load(SeqCst) != 0 {
            // One lock for both outcomes: a hand-off, or idle plus a notification.
            let mut q = self.waiters.lock();
            if let Some(w) = self.pop_due(&mut q) {
                w.set_conn(idx);
                drop(q);
                w.wake();
                return;
            }
            self.idle.set(idx);
            let told = q.notify_one();
            drop(q);
            if let Some(waker) = told {
                waker.wake();
            }
        } else {
            self.idle.set(idx);
            // A waiter that joined after the load above and looked at `idle`
            // before the store did not see this connection: tell it.
            if self.waiters.count.load(SeqCst) != 0 {
                let told = self.waiters.lock().notify_one();
                if let Some(waker) = told {
                    waker.wake();
                }
            }
        }
        // Dekker pairs with the two SeqCst stores this load may race with:
        // `close()` sets `closed` then drains idle; a waiter joins the queue (count)
        // then looks at idle. Whichever side runs second sees the other's store.
        if self.closed.load(SeqCst) && self.idle.try_take(idx) {
            self.close_taken(idx, CloseReason::Other);
        }
    }

    /// Dequeues the oldest waiter if it has waited past the fairness window.
    fn pop_due(&self, q: &mut QueueGuard<'_, M::Error>) -> Option<Arc<Waiter<M::Error>>> {
        let front = q.front()?;
        if self.window_nanos != 0
            && self.now_nanos().saturating_sub(front.since) < self.window_nanos
        {
            return None;
        }
        q.pop()
    }

    /// Returns a connection from its holder: closed if broken, expired, dirty or
    /// the pool is closed; otherwise released for reuse.
    /// `touch` = false keeps `last_used` (the reaper's probe is not a use).
    pub(crate) fn checkin(&self, idx: usize, dirty: bool, touch: bool) {
        if self.config.leak_threshold.is_some() {
            self.slots.meta(idx).held_since.store(0, Relaxed);
        }
        // SAFETY: the caller (a guard) owned `idx` and passes it on; the reference
        // ends before the slot is released below.
        let Some(mut ptr) = (unsafe { self.slots.entry_ptr(idx) }) else {
            return self.free_slot(idx);
        };
        // SAFETY: as above: nobody else touches the entry of an owned slot.
        let entry = unsafe { ptr.as_mut() };
        if dirty || self.manager.is_broken(&mut entry.conn) {
            return self.close_taken(idx, CloseReason::Broken);
        }
        let now = Instant::now();
        if entry.expires.is_some_and(|e| now >= e) {
            return self.close_taken(idx, CloseReason::Lifetime);
        }
        if let Some(total) = &self.total {
            // A keyed pool whose total limit starves another key gives the
            // connection up rather than keeping it idle.
            if total.has_starved() && self.waiters.count.load(SeqCst) == 0 {
                return self.close_taken(idx, CloseReason::Idle);
            }
        }
        if touch {
            entry.last_used = now;
        }
        self.mark_idle_since(idx, entry.last_used);
        self.release_slot(idx);
    }

    /// Records when slot `idx` went idle, for a keyed pool's eviction of the
    /// oldest idle connection; a plain pool skips the store on its hot path.
    fn mark_idle_since(&self, idx: usize, at: Instant) {
        if self.total.is_some() {
            self.slots
                .meta(idx)
                .idle_since
                .store(self.nanos(at), Relaxed);
        }
    }

    /// Takes the entry out of an owned slot, closes it and frees the slot.
    pub(crate) fn close_taken(&self, idx: usize, reason: CloseReason) {
        // SAFETY: the caller owns `idx`.
        let Some(entry) = (unsafe { self.slots.take(idx) }) else {
            return self.free_slot(idx);
        };
        let c = &self.counters;
        match reason {
            CloseReason::Broken => c.closed_broken.fetch_add(1, Relaxed),
            CloseReason::Idle => c.closed_idle.fetch_add(1, Relaxed),
            CloseReason::Lifetime => c.closed_lifetime.fetch_add(1, Relaxed),
            CloseReason::CheckFailed => c.closed_check_failed.fetch_add(1, Relaxed),
            CloseReason::Other => 0,
        };
        tracing::debug!(pool = %self.name, ?reason, "closing connection");
        // Drop before freeing the slot: the old socket is gone before a new one may
        // be opened in its place (guarantee 1 holds for real sockets, not only counts).
        drop(entry);
        self.free_slot(idx);
    }

    /// Frees slot `idx` (which holds no connection any more) and lets whoever needs
    /// the capacity use it.
    pub(crate) fn free_slot(&self, idx: usize) {
        self.free.set(idx);
        let before = self.size.fetch_sub(1, SeqCst);
        if let Some(total) = &self.total {
            total.release();
        }
        if self.is_closed() {
            if before == 1 {
                self.close_notify.notify_waiters();
            }
        } else if self.waiters.count.load(SeqCst) != 0 {
            // bb8 #167: a waiter must not wait for a return that will never come
            // because the connection it was waiting for was closed.
            self.maybe_open();
        }
    }

    /// A waiter leaves the queue (it was cancelled, or got a connection by itself).
    /// Anything handed to it meanwhile is passed on, never lost (guarantee 2).
    pub(crate) fn leave_queue(&self, w: &Arc<Waiter<M::Error>>) {
        let (removed, state) = {
            let mut q = self.waiters.lock();
            let removed = q.remove(w);
            (removed, w.state.load(SeqCst))
        };
        if state >= CONN {
            self.release_slot(state - CONN);
        } else if state == NOTIFIED && removed && self.idle.any() {
            // We were told about an idle connection we will not take: tell the next.
            let told = self.waiters.lock().notify_one();
            if let Some(waker) = told {
                waker.wake();
            }
        }
        // A connect started for us goes on and its connection goes idle or to
        // the next waiter: leaving only lowers demand.
    }

    /// The deadline task fired: times out every waiter whose deadline passed
    /// (guarantee 4) and re-arms it for the earliest one left.
    pub(crate) fn expire_waiters(&self) {
        let now = self.now_nanos();
        let (expired, told) = {
            let mut q = self.waiters.lock();
            let (expired, was_notified, next) = q.expire(now);
            self.deadlines.rearm(next);
            // An idle connection one of them was told of goes to the next.
            let told = if was_notified && self.idle.any() {
                q.notify_one()
            } else {
                None
            };
            (expired, told)
        };
        for w in expired {
            w.wake();
        }
        if let Some(waker) = told {
            waker.wake();
        }
    }

    // ----- opening connections -------------------------------------------------

    /// Starts connects for waiters not yet covered by one in flight, while there
    /// is capacity. Returns whether it started one.
    pub(crate) fn maybe_open(&self) -> bool {
        let mut started = false;
        loop {
            if self.is_closed() {
                return started;
            }
            let waiting = self.waiters.count.load(SeqCst);
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
            && self.idle.count() + self.opening.load(SeqCst) < self.config.min_idle
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
        if !self.reserve() {
            return false;
        }
        let Some(idx) = self.free.take_lowest() else {
            // Unreachable while the slot protocol holds (a slot is freed before
            // `size` drops); give the reservation back rather than panic.
            self.size.fetch_sub(1, SeqCst);
            if let Some(total) = &self.total {
                total.release();
            }
            return false;
        };
        let Some(me) = self.me.upgrade() else {
            self.free_slot(idx);
            return false;
        };
        self.handle.spawn(async move { me.open_into(idx).await });
        true
    }

    /// Reserves one unit of `size` (and of the keyed pool's total).
    fn reserve(&self) -> bool {
        let max = self.config.max_size;
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
    async fn open_into(self: Arc<Self>, idx: usize) {
        let result = self.connect_with_retry().await;
        self.opening.fetch_sub(1, SeqCst);
        match result {
            Ok(conn) => {
                self.counters.created.fetch_add(1, Relaxed);
                *lock(&self.last_connect_ok) = Some(Instant::now());
                let now = Instant::now();
                let entry = Entry {
                    conn,
                    created: now,
                    expires: self.lifetime_deadline(now),
                    last_used: now,
                    last_checked: now,
                    fresh: true,
                };
                self.mark_idle_since(idx, now);
                // SAFETY: this task owns `idx` since `start_open` took it from `free`.
                unsafe { self.slots.put(idx, entry) };
                self.release_slot(idx);
            }
            Err(failure) => {
                tracing::warn!(pool = %self.name, error = %failure, "connect failed");
                self.record_error(&failure);
                // Fail fast (guarantee 5): the oldest waiter gets the cause now.
                // It leaves the queue before the slot is freed, or freeing would
                // start another connect on its behalf.
                let failed = {
                    let mut q = self.waiters.lock();
                    let w = q.pop();
                    if let Some(w) = &w {
                        w.set_failed(failure.into_pool_error());
                    }
                    w
                };
                self.free_slot(idx);
                if let Some(w) = failed {
                    w.wake();
                }
            }
        }
    }

    async fn connect_with_retry(&self) -> Result<M::Connection, ConnectFailure<M::Error>> {
        let budget_end = Instant::now() + self.config.acquire_timeout;
        let mut attempt = 0u32;
        loop {
            let timeout = self.config.connect_timeout;
            let (failure, transient) =
                match tokio::time::timeout(timeout, self.manager.connect()).await {
                    Ok(Ok(conn)) => return Ok(conn),
                    Ok(Err(e)) => {
                        let transient = self.manager.is_transient(&e);
                        (ConnectFailure::Backend(e), transient)
                    }
                    Err(_) => (ConnectFailure::Timeout(timeout), true),
                };
            self.counters.create_failures.fetch_add(1, Relaxed);
            if attempt >= self.config.connect_retries || !transient || self.is_closed() {
                return Err(failure);
            }
            self.record_error(&failure);
            let cap = self
                .config
                .retry_backoff
                .saturating_mul(1u32 << attempt.min(16))
                .min(MAX_BACKOFF);
            // Full jitter: a fleet of pools that lost the same server must not
            // reconnect in lock-step.
            let backoff = cap.mul_f64(self.random_unit());
            if Instant::now() + backoff >= budget_end {
                return Err(failure);
            }
            tracing::debug!(pool = %self.name, attempt, ?backoff, "retrying connect");
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    fn record_error(&self, failure: &ConnectFailure<M::Error>) {
        let message: LastError = Arc::new(ErrorMessage(failure.to_string()));
        *lock(&self.last_error) = Some((Instant::now(), message));
    }

    /// The last connect failure, if it happened after `since`.
    pub(crate) fn last_error_since(&self, since: Instant) -> Option<LastError> {
        match &*lock(&self.last_error) {
            Some((at, e)) if *at >= since => Some(e.clone()),
            _ => None,
        }
    }

    fn lifetime_deadline(&self, now: Instant) -> Option<Instant> {
        let life = self.config.max_lifetime?;
        // Up to −10 % so connections opened together do not expire together
        // (sqlx #3051).
        Some(now + life - (life / 10).mul_f64(self.random_unit()))
    }

    /// A uniform number in [0, 1) from a xorshift generator; races between threads
    /// only mix the state further, which is fine for jitter.
    fn random_unit(&self) -> f64 {
        let mut x = self.rng.load(Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    // ----- closing ---------------------------------------------------------------

    /// Closes the pool (guarantee 6). Resolves `true` once every connection is
    /// closed, `false` if `timeout` passed first.
    pub(crate) async fn close(&self, timeout: Duration) -> bool {
        self.closed.store(true, SeqCst);
        let drained = {
            let mut q = self.waiters.lock();
            let all = q.drain();
            for w in &all {
                w.set_closed();
            }
            all
        };
        for w in drained {
            w.wake();
        }
        while let Some(idx) = self.idle.take_lowest() {
            self.close_taken(idx, CloseReason::Other);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.close_notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.size() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.size() == 0;
            }
        }
    }

    // ----- reaper ------------------------------------------------------------------

    /// One pass of the reaper: retire expired and long-idle connections, probe
    /// the ones idle past `keepalive_interval`, top up `min_idle`, warn of leaks.
    /// No lock is held across the probes: each probed connection is owned by a
    /// guard, exactly as if a caller had checked it out.
    pub(crate) async fn reap(self: &Arc<Self>) {
        let now = Instant::now();
        let mut idle_left = self.idle.count();
        let mut to_probe = Vec::new();
        for idx in self.idle.snapshot() {
            if !self.idle.try_take(idx) {
                continue;
            }
            // SAFETY: we own `idx` after taking its idle bit; the reference ends
            // before the slot is closed, released or handed to a guard.
            let Some(mut ptr) = (unsafe { self.slots.entry_ptr(idx) }) else {
                self.free_slot(idx);
                continue;
            };
            // SAFETY: as above.
            let entry = unsafe { ptr.as_mut() };
            if entry.expires.is_some_and(|e| now >= e) {
                idle_left = idle_left.saturating_sub(1);
                self.close_taken(idx, CloseReason::Lifetime);
                continue;
            }
            let idle_for = now.saturating_duration_since(entry.last_used);
            if self.config.idle_timeout.is_some_and(|t| idle_for >= t)
                && idle_left > self.config.min_idle
            {
                idle_left -= 1;
                self.close_taken(idx, CloseReason::Idle);
                continue;
            }
            let unprobed_for =
                now.saturating_duration_since(entry.last_used.max(entry.last_checked));
            if self
                .config
                .keepalive_interval
                .is_some_and(|k| unprobed_for >= k)
            {
                to_probe.push(idx);
                continue;
            }
            self.release_slot(idx);
        }
        for idx in to_probe {
            // SAFETY: still ours since the loop above took its idle bit.
            let Some(mut guard) = (unsafe {
                crate::guard::PooledConnection::from_slot(
                    crate::guard::PoolRef::Borrowed(self),
                    idx,
                )
            }) else {
                self.free_slot(idx);
                continue;
            };
            // A probe cut short (runtime shutdown) leaves the connection in an
            // unknown state: the guard closes it instead of returning it.
            guard.set_dirty(true);
            let ok = matches!(
                tokio::time::timeout(self.config.connect_timeout, self.manager.check(&mut guard))
                    .await,
                Ok(Ok(()))
            );
            if ok {
                guard.entry_mut().last_checked = Instant::now();
                guard.keep_idle_time();
                guard.set_dirty(false);
            } else {
                guard.close_as(CloseReason::CheckFailed);
            }
        }
        self.top_up_min_idle();
        self.warn_leaks();
    }

    fn warn_leaks(&self) {
        let Some(threshold) = self.config.leak_threshold else {
            return;
        };
        let now = self.now_nanos();
        for idx in 0..self.config.max_size {
            let meta = self.slots.meta(idx);
            let held = meta.held_since.load(Relaxed);
            if held == 0 || held & WARNED != 0 {
                continue;
            }
            let held_for = Duration::from_nanos(now.saturating_sub(held));
            if held_for < threshold {
                continue;
            }
            if meta
                .held_since
                .compare_exchange(held, held | WARNED, Relaxed, Relaxed)
                .is_ok()
            {
                let site = meta.site.load(Relaxed);
                // SAFETY: `site` is null or a `&'static Location` stored at checkout.
                let site = unsafe { site.as_ref() }
                    .map_or_else(|| "unknown".to_string(), |l| l.to_string());
                tracing::warn!(
                    pool = %self.name,
                    held_for = ?held_for,
                    acquired_at = %site,
                    "connection held longer than leak_threshold"
                );
            }
        }
    }

    /// Marks slot `idx` as held from `site` (only with `leak_threshold` set).
    pub(crate) fn track_checkout(&self, idx: usize, site: &'static std::panic::Location<'static>) {
        if self.config.leak_threshold.is_some() {
            let meta = self.slots.meta(idx);
            meta.site.store(site as *const _ as *mut _, Relaxed);
            meta.held_since.store(self.now_nanos().max(1), Relaxed);
        }
    }

    // ----- reporting ---------------------------------------------------------------

    pub(crate) fn stats(&self) -> Stats {
        let mut s = Stats {
            max_size: self.config.max_size,
            size: self.size(),
            idle: self.idle.count(),
            opening: self.opening.load(Relaxed),
            waiting: self.waiters.count.load(Relaxed),
            ..Stats::default()
        };
        s.in_use = s.size.saturating_sub(s.idle + s.opening);
        self.counters.fill(&mut s);
        s
    }

    pub(crate) fn health(&self) -> Health {
        if self.is_closed() {
            return Health::Unhealthy {
                reason: "pool is closed".into(),
            };
        }
        let s = self.stats();
        let recent_failure = {
            let last = lock(&self.last_error);
            let ok = *lock(&self.last_connect_ok);
            match &*last {
                Some((at, e)) if at.elapsed() < HEALTH_WINDOW && ok.is_none_or(|ok| ok < *at) => {
                    Some(e.to_string())
                }
                _ => None,
            }
        };
        if let Some(e) = recent_failure {
            let reason = format!("cannot connect: {e}");
            return if s.size == 0 {
                Health::Unhealthy { reason }
            } else {
                Health::Degraded { reason }
            };
        }
        if s.waiting > 0 && s.idle == 0 && s.size >= s.max_size {
            return Health::Degraded {
                reason: format!(
                    "saturated: {} waiting, all {} connections in use",
                    s.waiting, s.max_size
                ),
            };
        }
        Health::Healthy
    }
}

impl<M: Manager> Drop for Inner<M> {
    fn drop(&mut self) {
        self.deadlines.stop();
    }
}

impl<M: Manager> Capacity for Inner<M> {
    fn on_capacity(&self) -> bool {
        self.maybe_open()
    }

    fn oldest_idle(&self) -> Option<(u64, usize)> {
        self.idle
            .snapshot()
            .into_iter()
            .map(|i| (self.slots.meta(i).idle_since.load(Relaxed), i))
            .min()
    }

    fn evict(&self, idx: usize) -> bool {
        if !self.idle.try_take(idx) {
            return false;
        }
        self.close_taken(idx, CloseReason::Idle);
        true
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

fn seed(salt: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ salt.rotate_left(32)) | 1
}
