//! A timeout that costs nothing when the future is ready at once.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use tokio::time::{sleep_until, Instant, Sleep};

/// Runs `fut` until the deadline `deadline()` gives; `None` on timeout. Unlike
/// `tokio::time::timeout`, the deadline is computed and the timer created only if
/// the first poll is pending, so the pool's fast path (an idle connection, a
/// no-op reset) neither reads the clock nor touches the timer wheel. The timer
/// lives inside this future, not in a box: a wait allocates nothing for it.
pub(crate) async fn lazy_timeout<F: Future>(
    deadline: impl FnOnce() -> Instant,
    fut: F,
) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut sleep = pin!(None::<Sleep>);
    let mut deadline = Some(deadline);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if let Some(deadline) = deadline.take() {
            sleep.set(Some(sleep_until(deadline())));
        }
        match sleep.as_mut().as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            // `None` cannot happen (set just above); waiting on is the safe answer.
            Some(Poll::Pending) | None => Poll::Pending,
        }
    })
    .await
}
