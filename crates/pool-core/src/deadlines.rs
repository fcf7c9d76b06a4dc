//! One timer per pool for the deadlines of parked `get()`s (guarantee 4).
//!
//! A timer per wait costs a timer-wheel insert and removal for every `get()`
//! that parks (docs/benchmarks.md has the measured cost). Here each waiter
//! only records its deadline; one task per pool sleeps until the earliest
//! deadline it was told of and, when it fires, times out every waiter whose
//! deadline has passed. Waiters of one pool mostly share one
//! `acquire_timeout` and queue in arrival order, so a new waiter's deadline is
//! rarely the earliest: the task is woken only when one is (a shorter
//! `get_timeout`, or the first waiter after an idle spell) and otherwise fires
//! about once per `acquire_timeout`.
//!
//! `armed` is written only with the wait queue locked, by a parking waiter
//! (lowering it) and by the task (raising it to the earliest deadline still
//! queued), so it never claims a deadline later than one in the queue.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

/// What the deadline task needs of its pool, whatever its manager type.
pub(crate) trait Expire: Send + Sync {
    /// Times out every waiter whose deadline has passed.
    fn expire_waiters(&self);
}

/// The state shared by a pool and its deadline task.
pub(crate) struct Deadlines {
    /// The deadline (nanoseconds since the pool's epoch) the task will fire at
    /// or before; `u64::MAX`: none. Written with the wait queue locked.
    armed: AtomicU64,
    /// The task is alive (it is spawned at the first park, so a pool that
    /// never waits, or a keyed pool's quiet key, never has one). Cleared when
    /// its future is dropped: by the pool's drop, or by the shutdown of the
    /// runtime it ran on, after which waiters arm timers of their own.
    spawned: AtomicBool,
    /// The pool was dropped: the task ends.
    stopped: AtomicBool,
    /// Wakes the task to re-read `armed` (or `stopped`). `notify_one` keeps a
    /// permit when the task is not waiting, so a wake-up is never lost.
    wake: Notify,
}

impl Deadlines {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Deadlines {
            armed: AtomicU64::new(u64::MAX),
            spawned: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    /// A waiter with `deadline` joins the queue. Call with the queue locked;
    /// returns whether the task must be woken (call [`Deadlines::wake`] after
    /// unlocking).
    pub(crate) fn on_park(&self, deadline: u64) -> bool {
        if deadline < self.armed.load(SeqCst) {
            self.armed.store(deadline, SeqCst);
            return true;
        }
        false
    }

    /// The task fired and `next` is the earliest deadline still queued (or
    /// `u64::MAX`). Call with the queue locked.
    pub(crate) fn rearm(&self, next: u64) {
        self.armed.store(next, SeqCst);
    }

    /// Whether the task is alive to time out a wait. A waiter that parks while
    /// it is not arms a timer of its own (the first wait of a pool, and every
    /// wait once the pool's runtime has shut down).
    pub(crate) fn is_running(&self) -> bool {
        self.spawned.load(SeqCst)
    }

    /// Wakes the task, spawning it on `handle` if it is not alive. `epoch` is
    /// the origin of the pool's nanosecond clock.
    pub(crate) fn wake(
        self: &Arc<Self>,
        handle: &Handle,
        pool: impl FnOnce() -> Weak<dyn Expire>,
        epoch: Instant,
    ) {
        if !self.spawned.swap(true, SeqCst) {
            // On a runtime that has shut down the future is dropped at once,
            // and `Alive` clears `spawned` again.
            let alive = Alive(self.clone());
            handle.spawn(run(alive, pool(), epoch));
        } else {
            self.wake.notify_one();
        }
    }

    /// The pool is gone: ends the task.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, SeqCst);
        self.wake.notify_one();
    }
}

/// Owned by the task's future: clears `spawned` when that future is dropped,
/// finished or not.
struct Alive(Arc<Deadlines>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.spawned.store(false, SeqCst);
    }
}

/// The deadline task. Holds the pool only weakly, like the reaper: it never
/// keeps a dropped pool alive.
async fn run(alive: Alive, pool: Weak<dyn Expire>, epoch: Instant) {
    let d = &alive.0;
    loop {
        if d.stopped.load(SeqCst) {
            return;
        }
        // Created before `armed` is read: a lower deadline stored after the read
        // comes with a `notify_one` that completes this.
        let mut woken = pin!(d.wake.notified());
        woken.as_mut().enable();
        let target = d.armed.load(SeqCst);
        if target == u64::MAX {
            woken.await;
            continue;
        }
        let mut timer = pin!(sleep_until(epoch + Duration::from_nanos(target)));
        let fired = poll_fn(|cx| {
            if woken.as_mut().poll(cx).is_ready() {
                return Poll::Ready(false);
            }
            timer.as_mut().poll(cx).map(|()| true)
        })
        .await;
        if !fired {
            continue;
        }
        let Some(inner) = pool.upgrade() else { return };
        inner.expire_waiters();
    }
}
