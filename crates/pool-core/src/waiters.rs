//! The queue of parked `get()`s and every transition of a waiter.
//!
//! A waiter's `state` is the only channel from a giver to the waiter. Every
//! transition is a method of [`WaitQueue`] below, and each runs the same way
//! (in [`WaitQueue::transition`]): lock the queue, dequeue the waiter, store
//! the outcome in its state, take its waker; unlock; wake. Waking after the
//! unlock matters: waking schedules a task, which the other core should not
//! wait for to take the queue lock. A waiter that is only `NOTIFIED` stays
//! queued, keeping its place (its age), and competes for the idle connection it
//! was told about.
//!
//! The waiter's side — register the waker, then read the state — is
//! [`Waiter::poll_outcome`]; a giver stores the state first and takes the waker
//! second, so one of the two always sees the other.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;

use crate::deadlines::Deadlines;
use crate::error::PoolError;
use crate::slots::Held;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use crate::sync::{lock, Mutex, MutexGuard};

const EMPTY: usize = 0;
const NOTIFIED: usize = 1;
const FAILED: usize = 2;
const CLOSED: usize = 3;
/// Its deadline passed (set when the pool's deadline task fires, see `deadlines.rs`).
const TIMED_OUT: usize = 4;
/// `CONN + i`: slot `i` was handed to this waiter, which now holds it.
const CONN: usize = 5;

/// One parked `get()`.
pub(crate) struct Waiter<E> {
    /// Nanoseconds since the pool's epoch when its `get()` began; its age
    /// decides fairness.
    since: u64,
    /// Nanoseconds since the pool's epoch at which it times out.
    deadline: u64,
    /// One of the constants above; written by givers with the queue locked.
    state: AtomicUsize,
    /// Taken by the giver that changes `state`.
    waker: Mutex<Option<Waker>>,
    /// The connect failure handed over with `FAILED`.
    error: Mutex<Option<PoolError<E>>>,
}

/// What a waiter finds when it looks at its state.
pub(crate) enum Outcome {
    /// Nothing yet: stay parked.
    Waiting,
    /// A connection went idle: look for it (the state is back to waiting, so a
    /// later return notifies again).
    Notified,
    /// A connection was handed over; the waiter has left the queue.
    Handed(Held),
    /// The connect made for it failed (the error is in [`Waiter::take_error`]);
    /// it has left the queue.
    Failed,
    /// The pool closed; it has left the queue.
    Closed,
    /// Its deadline passed; it has left the queue.
    TimedOut,
}

impl<E> Waiter<E> {
    pub(crate) fn new(since: u64, deadline: u64, waker: &Waker) -> Arc<Self> {
        Arc::new(Waiter {
            since,
            deadline,
            state: AtomicUsize::new(EMPTY),
            waker: Mutex::new(Some(waker.clone())),
            error: Mutex::new(None),
        })
    }

    pub(crate) fn since(&self) -> u64 {
        self.since
    }

