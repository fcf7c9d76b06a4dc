//! The checkout path of `get()`: fast path, wait ([`Acquire`], parked in the
//! wait queue), then reset and check under the acquire deadline.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::PoolError;
use crate::guard::{PoolRef, PooledConnection};
use crate::inner::Inner;
use crate::manager::Manager;
use crate::slots::Held;
use crate::stats::CloseReason;
use crate::timeout::lazy_timeout;
use crate::waiters::{Outcome, Waiter};

/// How long a checkout may take.
#[derive(Clone, Copy)]
pub(crate) enum Budget {
    /// Wait (queue, connect) and reset/check together within this much
    /// (guarantee 4): `get()`, `get_timeout()`.
    Total(Duration),
    /// Never park; reset and check of the connection taken get
    /// `connect_timeout`, as their own phase: `try_get()`.
    NoWait,
}

/// Checks out one connection within `budget` (guarantee 4).
///
/// Cancellation safety: the slot is owned either by the `Acquire` future (which
/// gives it back on drop) or by a guard (which returns or closes it on drop) at
/// every `.await` — there is no instant in which a dropped future owns a slot that
/// nothing will release (guarantee 2).
pub(crate) async fn acquire<'a, M: Manager>(
    pool: &'a Arc<Inner<M>>,
    budget: Budget,
    site: &'static Location<'static>,
) -> Result<PooledConnection<'a, M>, PoolError<M::Error>> {
    let inner: &Inner<M> = pool;
    let start = Instant::now();
    let timeout = match budget {
        Budget::Total(timeout) => Some(timeout),
        Budget::NoWait => None,
    };
    let deadline = timeout.map(|t| start + t);
    // The pool's clock (nanoseconds since its epoch) at `start`, converted only
    // when fairness or a wait needs it: once, not once per use.
    let mut start_nanos: Option<u64> = None;
    // Set when this call parked: the time it got its connection, read once for
    // both the reset/check clock and the wait statistics.
    let mut waited: Option<Instant> = None;
    if inner.waiters.len() != 0 {
        // Others are parked: spend one unit of the task's cooperative budget,
        // so a task that loops on get() without another await yields to the
        // scheduler now and then and the parked waiters get to run. Without
        // it, tasks that parked once keep the queue non-empty for ever and
        // every return pays for a wake-up (the convoy of issue 17).
        std::future::poll_fn(tokio::task::coop::poll_proceed)
            .await
            .made_progress();
    }
    loop {
        let slot = match inner.try_fast(|| *start_nanos.get_or_insert_with(|| inner.nanos(start))) {
            Some(slot) => slot,
            None => {
                if inner.is_closed() {
                    return Err(PoolError::Closed);
                }
                let (Some(timeout), Some(deadline)) = (timeout, deadline) else {
                    // `try_get`: open one for a later call if nobody waits. A miss
                    // is not an acquire timeout: the `timeouts` counter stays.
                    if inner.waiters.len() == 0 {
                        inner.top_up_one();
                    }
                    return Err(PoolError::Timeout {
                        waited: start.elapsed(),
                        last_error: None,
                    });
                };
                // No timer of our own while the pool's deadline task runs: it
                // wakes us with `None` once `deadline` passed (`deadlines.rs`).
                let own_timer = !inner.waiters.deadlines().is_running();
                let since = *start_nanos.get_or_insert_with(|| inner.nanos(start));
                let wait = Acquire {
                    inner,
                    since,
                    deadline: since.saturating_add(nanos_u64(timeout)),
                    waiter: None,
                };
                let got = if own_timer {
                    lazy_timeout(deadline, wait).await.unwrap_or(Ok(None))
                } else {
                    wait.await
                };
                let slot = match got? {
                    Some(slot) => slot,
                    None => return Err(timed_out(inner, start)),
                };
                waited = Some(Instant::now());
                slot
            }
        };
        // Guard before await: from here on a cancelled caller returns the slot.
        let mut guard = PooledConnection::from_slot(PoolRef::Borrowed(pool), slot);
        if guard.entry().fresh {
            guard.entry_mut().fresh = false;
            inner.counters.fresh_handouts.fetch_add(1, Relaxed);
        } else {
            let now = waited.unwrap_or(start);
            if !validate(inner, &mut guard, now, deadline).await {
                guard.close_as(CloseReason::CheckFailed);
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(timed_out(inner, start));
                }
                continue;
            }
        }
        if let Some(got) = waited {
            inner.counters.acquired_waited.fetch_add(1, Relaxed);
            inner
                .counters
                .wait_nanos
                .fetch_add((got - start).as_nanos() as u64, Relaxed);
        } else {
            inner.counters.acquired_fast.incr();
        }
        inner.track_checkout(guard.slot(), site);
        return Ok(guard);
    }
}

