//! A model check, with shuttle, of the hand-over protocol between `get()`s,
//! returns, cancellations and `close()` (guarantees 1, 2 and 6, and no lost
//! wake-up): the real [`Slots`] bitmaps and the real [`WaitQueue`] /
//! [`Waiter`] state machine, with shuttle's atomics and mutexes (`sync.rs`),
//! driven by a harness that mirrors the engine's acquire and release paths
//! (`Inner::try_fast`, `Acquire::poll`, `Inner::release`, `leave_queue`,
//! `Inner::close` with a fairness window of 0, a full pool and no connects —
//! those need a tokio runtime, which shuttle does not drive).
//!
//! Shuttle runs each test body under many schedules (random, and PCT, which
//! is good at finding bugs that need a few preemptions at the right places)
//! and fails on a deadlock — a `get()` parked with no one left to wake it —
//! as well as on the assertions: no slot is ever held twice, no slot is lost
//! (after the run every connection is idle, or closed once the pool closed),
//! and every `get()` ends with a connection or `Closed`.
//!
//! Run: `RUSTFLAGS="--cfg shuttle" cargo test -p pool-core --lib model`
//! (`cargo xtask test` does, in its own target directory).

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use shuttle::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};

use crate::deadlines::Deadlines;
use crate::slots::{Entry, Held, Slots};
use crate::waiters::{Outcome, WaitQueue, Waiter};

type E = std::io::Error;

/// Connections of the modelled pool (all open from the start).
const SIZE: usize = 2;

struct Model {
    slots: Slots<usize>,
    waiters: WaitQueue<E>,
    closed: AtomicBool,
    /// Holders of each slot right now: the witness for "never held twice".
    holders: Vec<AtomicUsize>,
    /// The pool's clock, for the waiters' ages.
    clock: AtomicU64,
    /// Connections closed (after `close`).
    closed_conns: AtomicUsize,
}

impl Model {
    fn new() -> Arc<Model> {
        let slots = Slots::new(SIZE);
        for i in 0..SIZE {
            let vacant = slots.take_vacant().expect("a vacant slot");
            let held = slots.fill(
                vacant,
                Entry {
                    conn: i,
                    created: tokio::time::Instant::now(),
                    expires: u64::MAX,
                    last_used: 0,
                    last_checked: 0,
                    fresh: true,
                    generation: 0,
                    log: crate::event_log::EventLog::new(),
                },
            );
            slots.put_idle(held);
        }
        Arc::new(Model {
            slots,
            waiters: WaitQueue::new(Deadlines::new()),
            closed: AtomicBool::new(false),
            holders: (0..SIZE).map(|_| AtomicUsize::new(0)).collect(),
            clock: AtomicU64::new(1),
            closed_conns: AtomicUsize::new(0),
        })
    }

    /// `Inner::try_fast` with a fairness window of 0: only while nobody waits.
    fn try_fast(&self) -> Option<Held> {
        if self.waiters.len() == 0 {
            self.slots.take_idle_lowest()
        } else {
            None
        }
    }

    /// `Inner::take_idle_as_waiter`, window 0.
    fn take_idle_as_waiter(&self, w: &Waiter<E>) -> Option<Held> {
        if !self.slots.any_idle() {
            return None;
        }
        if w.since() <= self.waiters.head_since() || self.waiters.len() == 0 {
            self.slots.take_idle_lowest()
        } else {
            None
        }
    }

    /// `Inner::release`, window 0 (a return goes straight to the oldest waiter).
    fn release(&self, slot: Held) {
        let idx = slot.index();
        if self.waiters.len() != 0 {
            self.waiters
                .hand_over_or_notify(slot, |_| true, |slot| self.slots.put_idle(slot));
        } else {
            self.slots.put_idle(slot);
            if self.waiters.len() != 0 {
                self.waiters.notify_one();
            }
        }
        if self.closed.load(SeqCst) {
            if let Some(slot) = self.slots.try_take_idle(idx) {
                self.close_taken(slot);
            }
        }
    }

    fn close_taken(&self, slot: Held) {
        let (_entry, vacant) = self.slots.vacate(slot);
        self.closed_conns.fetch_add(1, SeqCst);
        self.slots.free(vacant);
    }

    /// `Inner::leave_queue`.
    fn leave_queue(&self, w: &Arc<Waiter<E>>) {
        if let Some(slot) = self.waiters.leave(w, || self.slots.any_idle()) {
            self.release(slot);
        }
    }

    /// `Inner::close`, without the wait for connections in use.
    fn close(&self) {
        self.closed.store(true, SeqCst);
        self.waiters.close_all();
        while let Some(slot) = self.slots.take_idle_lowest() {
            self.close_taken(slot);
        }
    }

