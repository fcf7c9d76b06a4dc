//! The shared state of one pool and what happens to a connection between
//! holders: taken idle, given back (to a waiter or the idle set), closed, its
//! slot freed; and closing the pool.
//!
//! Opening connections is in `connect.rs`, the reaper's pass in `reaper.rs`,
//! stats and health in `report.rs`: each an `impl Inner` of its own.
//!
//! The counts that bound the pool:
//! - `size` = idle + in use + opening, reserved by CAS *before* a connect starts
//!   and released only *after* the connection is dropped (guarantee 1);
//! - `opening` ≤ the waiters counted at the moment each connect is started, so a
//!   burst never opens more than the demand it saw (guarantee 7, bb8 #221).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::breaker::Breaker;
use crate::clock::{nanos_of, Clock};
use crate::config::{PoolConfig, QueueMode};
use crate::deadlines::{Deadlines, Expire};
use crate::error::LastError;
use crate::events::Event;
use crate::hooks::Hooks;
use crate::limit::{Capacity, TotalLimit};
use crate::manager::Manager;
use crate::padded::CachePadded;
use crate::slots::{Held, Slots, Vacant};
use crate::stats::{CloseReason, Counters};
use crate::waiters::{WaitQueue, Waiter};

pub(crate) struct Inner<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: PoolConfig,
    pub(crate) name: String,
    /// The pool's clocks (shared by a keyed pool's sub-pools).
    pub(crate) clock: Arc<Clock>,
    /// `validate_after` on the clock.
    pub(crate) validate_after: u64,
    /// The connections, and which of them are idle or free.
    pub(crate) slots: Slots<M::Connection>,
    /// Parked `get()`s.
    pub(crate) waiters: WaitQueue<M::Error>,
    /// Live connections (idle + in use + opening); guards `max_size`.
    pub(crate) size: CachePadded<AtomicUsize>,
    /// `max_size` and `min_idle` now (`set_max_size`, `set_min_idle`); the
    /// slots are allocated for `config.capacity()`.
    pub(crate) max_size: AtomicUsize,
    pub(crate) min_idle: AtomicUsize,
    /// Connect attempts in flight (for one waiter or for `min_idle`).
    pub(crate) opening: AtomicUsize,
    closed: AtomicBool,
    /// Signalled when `size` drops to 0 after `close()`.
    close_notify: Notify,
    pub(crate) counters: Counters,
    /// The last connect failure and when it happened (for `Timeout` and health).
    pub(crate) last_error: Mutex<Option<(Instant, LastError)>>,
    /// When a connect last succeeded (health: a failure older than it is over).
    pub(crate) last_connect_ok: Mutex<Option<Instant>>,
    /// Opt-in: stops connects after `breaker_threshold` failures in a row.
    pub(crate) breaker: Breaker,
    /// Bumped by `evict_all`: a connection of an older generation is never
    /// handed out again. Read on every checkout, written only by `evict_all`,
    /// so it sits on a line of its own.
    pub(crate) generation: CachePadded<AtomicU64>,
    /// The user's async steps (`after_connect`, `before_checkout`, `after_return`).
    pub(crate) hooks: Hooks<M>,
    pub(crate) handle: Handle,
    /// Shared with the other sub-pools of a `KeyedPool`.
    pub(crate) total: Option<Arc<TotalLimit>>,
    pub(crate) me: Weak<Inner<M>>,
    /// Where a FIFO pool looks for the next idle connection.
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
        clock: Arc<Clock>,
        hooks: Hooks<M>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Inner {
            manager,
            name,
            clock,
            validate_after: nanos_of(config.validate_after),
            slots: Slots::new(config.capacity()),
            waiters: WaitQueue::new(Deadlines::new()),
            size: CachePadded(AtomicUsize::new(0)),
            opening: AtomicUsize::new(0),
            max_size: AtomicUsize::new(config.max_size),
            min_idle: AtomicUsize::new(config.min_idle),
            closed: AtomicBool::new(false),
            close_notify: Notify::new(),
            counters: Counters::new(),
            last_error: Mutex::new(None),
            last_connect_ok: Mutex::new(None),
            breaker: Breaker::new(config.breaker_threshold, config.breaker_open),
            generation: CachePadded(AtomicU64::new(0)),
            hooks,
            handle,
            total,
            me: me.clone(),
            cursor: AtomicUsize::new(0),
            window_nanos: config.fairness_window.as_nanos() as u64,
            config,
        })
    }

    /// An exact reading of the pool's clock (for fairness and deadlines; it
    /// leaves the coarse time to its refresh task, so a return with waiters
    /// pays no shared read-modify-write for it).
    pub(crate) fn now_nanos(&self) -> u64 {
        self.clock.nanos(Instant::now())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    pub(crate) fn size(&self) -> usize {
        self.size.load(SeqCst)
    }

    // ----- taking an idle connection -------------------------------------------

    fn take_idle(&self) -> Option<Held> {
        match self.config.queue_mode {
            QueueMode::Lifo => self.slots.take_idle_lowest(),
            QueueMode::Fifo => self.slots.take_idle_from(self.cursor.fetch_add(1, Relaxed)),
        }
    }

    /// May a task that is not queued take an idle connection now? Yes while nobody
    /// waits or the oldest waiter is younger than `fairness_window` (guarantee 3).
    /// `now` gives the pool's clock; it is read only when the answer needs it.
    #[inline]
    fn may_barge(&self, now: impl FnOnce() -> u64) -> bool {
        if self.waiters.len() == 0 {
            return true;
        }
        if self.window_nanos == 0 {
            return false;
        }
        let head = self.waiters.head_since();
        head == u64::MAX || now().saturating_sub(head) < self.window_nanos
    }

    /// The lock-free fast path: an idle connection, if fairness allows (guarantee 8).
    #[inline]
    pub(crate) fn try_fast(&self, now: impl FnOnce() -> u64) -> Option<Held> {
        if self.may_barge(now) {
            self.take_idle()
        } else {
            None
        }
    }

    /// A queued waiter may take an idle connection if it is the oldest one, or if
    /// the oldest is still young enough to be overtaken.
    pub(crate) fn take_idle_as_waiter(&self, w: &Waiter<M::Error>) -> Option<Held> {
        // Most looks find nothing idle (the caller just missed the fast path, or
        // a running task took what it was told of): skip the fairness clock.
        if !self.slots.any_idle() {
            return None;
        }
        if w.since() <= self.waiters.head_since() || self.may_barge(|| self.now_nanos()) {
            self.take_idle()
        } else {
            None
        }
    }

    // ----- giving a connection back --------------------------------------------

    /// Puts a held connection back into circulation: straight to the oldest
    /// waiter when it has waited past the fairness window, else into the idle
    /// set with one waiter notified.
    pub(crate) fn release(&self, slot: Held) {
        let idx = slot.index();
        if self.waiters.len() != 0 {
            self.waiters.hand_over_or_notify(
                slot,
                |since| {
                    self.window_nanos == 0
                        || self.now_nanos().saturating_sub(since) >= self.window_nanos
                },
                |slot| self.slots.put_idle(slot),
            );
        } else {
            self.slots.put_idle(slot);
            // A waiter that joined after the load above and looked at `idle`
            // before the store did not see this connection: tell it.
            if self.waiters.len() != 0 {
                self.waiters.notify_one();
            }
        }
        // Dekker pairs with the two SeqCst stores this load may race with:
        // `close()` sets `closed` then drains idle; a waiter joins the queue (count)
        // then looks at idle. Whichever side runs second sees the other's store.
        if self.closed.load(SeqCst) {
            if let Some(slot) = self.slots.try_take_idle(idx) {
                self.close_taken(slot, CloseReason::PoolClosed);
            }
        }
    }

    /// Returns a connection from its holder: closed if broken, expired, dirty or
    /// the pool is closed; otherwise released for reuse.
    /// `touch` = false keeps `last_used` (the reaper's probe is not a use).
    /// `now`: the coarse clock, read by the caller (the guard's drop reads it
    /// once for the observer's log and for this).
    #[inline]
    pub(crate) fn checkin(&self, slot: Held, dirty: bool, touch: bool, now: u64) {
        if self.config.leak_threshold.is_some() {
            self.slots.meta(slot.index()).held_since.store(0, Relaxed);
        }
        if touch && self.hooks.after_return.is_some() {
            return self.spawn_after_return(slot, dirty);
        }
        self.finish_checkin(slot, dirty, touch, now);
    }

    /// The return itself, at coarse time `now`: closed if broken, dirty, of
    /// an evicted generation, expired (or a starved keyed pool needs the
    /// room); else released.
    #[inline(always)]
    fn finish_checkin(&self, mut slot: Held, dirty: bool, touch: bool, now: u64) {
        let entry = self.slots.entry_mut(&mut slot);
        if dirty || self.manager.is_broken(&mut entry.conn) {
            return self.close_taken(slot, CloseReason::Broken);
        }
        if entry.generation != self.generation.load(Acquire) {
            return self.close_taken(slot, CloseReason::Evicted);
        }
        if now >= entry.expires {
            return self.close_taken(slot, CloseReason::Lifetime);
        }
        if self.size.load(Relaxed) > self.max_size.load(Relaxed) {
            return self.close_surplus(slot);
        }
        if let Some(total) = &self.total {
            // A keyed pool whose total limit starves another key, or was
            // lowered below what is alive, gives the connection up rather
            // than keeping it idle.
            if (total.has_starved() && self.waiters.len() == 0) || total.is_over() {
                return self.close_taken(slot, CloseReason::Idle);
            }
        }
        if touch {
            entry.last_used = now;
            self.mark_used(&slot);
        }
        self.release(slot);
    }

    /// Closes a returned connection that `set_max_size` left in surplus.
    #[cold]
    fn close_surplus(&self, slot: Held) {
        self.close_taken(slot, CloseReason::Idle);
    }

    /// Hands a returned connection to a task that runs `after_return` (only
    /// with the hook installed: the plain return neither counts references nor
    /// spawns).
    #[cold]
    fn spawn_after_return(&self, slot: Held, dirty: bool) {
        match (self.hooks.after_return.clone(), self.me.upgrade()) {
            (Some(hook), Some(me)) => {
                self.handle
                    .spawn(async move { me.after_return(slot, dirty, hook).await });
            }
            _ => self.finish_checkin(slot, dirty, true, self.clock.coarse()),
        }
    }

    /// The `after_return` hook, under `connect_timeout`, on a connection that
    /// is not broken; then the return goes on, or the connection closes if the
    /// hook failed.
    async fn after_return(&self, mut slot: Held, dirty: bool, hook: crate::hooks::Hook<M>) {
        let entry = self.slots.entry_mut(&mut slot);
        if dirty || self.manager.is_broken(&mut entry.conn) {
            // Closed there; no hook for a connection that is not kept.
            return self.finish_checkin(slot, dirty, true, self.clock.coarse());
        }
        let ok = matches!(
            tokio::time::timeout(self.config.connect_timeout, hook(&mut entry.conn)).await,
            Ok(Ok(()))
        );
        if ok {
            self.finish_checkin(slot, false, true, self.clock.coarse());
        } else {
            self.close_taken(slot, CloseReason::Broken);
        }
    }

    /// Retires every connection alive now and every connect in flight: idle
    /// ones close now, the ones in use when returned, and a connect that began
    /// before this call is discarded when it completes (and made again).
    pub(crate) fn evict_all(&self) {
        self.generation.fetch_add(1, SeqCst);
        for idx in self.slots.idle_snapshot() {
            if let Some(slot) = self.slots.try_take_idle(idx) {
                self.close_taken(slot, CloseReason::Evicted);
            }
        }
    }

    /// Orders a keyed pool's connections by their last use, for the eviction of
    /// the one idle longest (a sequence, exact where the coarse clock would
    /// tie); a plain pool skips the store on its hot path.
    pub(crate) fn mark_used(&self, slot: &Held) {
        if let Some(total) = &self.total {
            self.slots
                .meta(slot.index())
                .idle_order
                .store(total.stamp(), Relaxed);
        }
    }

    /// Closes the connection of a held slot and frees the slot.
    pub(crate) fn close_taken(&self, mut slot: Held, reason: CloseReason) {
        // Its checkouts and returns before its `Closed`, and its use times
        // counted before the slot's totals are retired.
        self.flush_slot(&mut slot, false);
        let (entry, vacant) = self.slots.vacate(slot);
        self.closed_one(reason);
        tracing::debug!(pool = %self.name, ?reason, "closing connection");
        // Drop before freeing the slot: the old socket is gone before a new one may
        // be opened in its place (guarantee 1 holds for real sockets, not only counts).
        drop(entry);
        self.free(vacant);
    }

    /// Frees a slot that holds no connection any more, and lets whoever needs
    /// the capacity use it.
    pub(crate) fn free(&self, slot: Vacant) {
        self.slots.free(slot);
        let before = self.size.fetch_sub(1, SeqCst);
        if let Some(total) = &self.total {
            total.release();
        }
        if self.is_closed() {
            if before == 1 {
                self.close_notify.notify_waiters();
            }
        } else if self.waiters.len() != 0 {
            // bb8 #167: a waiter must not wait for a return that will never come
            // because the connection it was waiting for was closed.
            self.maybe_open();
        }
    }

    /// A waiter leaves the queue (it was cancelled, or got a connection by itself).
    /// Anything handed to it meanwhile is passed on, never lost (guarantee 2).
    pub(crate) fn leave_queue(&self, w: &Arc<Waiter<M::Error>>) {
        if let Some(slot) = self.waiters.leave(w, || self.slots.any_idle()) {
            self.release(slot);
        }
    }

    /// Wakes the deadline task for a new earliest deadline.
    pub(crate) fn wake_deadlines(&self) {
        self.waiters
            .deadlines()
            .wake(&self.handle, || self.me.clone(), self.clock.epoch());
    }

    // ----- events -----------------------------------------------------------------

    /// Tells the observer, if one is installed.
    #[inline]
    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(observer) = &self.hooks.observer {
            observer.on_event(&self.name, event());
        }
    }

    /// Counts (and reports) a connection closed for `reason`.
    #[inline(never)]
    pub(crate) fn closed_one(&self, reason: CloseReason) {
        self.counters.count_close(reason);
        self.emit(|| Event::Closed { reason });
    }

    /// Hands what the connection of a held slot logged to the observer (if
    /// it logged anything), and counts its returns' use times in the slot.
    /// `at_checkout`: the checkout just logged goes too, and the next batch
    /// begins with its return.
    #[cold]
    #[inline(never)]
    pub(crate) fn flush_slot(&self, slot: &mut Held, at_checkout: bool) {
        let Some(observer) = &self.hooks.observer else {
            return;
        };
        let index = slot.index();
        let entry = self.slots.entry_mut(slot);
        if at_checkout || !entry.log.is_empty() {
            let used = &self.slots.meta(index).used;
            let now = self.clock.coarse();
            entry
                .log
                .flush(at_checkout, &**observer, &self.name, used, now);
        }
    }

    /// Hands over what the idle connections logged in their last tick of use.
    pub(crate) fn flush_events(&self) {
        if self.hooks.observer.is_none() {
            return;
        }
        for idx in self.slots.idle_snapshot() {
            if let Some(mut slot) = self.slots.try_take_idle(idx) {
                self.flush_slot(&mut slot, false);
                self.release(slot);
            }
        }
    }

    // ----- closing ---------------------------------------------------------------

    /// Closes the pool (guarantee 6). Resolves `true` once every connection is
    /// closed, `false` if `timeout` passed first.
    pub(crate) async fn close(&self, timeout: Duration) -> bool {
        self.closed.store(true, SeqCst);
        self.waiters.close_all();
        while let Some(slot) = self.slots.take_idle_lowest() {
            self.close_taken(slot, CloseReason::PoolClosed);
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
}

impl<M: Manager> Drop for Inner<M> {
    fn drop(&mut self) {
        self.waiters.deadlines().stop();
        // Every guard is gone: what the idle connections still logged is the
        // observer's last chance to hear of it.
        self.flush_events();
    }
}

impl<M: Manager> Expire for Inner<M> {
    /// The deadline task fired: times out every waiter whose deadline passed
    /// (guarantee 4).
    fn expire_waiters(&self) {
        self.waiters
            .expire(self.now_nanos(), || self.slots.any_idle());
    }
}

impl<M: Manager> Capacity for Inner<M> {
    fn on_capacity(&self) -> bool {
        self.maybe_open()
    }

    fn oldest_idle(&self) -> Option<(u64, usize)> {
        self.slots
            .idle_snapshot()
            .into_iter()
            .map(|i| (self.slots.meta(i).idle_order.load(Relaxed), i))
            .min()
    }

    fn evict(&self, idx: usize) -> bool {
        match self.slots.try_take_idle(idx) {
            Some(slot) => {
                self.close_taken(slot, CloseReason::Idle);
                true
            }
            None => false,
        }
    }
}