    /// Registers `waker`, then reads what a giver left.
    #[inline]
    pub(crate) fn poll_outcome(&self, waker: &Waker) -> Outcome {
        {
            let mut slot = lock(&self.waker);
            match &*slot {
                Some(old) if old.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        loop {
            return match self.state.load(SeqCst) {
                EMPTY => Outcome::Waiting,
                NOTIFIED => {
                    // Back to EMPTY before looking: a return that arrives after
                    // the look then finds us EMPTY and notifies us again.
                    if self
                        .state
                        .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                        .is_err()
                    {
                        continue;
                    }
                    Outcome::Notified
                }
                FAILED => Outcome::Failed,
                CLOSED => Outcome::Closed,
                TIMED_OUT => Outcome::TimedOut,
                // SAFETY: `CONN + i` is stored only by `hand_over`, from a held
                // token it consumed; the waiter reads it once, as here, and
                // then forgets the waiter (a `Handed` waiter is not polled again).
                s => Outcome::Handed(unsafe { Held::from_raw(s - CONN) }),
            };
        }
    }

    /// The connect failure handed over with `Outcome::Failed`.
    pub(crate) fn take_error(&self) -> Option<PoolError<E>> {
        lock(&self.error).take()
    }

    /// Stores `state` and takes the waker (to wake after unlocking). Call with
    /// the queue locked, after dequeuing the waiter (or, for `NOTIFIED`,
    /// while it stays queued).
    #[inline]
    fn tell(&self, state: usize) -> Option<Waker> {
        self.state.store(state, SeqCst);
        lock(&self.waker).take()
    }
}

/// The parked waiters in arrival order, and the two facts the lock-free fast path
/// reads about them.
pub(crate) struct WaitQueue<E> {
    queue: Mutex<VecDeque<Arc<Waiter<E>>>>,
    /// Waiters in `queue`. Written under the lock, read lock-free by returns (to
    /// skip the lock when nobody waits) and by the fast path.
    count: AtomicUsize,
    /// `since` of the queue's head (`u64::MAX` when empty): a running task may not
    /// barge past a head older than `fairness_window`.
    head_since: AtomicU64,
    /// The one timer of the waiters' deadlines; its `armed` deadline is written
    /// only with the queue locked.
    deadlines: Arc<Deadlines>,
}

/// The locked queue, and the waker to wake once it is unlocked (a transition
/// that tells several waiters returns their wakers instead).
struct Locked<'a, E> {
    q: MutexGuard<'a, VecDeque<Arc<Waiter<E>>>>,
    wake: Option<Waker>,
}

impl<E> Locked<'_, E> {
    /// Tells the oldest waiter that is not already told that a connection
    /// went idle.
    fn notify_one(&mut self) {
        if let Some(w) = self.q.iter().find(|w| {
            w.state
                .compare_exchange(EMPTY, NOTIFIED, SeqCst, SeqCst)
                .is_ok()
        }) {
            self.wake = lock(&w.waker).take();
        }
    }
}

impl<E> WaitQueue<E> {
    pub(crate) fn new(deadlines: Arc<Deadlines>) -> Self {
        WaitQueue {
            queue: Mutex::new(VecDeque::new()),
            count: AtomicUsize::new(0),
            head_since: AtomicU64::new(u64::MAX),
            deadlines,
        }
    }