    /// `get()`: the fast path, else park. `Err(())`: closed.
    async fn get(&self) -> Result<Held, ()> {
        if self.closed.load(SeqCst) {
            return Err(());
        }
        if let Some(slot) = self.try_fast() {
            return Ok(slot);
        }
        let acquire = Acquire {
            m: self,
            since: self.clock.fetch_add(1, SeqCst),
            waiter: None,
        };
        match acquire.await {
            Ok(Some(slot)) => Ok(slot),
            Ok(None) => unreachable!("no deadline in the model"),
            Err(()) => Err(()),
        }
    }

    /// Uses a connection: nobody else may hold its slot meanwhile.
    fn hold(&self, slot: &Held) {
        let before = self.holders[slot.index()].fetch_add(1, SeqCst);
        assert_eq!(before, 0, "slot {} held twice", slot.index());
        shuttle::thread::yield_now();
        self.holders[slot.index()].fetch_sub(1, SeqCst);
    }
}

/// `acquire::Acquire`, as the engine polls it.
struct Acquire<'a> {
    m: &'a Model,
    since: u64,
    waiter: Option<Arc<Waiter<E>>>,
}

impl Future for Acquire<'_> {
    type Output = Result<Option<Held>, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let m = self.m;
        let Some(w) = self.waiter.clone() else {
            let w = Waiter::new(self.since, u64::MAX, cx.waker());
            m.waiters.join(w.clone());
            self.waiter = Some(w.clone());
            if m.closed.load(SeqCst) {
                return Poll::Ready(self.leave_with(Err(())));
            }
            if let Some(slot) = m.take_idle_as_waiter(&w) {
                return Poll::Ready(self.leave_with(Ok(Some(slot))));
            }
            return Poll::Pending;
        };
        let done = match w.poll_outcome(cx.waker()) {
            Outcome::Waiting => return Poll::Pending,
            Outcome::Notified => {
                return match m.take_idle_as_waiter(&w) {
                    Some(slot) => Poll::Ready(self.leave_with(Ok(Some(slot)))),
                    None => Poll::Pending,
                };
            }
            Outcome::Handed(slot) => Ok(Some(slot)),
            Outcome::Closed | Outcome::Failed => Err(()),
            Outcome::TimedOut => Ok(None),
        };
        self.waiter = None;
        Poll::Ready(done)
    }
}

impl Acquire<'_> {
    fn leave_with<T>(&mut self, result: T) -> T {
        if let Some(w) = self.waiter.take() {
            self.m.leave_queue(&w);
        }
        result
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.m.leave_queue(&w);
        }
    }
}

/// A `get()` whose caller gives up once it has had to wait: polled, and if
/// pending, polled once more after a yield, then dropped — so the drop can
/// land before, during or after a hand-over.
async fn get_or_cancel(m: &Model) -> Option<Result<Held, ()>> {
    let mut fut = pin!(m.get());
    let mut polls = 0;
    std::future::poll_fn(|cx| {
        polls += 1;
        match fut.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending if polls >= 2 => Poll::Ready(None),
            Poll::Pending => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    })
    .await
}

/// Three callers on two connections, each taking and returning twice; one
/// gives up whenever it has to wait. With `close`, a fourth thread closes
/// the pool at some point.
fn scenario(close: bool) {
    let m = Model::new();
    let mut threads = Vec::new();
    for caller in 0..3 {
        let m = m.clone();
        threads.push(shuttle::thread::spawn(move || {
            for _ in 0..2 {
                let got = if caller == 2 {
                    shuttle::future::block_on(get_or_cancel(&m))
                } else {
                    Some(shuttle::future::block_on(m.get()))
                };
                match got {
                    Some(Ok(slot)) => {
                        m.hold(&slot);
                        m.release(slot);
                    }
                    Some(Err(())) => assert!(close, "Closed from an open pool"),
                    None => {}
                }
            }
        }));
    }
    if close {
        let m = m.clone();
        threads.push(shuttle::thread::spawn(move || m.close()));
    }
    for t in threads {
        t.join().expect("a caller panicked");
    }
    assert_eq!(m.waiters.len(), 0, "a waiter was left in the queue");
    let idle = m.slots.idle_count();
    let closed = m.closed_conns.load(SeqCst);
    if close {
        assert_eq!((idle, closed), (0, SIZE), "after close: idle, closed");
    } else {
        assert_eq!((idle, closed), (SIZE, 0), "a connection was lost");
    }
}

const ITERATIONS: usize = 2_000;

#[test]
fn gets_returns_and_cancellations_random_schedules() {
    shuttle::check_random(|| scenario(false), ITERATIONS);
}

#[test]
fn gets_returns_and_cancellations_pct() {
    shuttle::check_pct(|| scenario(false), ITERATIONS, 3);
}

#[test]
fn close_among_gets_and_cancellations_random_schedules() {
    shuttle::check_random(|| scenario(true), ITERATIONS);
}

#[test]
fn close_among_gets_and_cancellations_pct() {
    shuttle::check_pct(|| scenario(true), ITERATIONS, 3);
}
