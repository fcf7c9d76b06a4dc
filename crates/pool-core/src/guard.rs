//! `PooledConnection`: the guard `get()` returns.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::inner::{CloseReason, Inner};
use crate::manager::Manager;
use crate::slots::Entry;

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
    idx: usize,
    /// The entry in slot `idx`, which this guard owns (slots.rs, ownership
    /// protocol); `None` once consumed by `Drop`, `detach`, `into_owned` or
    /// `close_as`.
    entry: Option<NonNull<Entry<M::Connection>>>,
    dirty: bool,
    touch: bool,
}

// SAFETY: the guard owns its slot exclusively, so it is the connection's only
// user: moving the guard to another thread moves the connection (`Send` needed),
// sharing `&guard` shares `&connection` (`Sync` needed). The pool handle is
// `Send + Sync` itself.
unsafe impl<M: Manager> Send for PooledConnection<'_, M> where M::Connection: Send {}
// SAFETY: as above.
unsafe impl<M: Manager> Sync for PooledConnection<'_, M> where M::Connection: Sync {}

impl<'a, M: Manager> PooledConnection<'a, M> {
    /// A guard over the entry in slot `idx`, or `None` if the slot is empty.
    ///
    /// # Safety
    /// The caller owns `idx` and passes that ownership to the guard.
    pub(crate) unsafe fn from_slot(pool: PoolRef<'a, M>, idx: usize) -> Option<Self> {
        // SAFETY: the caller owns `idx`.
        let entry = unsafe { pool.slots.entry_ptr(idx) }?;
        Some(PooledConnection {
            pool,
            idx,
            entry: Some(entry),
            dirty: false,
            touch: true,
        })
    }

    pub(crate) fn entry_mut(&mut self) -> &mut Entry<M::Connection> {
        let ptr = self
            .entry
            .expect("a guard holds its entry until it is consumed");
        // SAFETY: this guard owns the slot, so the entry stays in place and
        // nobody else touches it; `&mut self` makes this the only reference.
        unsafe { &mut *ptr.as_ptr() }
    }

    pub(crate) fn entry(&self) -> &Entry<M::Connection> {
        let ptr = self
            .entry
            .expect("a guard holds its entry until it is consumed");
        // SAFETY: as in `entry_mut`; `&self` allows only shared references.
        unsafe { ptr.as_ref() }
    }

    /// Returns without counting as a use (the reaper's probe).
    pub(crate) fn keep_idle_time(&mut self) {
        self.touch = false;
    }

    /// Closes the connection now, counted under `reason`.
    pub(crate) fn close_as(mut self, reason: CloseReason) {
        if self.entry.take().is_some() {
            self.pool.close_taken(self.idx, reason);
        }
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
        self.entry
            .take()
            .expect("a guard holds its entry until it is consumed");
        // SAFETY: this guard owned `idx`; the entry leaves the slot before the
        // slot is freed.
        let entry =
            unsafe { self.pool.slots.take(self.idx) }.expect("an owned slot holds its entry");
        self.pool.free_slot(self.idx);
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
            idx: self.idx,
            entry: self.entry.take(),
            dirty: self.dirty,
            touch: self.touch,
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
        if self.entry.take().is_some() {
            self.pool.checkin(self.idx, self.dirty, self.touch);
        }
    }
}

impl<M: Manager> fmt::Debug for PooledConnection<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("pool", &self.pool.name)
            .field("slot", &self.idx)
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}
