//! A timeout that costs nothing when the future is ready at once.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

use tokio::time::{sleep_until, Instant, Sleep};

/// Runs `fut` until `deadline`; `None` on timeout. Unlike `tokio::time::timeout`,
/// the timer is only created if the first poll is pending, so the pool's fast path
/// (an idle connection, a no-op reset) never touches the timer wheel.
pub(crate) async fn lazy_timeout<F: Future>(deadline: Instant, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut sleep: Option<Pin<Box<Sleep>>> = None;
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        let timer = sleep.get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
