//! Poison-tolerant locking, the one style every lock of the engine and of the
//! protocol crates uses (`pool_core::util::{lock, read, write}`).

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

thread_local! {
    /// Locks this thread took through the helpers below: lets a test prove
    /// that a path takes none (guarantee 8), whichever lock it would be.
    static TAKEN: Cell<u64> = const { Cell::new(0) };
}

#[inline]
fn count() {
    TAKEN.with(|t| t.set(t.get() + 1));
}

/// How many of the engine's locks this thread has taken so far.
pub fn taken_on_this_thread() -> u64 {
    TAKEN.with(Cell::get)
}

// A panic while holding one of the engine's locks cannot leave the data
// half-updated (each critical section is a few field writes), so poisoning is
// ignored rather than turned into a panic in a `Drop`.

/// Locks `m`, ignoring poisoning.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    count();
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read-locks `l`, ignoring poisoning.
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    count();
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// Write-locks `l`, ignoring poisoning.
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    count();
    l.write().unwrap_or_else(|p| p.into_inner())
}
