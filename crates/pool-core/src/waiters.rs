//! The queue of parked `get()`s and the future that parks in it.
//!
//! A waiter's `state` is the only channel from a giver to the waiter: a giver
//! (a return, a finished or failed connect, `close()`) first removes the waiter from
//! the queue under the lock, then stores the outcome and wakes it. A waiter that is
//! only `NOTIFIED` stays queued, keeping its place (its age), and competes for the
//! idle connection it was told about.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::error::PoolError;
use crate::inner::Inner;
use crate::manager::Manager;

pub(crate) const EMPTY: usize = 0;
pub(crate) const NOTIFIED: usize = 1;
pub(crate) const FAILED: usize = 2;
pub(crate) const CLOSED: usize = 3;
/// Its deadline passed (set by the pool's deadline task, see `deadlines.rs`).
pub(crate) const TIMED_OUT: usize = 4;
/// `CONN + i`: slot `i` was handed to this waiter, which now owns it.
pub(crate) const CONN: usize = 5;

pub(crate) struct Waiter<E> {
    /// Nanoseconds since the pool's epoch when its `get()` began; its age
    /// decides fairness.
    pub(crate) since: u64,
    /// Nanoseconds since the pool's epoch at which it times out.
    pub(crate) deadline: u64,
    pub(crate) state: AtomicUsize,
    waker: Mutex<Option<Waker>>,
    /// The connect failure handed over with `FAILED`.
    error: Mutex<Option<PoolError<E>>>,
}

impl<E> Waiter<E> {
    pub(crate) fn wake(&self) {
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }

    /// Hands a connect failure over. Call with the queue locked, right after
    /// dequeuing the waiter, and `wake()` after unlocking: `leave_queue` reads the
    /// state under the same lock, so a hand-over is never missed.
    pub(crate) fn set_failed(&self, error: PoolError<E>) {
        *lock(&self.error) = Some(error);
        self.state.store(FAILED, SeqCst);
    }

    /// Hands slot `idx` over (same locking rule as `set_failed`).
    pub(crate) fn set_conn(&self, idx: usize) {
        self.state.store(CONN + idx, SeqCst);
    }

    /// Tells the waiter the pool closed (same locking rule as `set_failed`).
    pub(crate) fn set_closed(&self) {
        self.state.store(CLOSED, SeqCst);
    }

    /// Tells the waiter its deadline passed (same locking rule as `set_failed`).
    /// Returns whether it had been told of an idle connection it now will not take.
    fn set_timed_out(&self) -> bool {
        self.state.swap(TIMED_OUT, SeqCst) == NOTIFIED
    }
}

/// The parked waiters in arrival order, and the two facts the lock-free fast path
/// reads about them.
pub(crate) struct WaitQueue<E> {
    queue: Mutex<VecDeque<Arc<Waiter<E>>>>,
    /// Waiters in `queue`. Written under the lock, read lock-free by returns (to
    /// skip the lock when nobody waits) and by the fast path.
    pub(crate) count: AtomicUsize,
    /// `since` of the queue's head (`u64::MAX` when empty): a running task may not
    /// barge past a head older than `fairness_window`.
    pub(crate) head_since: AtomicU64,
    /// How often `queue` was locked: lets a test prove the fast path never locks.
    pub(crate) locks: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data half-updated
    // (each critical section is a few field writes), so poisoning is ignored rather
    // than turned into a panic in a `Drop`.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<E> WaitQueue<E> {
    pub(crate) fn new() -> Self {
        WaitQueue {
            queue: Mutex::new(VecDeque::new()),
            count: AtomicUsize::new(0),
            head_since: AtomicU64::new(u64::MAX),
            locks: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> QueueGuard<'_, E> {
        self.locks.fetch_add(1, Relaxed);
        QueueGuard {
            q: lock(&self.queue),
            shared: self,
        }
    }
}

/// The locked queue; keeps `count` and `head_since` in step with it.
pub(crate) struct QueueGuard<'a, E> {
    q: MutexGuard<'a, VecDeque<Arc<Waiter<E>>>>,
    shared: &'a WaitQueue<E>,
}