    /// Parked waiters (lock-free read).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.count.load(SeqCst)
    }

    /// `since` of the oldest waiter, `u64::MAX` if none (lock-free read).
    #[inline]
    pub(crate) fn head_since(&self) -> u64 {
        self.head_since.load(SeqCst)
    }

    pub(crate) fn deadlines(&self) -> &Arc<Deadlines> {
        &self.deadlines
    }

    /// Runs one transition: `f` with the queue locked; then `count` and
    /// `head_since` follow the queue, the lock is released, and the waker `f`
    /// left is woken.
    #[inline]
    fn transition<R>(&self, f: impl FnOnce(&mut Locked<'_, E>) -> R) -> R {
        let mut locked = Locked {
            q: lock(&self.queue),
            wake: None,
        };
        let r = f(&mut locked);
        let Locked { q, wake } = locked;
        self.count.store(q.len(), SeqCst);
        self.head_since
            .store(q.front().map_or(u64::MAX, |w| w.since), SeqCst);
        drop(q);
        if let Some(w) = wake {
            w.wake();
        }
        r
    }

    /// `w` joins the queue. Returns whether the deadline task must be woken
    /// for its deadline (call [`Deadlines::wake`]).
    pub(crate) fn join(&self, w: Arc<Waiter<E>>) -> bool {
        self.transition(|l| {
            let wake_timer = self.deadlines.on_park(w.deadline);
            l.q.push_back(w);
            wake_timer
        })
    }

    /// A connection comes back while waiters are parked: it goes straight to
    /// the oldest waiter if `due(its since)` says it has waited long enough;
    /// otherwise `keep` puts it idle and one waiter is told. One lock for both
    /// outcomes.
    pub(crate) fn hand_over_or_notify(
        &self,
        slot: Held,
        due: impl FnOnce(u64) -> bool,
        keep: impl FnOnce(Held),
    ) {
        self.transition(|l| {
            if l.q.front().is_some_and(|w| due(w.since)) {
                let w = l.q.pop_front().expect("front exists");
                l.wake = w.tell(CONN + slot.into_raw());
            } else {
                keep(slot);
                l.notify_one();
            }
        });
    }

    /// A connection went idle: tell one waiter about it.
    pub(crate) fn notify_one(&self) {
        self.transition(|l| l.notify_one());
    }

    /// The connect made for the oldest waiter failed: it gets the cause now
    /// (guarantee 5). Returns whether a waiter was there.
    pub(crate) fn fail_oldest(&self, error: PoolError<E>) -> bool {
        self.transition(|l| {
            let Some(w) = l.q.pop_front() else {
                return false;
            };
            *lock(&w.error) = Some(error);
            l.wake = w.tell(FAILED);
            true
        })
    }

    /// The circuit breaker opened: every waiter fails now with `error()`
    /// rather than waiting for connects that will not be tried.
    pub(crate) fn fail_all(&self, error: impl Fn() -> PoolError<E>) {
        let wakers: Vec<Waker> = self.transition(|l| {
            l.q.drain(..)
                .filter_map(|w| {
                    *lock(&w.error) = Some(error());
                    w.tell(FAILED)
                })
                .collect()
        });
        wakers.into_iter().for_each(Waker::wake);
    }

    /// The pool closed: every waiter fails with `Closed`.
    pub(crate) fn close_all(&self) {
        let wakers: Vec<Waker> =
            self.transition(|l| l.q.drain(..).filter_map(|w| w.tell(CLOSED)).collect());
        wakers.into_iter().for_each(Waker::wake);
    }

    /// The deadline task fired: every waiter whose deadline is at or before
    /// `now` times out, and the task is re-armed for the earliest deadline
    /// left. An idle connection one of them had been told of goes to the next
    /// (`idle_any` says whether one is still there).
    pub(crate) fn expire(&self, now: u64, idle_any: impl FnOnce() -> bool) {
        let wakers = self.transition(|l| {
            let mut next = u64::MAX;
            let mut passed_on = false;
            let mut wakers = Vec::new();
            l.q.retain(|w| {
                if w.deadline > now {
                    next = next.min(w.deadline);
                    return true;
                }
                passed_on |= w.state.load(SeqCst) == NOTIFIED;
                wakers.extend(w.tell(TIMED_OUT));
                false
            });
            self.deadlines.rearm(next);
            if passed_on && idle_any() {
                l.notify_one();
            }
            wakers
        });
        wakers.into_iter().for_each(Waker::wake);
    }

    /// `w` leaves the queue (cancelled, or it took a connection by itself).
    /// A slot handed to it meanwhile is returned, to be given back (guarantee
    /// 2); an idle connection it had been told of is told to the next waiter.
    /// A connect started for it goes on, and its connection goes idle or to
    /// the next waiter: leaving only lowers demand.
    pub(crate) fn leave(
        &self,
        w: &Arc<Waiter<E>>,
        idle_any: impl FnOnce() -> bool,
    ) -> Option<Held> {
        self.transition(|l| {
            let removed = match l.q.iter().position(|x| Arc::ptr_eq(x, w)) {
                Some(pos) => l.q.remove(pos).is_some(),
                None => false,
            };
            match w.state.load(SeqCst) {
                // SAFETY: as in `poll_outcome`; the waiter is being forgotten,
                // so this is the one read of the handed index.
                s if s >= CONN => Some(unsafe { Held::from_raw(s - CONN) }),
                NOTIFIED if removed && idle_any() => {
                    l.notify_one();
                    None
                }
                _ => None,
            }
        })
    }
}
