//! `PooledConnection`: the guard `get()` returns.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::inner::Inner;
use crate::manager::Manager;
use crate::slots::{Entry, Held};
use crate::stats::CloseReason;

/// How a guard reaches its pool: borrowed from a `ConnectionPool` handle (no
/// reference-count traffic on the hot path) or owned (`'static`, for spawning).
pub(crate) enum PoolRef<'a, M: Manager> {
    Borrowed(&'a Arc<Inner<M>>),
    Owned(Arc<Inner<M>>),
}

impl<M: Manager> Deref for PoolRef<'_, M> {
    type Target = Arc<Inner<M>>;
    fn deref(&self) -> &Arc<Inner<M>> {
        match self {
            PoolRef::Borrowed(p) => p,
            PoolRef::Owned(p) => p,
        }
    }
}

/// A connection checked out of a pool. Derefs to the connection; dropping it
/// returns the connection (or closes it when it is broken, expired, marked
/// dirty or the pool is closed).
///
/// Dropping it outside a runtime, or after the runtime stopped, is safe: the
/// return path never spawns and never blocks.
pub struct PooledConnection<'a, M: Manager> {
    pool: PoolRef<'a, M>,
    /// The slot this guard holds; `None` once consumed by `Drop`, `detach`,
    /// `into_owned` or `close_as` (each takes the guard by value, so nothing
    /// reads `entry` afterwards).
    slot: Option<Held>,
    /// The entry of `slot`, valid while it is held (slots.rs).
    entry: NonNull<Entry<M::Connection>>,
    dirty: bool,
    touch: bool,
    /// Handed out with an observer installed: its return is reported.
    observed: bool,
}

// SAFETY: the guard owns its slot exclusively, so it is the connection's only
// user: moving the guard to another thread moves the connection (`Send` needed),
// sharing `&guard` shares `&connection` (`Sync` needed). The pool handle is
// `Send + Sync` itself.
unsafe impl<M: Manager> Send for PooledConnection<'_, M> where M::Connection: Send {}
// SAFETY: as above.
unsafe impl<M: Manager> Sync for PooledConnection<'_, M> where M::Connection: Sync {}

impl<'a, M: Manager> PooledConnection<'a, M> {
    /// A guard over a held slot.
    pub(crate) fn from_slot(pool: PoolRef<'a, M>, mut slot: Held) -> Self {
        let entry = pool.slots.entry_ptr(&mut slot);
        PooledConnection {
            pool,
            slot: Some(slot),
            entry,
            dirty: false,
            touch: true,
            observed: false,
        }
    }

    /// The slot, which only the consuming methods take.
    fn take_slot(&mut self) -> Held {
        self.slot
            .take()
            .expect("a guard holds its slot until it is consumed")
    }

    /// The slot of a guard that is done with its connection (returned,
    /// closed or detached): the end of its use, if an observer saw it begin.
    fn give_back(&mut self) -> Held {
        if self.observed {
            self.report_checkin(self.pool.clock.coarse());
        }
        self.take_slot()
    }

    /// Logs the checkout for the pool's observer (only with one installed),
    /// at coarse time `now`. Inline, as the return's log: out of line, the
    /// two calls cost the observed get()+drop more than their bodies, and
    /// the plain one was no smaller (docs/benchmarks.md, "with an observer").
    #[inline(always)]
    pub(crate) fn report_checkout(&mut self, wait_nanos: u64, now: u64) {
        self.observed = true;
        if self.entry_mut().log.checked_out(wait_nanos, now) {
            self.flush_log(true);
        }
    }

    /// Logs the return for the observer, at coarse time `now`.
    #[inline]
    fn report_checkin(&mut self, now: u64) {
        if self.entry_mut().log.checked_in(now) {
            self.flush_log(false);
        }
    }

    /// Hands the connection's log to the observer (`at_checkout`: as
    /// `Inner::flush_slot`). Out of line: the hot path only tests whether.
    #[cold]
    #[inline(never)]
    fn flush_log(&mut self, at_checkout: bool) {
        let slot = self
            .slot
            .as_mut()
            .expect("a guard holds its slot until it is consumed");
        self.pool.flush_slot(slot, at_checkout);
    }

    pub(crate) fn slot(&self) -> &Held {
        self.slot
            .as_ref()
            .expect("a guard holds its slot until it is consumed")
    }

    pub(crate) fn entry_mut(&mut self) -> &mut Entry<M::Connection> {
        // SAFETY: this guard holds the slot, so the entry stays in place and
        // nobody else touches it; `&mut self` makes this the only reference.
        unsafe { &mut *self.entry.as_ptr() }
    }

    pub(crate) fn entry(&self) -> &Entry<M::Connection> {
        // SAFETY: as in `entry_mut`; `&self` allows only shared references.
        unsafe { self.entry.as_ref() }
    }

    /// Returns without counting as a use (the reaper's probe).
    pub(crate) fn keep_idle_time(&mut self) {
        self.touch = false;
    }

    /// Closes the connection now, counted under `reason` (out of line: a
    /// rare path that `get()` would otherwise carry inline).
    #[inline(never)]
    pub(crate) fn close_as(mut self, reason: CloseReason) {
        let slot = self.give_back();
        self.pool.close_taken(slot, reason);
    }

    /// Marks the connection dirty (or clean again). A dirty connection is closed on
    /// return instead of being reused. Set it before an `.await` that can leave the
    /// connection in the middle of an exchange (a cancelled query, a dropped
    /// stream) and clear it once the exchange completed, so that a cancelled
    /// caller never hands a dirty connection to the next one (bb8 #246).
    pub fn set_dirty(&mut self, dirty: bool) {
        self.dirty = dirty;
    }

    /// Takes the connection out of the pool for good; its slot is freed, so the pool
    /// may open another one.
    pub fn detach(mut self) -> M::Connection {
        let mut slot = self.give_back();
        self.pool.flush_slot(&mut slot, false);
        let (entry, vacant) = self.pool.slots.vacate(slot);
        self.pool.free(vacant);
        entry.conn
    }

    /// Closes the connection now instead of returning it.
    pub fn discard(self) {
        self.close_as(CloseReason::Broken);
    }

    /// How long ago this connection was opened.
    pub fn age(&self) -> std::time::Duration {
        self.entry().created.elapsed()
    }

    /// A guard that does not borrow the pool handle (for moving into a task).
    pub fn into_owned(mut self) -> PooledConnection<'static, M> {
        let pool = Arc::clone(&self.pool);
        PooledConnection {
            pool: PoolRef::Owned(pool),
            slot: Some(self.take_slot()),
            entry: self.entry,
            dirty: self.dirty,
            touch: self.touch,
            observed: self.observed,
        }
    }
}

impl<M: Manager> Deref for PooledConnection<'_, M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        &self.entry().conn
    }
}

impl<M: Manager> DerefMut for PooledConnection<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.entry_mut().conn
    }
}

impl<M: Manager> Drop for PooledConnection<'_, M> {
    fn drop(&mut self) {
        if self.slot.is_none() {
            return;
        }
        // One reading for the observer's log and for the return's checks.
        let now = self.pool.clock.coarse();
        if self.observed {
            self.report_checkin(now);
        }
        let slot = self.take_slot();
        self.pool.checkin(slot, self.dirty, self.touch, now);
    }
}

impl<M: Manager> fmt::Debug for PooledConnection<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("pool", &self.pool.name)
            .field("slot", &self.slot.as_ref().map(Held::index))
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}
