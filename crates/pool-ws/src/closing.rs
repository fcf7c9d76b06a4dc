//! Graceful closes in flight, so that a new connection waits for them: a
//! connection's slot is free as soon as the pool lets go of it, but the peer
//! still counts it until the Close handshake ends. Without the wait a server
//! could see one more socket than the limits allow after every eviction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How many graceful closes are in flight, across every URL of a pool (the
/// total limit spans them all).
#[derive(Debug, Default)]
pub(crate) struct Closing {
    count: AtomicUsize,
    done: Notify,
}

/// One close in flight; finished when dropped (also when its task is dropped
/// with the runtime).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Closing>);

impl Closing {
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Closes in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no close is in flight, at most `cap`: every close ends
    /// within its `close_timeout`, so the cap only matters when closes keep
    /// starting.
    pub(crate) async fn settled(&self, cap: Duration) {
        let wait = async {
            loop {
                let notified = self.done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(cap, wait).await;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}
