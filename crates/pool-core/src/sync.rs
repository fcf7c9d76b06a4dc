//! The primitives of the hand-over protocol (`slots.rs`, `waiters.rs`):
//! std's, or shuttle's in the model check (`--cfg shuttle`, `src/model.rs`),
//! so that shuttle can switch threads at each of their operations.

#[cfg(not(all(test, shuttle)))]
pub(crate) use std::sync::{atomic, Mutex, MutexGuard};

#[cfg(all(test, shuttle))]
pub(crate) use shuttle::sync::{atomic, Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning; outside the model through
/// [`crate::lock::lock`], which counts it (guarantee 8's tests).
#[cfg(not(all(test, shuttle)))]
pub(crate) use crate::lock::lock;

/// Locks `m`, ignoring poisoning.
#[cfg(all(test, shuttle))]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
