//! The checkout path of `get()`: fast path, wait ([`Acquire`], parked in the
//! wait queue), then reset and check under the acquire deadline.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{nanos_of, Clock};
use crate::error::PoolError;
use crate::events::Event;
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

/// When a `get()` began, read from the clock only when something needs it:
/// fairness while others wait, a wait, reset/check I/O that does not finish at
/// once, an error. The fast path reads no clock.
struct Started<'a> {
    clock: &'a Clock,
    at: Option<(Instant, u64)>,
}

impl Started<'_> {
    /// The instant, and the same on the pool's clock.
    fn get(&mut self) -> (Instant, u64) {
        let clock = self.clock;
        *self.at.get_or_insert_with(|| {
            let t = Instant::now();
            (t, clock.nanos(t))
        })
    }

    fn instant(&mut self) -> Instant {
        self.get().0
    }

    fn nanos(&mut self) -> u64 {
        self.get().1
    }
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
    let mut started = Started {
        clock: &inner.clock,
        at: None,
    };
    let timeout = match budget {
        Budget::Total(timeout) => Some(timeout),
        Budget::NoWait => None,
    };
    // Set when this call parked: the time it got its connection.
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
        let slot = match inner.try_fast(|| started.nanos()) {
            Some(slot) => slot,
            None => {
                if inner.is_closed() {
                    return Err(PoolError::Closed);
                }
                if let Some(open) = inner.breaker.refuses() {
                    return Err(open.error());
                }
                let Some(timeout) = timeout else {
                    // `try_get`: open one for a later call if nobody waits. A miss
                    // is not an acquire timeout: the `timeouts` counter stays.
                    if inner.waiters.len() == 0 {
                        inner.top_up_one();
                    }
                    return Err(PoolError::Timeout {
                        waited: started.instant().elapsed(),
                        last_error: None,
                    });
                };
                let (start, since) = started.get();
                // No timer of our own while the pool's deadline task runs: it
                // wakes us with `None` once the deadline passed (`deadlines.rs`).
                let own_timer = !inner.waiters.deadlines().is_running();
                let wait = Acquire {
                    inner,
                    since,
                    deadline: since.saturating_add(nanos_of(timeout)),
                    waiter: None,
                };
                // The timer is boxed: this path is rare (see `deadlines.rs`), and
                // a timer inline would make every `get()` future larger.
                let got = if own_timer {
                    Box::pin(lazy_timeout(|| start + timeout, wait))
                        .await
                        .unwrap_or(Ok(None))
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
        if guard.entry().generation != inner.generation.load(Ordering::Acquire) {
            // Made before `evict_all` (old credentials): never handed out.
            guard.close_as(CloseReason::Evicted);
            continue;
        }
        if guard.entry().fresh {
            guard.entry_mut().fresh = false;
            inner.counters.fresh_handouts.fetch_add(1, Relaxed);
        } else {
            // Dirty while the manager talks to the connection: a caller
            // cancelled here must not hand a half-reset connection to the next
            // (unless the manager says its reset leaves none).
            let cancel_safe = inner.manager.reset_is_cancel_safe(&guard);
            guard.set_dirty(!cancel_safe);
            let reset_ok = {
                let mut reset = std::pin::pin!(inner.manager.reset(&mut *guard));
                // Most resets finish at once (or do nothing): a first poll,
                // with a waker that is replaced if it is pending, spares them
                // the timeout's machinery; the rest wait on I/O anyway, boxed
                // so that the timer does not enlarge every `get()` future.
                let first = reset.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                match first {
                    Poll::Ready(r) => r.is_ok(),
                    Poll::Pending => {
                        let deadline = || io_deadline(inner, &mut started, timeout);
                        matches!(Box::pin(lazy_timeout(deadline, reset)).await, Some(Ok(())))
                    }
                }
            };
            let now = inner.clock.coarse();
            let idle_for = now.saturating_sub(guard.entry().last_used);
            let valid = reset_ok
                && (idle_for < inner.validate_after
                    || Box::pin(check(inner, &mut guard, &mut started, timeout, now)).await);
            if !valid {
                tracing::debug!(pool = %inner.name, "reset or check failed; closing connection");
                refuse(inner, guard, &mut started, timeout)?;
                continue;
            }
            guard.set_dirty(false);
        }
        if let Some(hook) = &inner.hooks.before_checkout {
            // Boxed, in a function of its own: without the hook, `get()`
            // carries none of its state.
            if !Box::pin(before_checkout(
                inner,
                hook,
                &mut guard,
                &mut started,
                timeout,
            ))
            .await
            {
                refuse(inner, guard, &mut started, timeout)?;
                continue;
            }
        }
        inner.slots.count_handout(guard.slot());
        if let Some(got) = waited {
            count_wait(inner, started.instant(), got);
        }
        if inner.hooks.observer.is_some() {
            guard.report_checkout(waited_for(&started, waited), inner.clock.coarse());
        }
        inner.track_checkout(guard.slot(), site);
        return Ok(guard);
    }
}

/// Counts the wait of a `get()` that parked from `start` until `got`.
#[cold]
fn count_wait<M: Manager>(inner: &Inner<M>, start: Instant, got: Instant) {
    inner.counters.wait.record((got - start).as_nanos() as u64);
}

/// How long a `get()` took to get its connection, in nanoseconds: zero when
/// it read no clock (it found an idle connection and reset it at once).
#[inline]
fn waited_for(started: &Started<'_>, got: Option<Instant>) -> u64 {
    let waited = match (started.at, got) {
        (None, _) => return 0,
        (Some((start, _)), Some(got)) => got - start,
        (Some((start, _)), None) => start.elapsed(),
    };
    nanos_of(waited)
}

/// When a reset or check that did not finish at once must give up: its own
/// `connect_timeout`, and never past the acquire deadline.
fn io_deadline<M: Manager>(
    inner: &Inner<M>,
    started: &mut Started<'_>,
    timeout: Option<Duration>,
) -> Instant {
    let own = Instant::now() + inner.config.connect_timeout;
    timeout.map_or(own, |t| (started.instant() + t).min(own))
}

/// Checks a connection that sat idle past `validate_after` (on the coarse
/// clock), under [`io_deadline`]; `now` is recorded as its last check.
async fn check<M: Manager>(
    inner: &Inner<M>,
    guard: &mut PooledConnection<'_, M>,
    started: &mut Started<'_>,
    timeout: Option<Duration>,
    now: u64,
) -> bool {
    // Dirty while the probe is out, whatever `reset_is_cancel_safe` said of
    // the reset: a caller cancelled here leaves the probe pending, and the
    // connection, just returned, would reach the next caller unchecked.
    guard.set_dirty(true);
    let deadline = || io_deadline(inner, started, timeout);
    let checked = lazy_timeout(deadline, inner.manager.check(&mut **guard)).await;
    if !matches!(checked, Some(Ok(()))) {
        return false;
    }
    guard.entry_mut().last_checked = now;
    true
}

/// Closes a connection refused on checkout (its reset, check or
/// `before_checkout` failed); `Err` once the caller's budget is spent,
/// otherwise it tries the next one.
fn refuse<M: Manager>(
    inner: &Inner<M>,
    guard: PooledConnection<'_, M>,
    started: &mut Started<'_>,
    timeout: Option<Duration>,
) -> Result<(), PoolError<M::Error>> {
    guard.close_as(CloseReason::CheckFailed);
    let start = started.instant();
    match timeout {
        Some(timeout) if start.elapsed() >= timeout => Err(timed_out(inner, start)),
        _ => Ok(()),
    }
}

/// Runs the `before_checkout` hook under [`io_deadline`]; `false`: refused
/// (failed or timed out), the connection is to be closed.
#[inline(never)]
async fn before_checkout<M: Manager>(
    inner: &Inner<M>,
    hook: &crate::hooks::Hook<M>,
    guard: &mut PooledConnection<'_, M>,
    started: &mut Started<'_>,
    timeout: Option<Duration>,
) -> bool {
    guard.set_dirty(true);
    let deadline = || io_deadline(inner, started, timeout);
    let accepted = matches!(
        lazy_timeout(deadline, hook(&mut **guard)).await,
        Some(Ok(()))
    );
    if accepted {
        guard.set_dirty(false);
    } else {
        tracing::debug!(pool = %inner.name, "before_checkout refused the connection; closing it");
    }
    accepted
}

#[cold]
fn timed_out<M: Manager>(inner: &Inner<M>, start: Instant) -> PoolError<M::Error> {
    inner.counters.timeouts.fetch_add(1, Relaxed);
    let waited = start.elapsed();
    inner.emit(|| Event::TimedOut { waited });
    PoolError::Timeout {
        waited,
        last_error: inner.last_error_since(start),
    }
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