impl<E> QueueGuard<'_, E> {
    fn sync(&self) {
        self.shared.count.store(self.q.len(), SeqCst);
        let head = self.q.front().map_or(u64::MAX, |w| w.since);
        self.shared.head_since.store(head, SeqCst);
    }

    pub(crate) fn push(&mut self, w: Arc<Waiter<E>>) {
        self.q.push_back(w);
        self.sync();
    }

    pub(crate) fn front(&self) -> Option<&Arc<Waiter<E>>> {
        self.q.front()
    }

    pub(crate) fn pop(&mut self) -> Option<Arc<Waiter<E>>> {
        let w = self.q.pop_front();
        self.sync();
        w
    }

    /// Removes `w` if it is still queued.
    pub(crate) fn remove(&mut self, w: &Arc<Waiter<E>>) -> bool {
        let Some(pos) = self.q.iter().position(|x| Arc::ptr_eq(x, w)) else {
            return false;
        };
        self.q.remove(pos);
        self.sync();
        true
    }

    /// Tells the oldest waiter that is not already told that a connection went
    /// idle. Returns its waker, to wake after unlocking: waking schedules a task,
    /// which the other core should not wait for to take the queue lock.
    #[must_use]
    pub(crate) fn notify_one(&self) -> Option<Waker> {
        for w in self.q.iter() {
            if w.state
                .compare_exchange(EMPTY, NOTIFIED, SeqCst, SeqCst)
                .is_ok()
            {
                return lock(&w.waker).take();
            }
        }
        None
    }

    /// Dequeues every waiter whose deadline is at or before `now` and marks it
    /// timed out (wake them after unlocking). Also returns whether one of them
    /// had been notified of an idle connection, and the earliest deadline left
    /// (`u64::MAX` if none).
    pub(crate) fn expire(&mut self, now: u64) -> (Vec<Arc<Waiter<E>>>, bool, u64) {
        let mut expired = Vec::new();
        let mut was_notified = false;
        let mut next = u64::MAX;
        self.q.retain(|w| {
            if w.deadline <= now {
                was_notified |= w.set_timed_out();
                expired.push(w.clone());
                false
            } else {
                next = next.min(w.deadline);
                true
            }
        });
        if !expired.is_empty() {
            self.sync();
        }
        (expired, was_notified, next)
    }

    pub(crate) fn drain(&mut self) -> Vec<Arc<Waiter<E>>> {
        let all = self.q.drain(..).collect();
        self.sync();
        all
    }
}

/// Parks until a connection is handed over or an idle one can be taken. Resolves
/// to the owned slot index.
///
/// Cancellation safety: dropping it at any point dequeues the waiter, and a slot
/// that was handed over in the meantime is released again (see `Drop`).
/// Resolves to `Ok(None)` once its deadline passed.
pub(crate) struct Acquire<'a, M: Manager> {
    pub(crate) inner: &'a Inner<M>,
    /// When the `get()` began, on the pool's clock: its age for fairness.
    pub(crate) since: u64,
    /// Nanoseconds since the pool's epoch.
    pub(crate) deadline: u64,
    pub(crate) waiter: Option<Arc<Waiter<M::Error>>>,
}

impl<M: Manager> Future for Acquire<'_, M> {
    type Output = Result<Option<usize>, PoolError<M::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner;
        let Some(w) = self.waiter.clone() else {
            // First poll: join the queue, then look again — a return that landed
            // between the caller's failed fast path and our push saw no waiter and
            // left its connection idle (the lost wake-up of bb8 #122 / sqlx #453).
            let w = Arc::new(Waiter {
                since: self.since,
                deadline: self.deadline,
                state: AtomicUsize::new(EMPTY),
                waker: Mutex::new(Some(cx.waker().clone())),
                error: Mutex::new(None),
            });
            let wake_timer = {
                let mut q = inner.waiters.lock();
                q.push(w.clone());
                inner.deadlines.on_park(w.deadline)
            };
            if wake_timer {
                inner.deadlines.wake(inner);
            }
            self.waiter = Some(w.clone());
            if inner.is_closed() {
                return Poll::Ready(self.finish_cancel_or(Err(PoolError::Closed)));
            }
            if let Some(idx) = inner.take_idle_as_waiter(&w) {
                return Poll::Ready(self.finish_cancel_or(Ok(Some(idx))));
            }
            inner.maybe_open();
            return Poll::Pending;
        };

        // Register the waker before reading the state: a giver stores the state
        // first and wakes second, so one of the two sees the other.
        {
            let mut slot = lock(&w.waker);
            match &*slot {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        loop {
            match w.state.load(SeqCst) {
                EMPTY => return Poll::Pending,
                NOTIFIED => {
                    // Back to EMPTY before looking: a return that arrives after the
                    // look then finds us EMPTY and notifies us again.
                    if w.state
                        .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                        .is_err()
                    {
                        continue;
                    }
                    if let Some(idx) = inner.take_idle_as_waiter(&w) {
                        return Poll::Ready(self.finish_cancel_or(Ok(Some(idx))));
                    }
                    return Poll::Pending;
                }
                FAILED => {
                    self.waiter = None;
                    let err = lock(&w.error).take().unwrap_or(PoolError::Closed);
                    return Poll::Ready(Err(err));
                }
                CLOSED => {
                    self.waiter = None;
                    return Poll::Ready(Err(PoolError::Closed));
                }
                TIMED_OUT => {
                    self.waiter = None;
                    return Poll::Ready(Ok(None));
                }
                s => {
                    self.waiter = None;
                    return Poll::Ready(Ok(Some(s - CONN)));
                }
            }
        }
    }
}

impl<M: Manager> Acquire<'_, M> {
    /// Leaves the queue after taking `result` by ourselves, giving back anything
    /// a giver handed us meanwhile.
    fn finish_cancel_or<T>(&mut self, result: T) -> T {
        if let Some(w) = self.waiter.take() {
            self.inner.leave_queue(&w);
        }
        result
    }
}

impl<M: Manager> Drop for Acquire<'_, M> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.inner.leave_queue(&w);
        }
    }
}