/// Resets a reused connection and checks it if it sat idle past `validate_after`.
/// On failure the connection is closed and `false` returned.
async fn validate<M: Manager>(
    inner: &Inner<M>,
    guard: &mut PooledConnection<'_, M>,
    now: Instant,
    deadline: Option<Instant>,
) -> bool {
    let own = now + inner.config.connect_timeout;
    let io_deadline = deadline.map_or(own, |d| d.min(own));
    // Dirty while the manager talks to the connection: a caller cancelled here
    // must not hand a half-reset connection to the next one.
    guard.set_dirty(true);
    let reset = lazy_timeout(io_deadline, inner.manager.reset(&mut **guard)).await;
    if !matches!(reset, Some(Ok(()))) {
        tracing::debug!(pool = %inner.name, "reset failed; closing connection");
        return false;
    }
    let idle_for = now.saturating_duration_since(guard.entry().last_used);
    if idle_for >= inner.config.validate_after {
        let check = lazy_timeout(io_deadline, inner.manager.check(&mut **guard)).await;
        if !matches!(check, Some(Ok(()))) {
            tracing::debug!(pool = %inner.name, "check failed; closing connection");
            return false;
        }
        guard.entry_mut().last_checked = now;
    }
    guard.set_dirty(false);
    true
}

fn timed_out<M: Manager>(inner: &Inner<M>, start: Instant) -> PoolError<M::Error> {
    inner.counters.timeouts.fetch_add(1, Relaxed);
    PoolError::Timeout {
        waited: start.elapsed(),
        last_error: inner.last_error_since(start),
    }
}

fn nanos_u64(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Parks until a connection is handed over or an idle one can be taken.
/// Resolves to the held slot, or `None` once its deadline passed.
///
/// Cancellation safety: dropping it at any point dequeues the waiter, and a slot
/// that was handed over in the meantime is released again (see `Drop`).
struct Acquire<'a, M: Manager> {
    inner: &'a Inner<M>,
    /// When the `get()` began, on the pool's clock: its age for fairness.
    since: u64,
    /// Nanoseconds since the pool's epoch.
    deadline: u64,
    /// Set once queued; cleared when the waiter has left the queue.
    waiter: Option<Arc<Waiter<M::Error>>>,
}

impl<M: Manager> Future for Acquire<'_, M> {
    type Output = Result<Option<Held>, PoolError<M::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner;
        let Some(w) = self.waiter.clone() else {
            // First poll: join the queue, then look again — a return that landed
            // between the caller's failed fast path and our push saw no waiter and
            // left its connection idle (the lost wake-up of bb8 #122 / sqlx #453).
            let w = Waiter::new(self.since, self.deadline, cx.waker());
            if inner.waiters.join(w.clone()) {
                inner.wake_deadlines();
            }
            self.waiter = Some(w.clone());
            if inner.is_closed() {
                return Poll::Ready(self.leave_with(Err(PoolError::Closed)));
            }
            if let Some(slot) = inner.take_idle_as_waiter(&w) {
                return Poll::Ready(self.leave_with(Ok(Some(slot))));
            }
            inner.maybe_open();
            return Poll::Pending;
        };
        let done = match w.poll_outcome(cx.waker()) {
            Outcome::Waiting => return Poll::Pending,
            Outcome::Notified => {
                return match inner.take_idle_as_waiter(&w) {
                    Some(slot) => Poll::Ready(self.leave_with(Ok(Some(slot)))),
                    None => Poll::Pending,
                };
            }
            Outcome::Handed(slot) => Ok(Some(slot)),
            Outcome::Failed => Err(w.take_error().unwrap_or(PoolError::Closed)),
            Outcome::Closed => Err(PoolError::Closed),
            Outcome::TimedOut => Ok(None),
        };
        // A giver dequeued us: nothing to leave.
        self.waiter = None;
        Poll::Ready(done)
    }
}

impl<M: Manager> Acquire<'_, M> {
    /// Leaves the queue after taking `result` by ourselves, giving back anything
    /// a giver handed us meanwhile.
    fn leave_with<T>(&mut self, result: T) -> T {
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
