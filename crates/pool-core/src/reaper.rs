//! The reaper task: one per pool, holding only a weak handle (guarantee 7).

use std::sync::Arc;

use tokio::time::{sleep_until, Instant};

use crate::inner::Inner;
use crate::manager::Manager;

/// Spawns the reaper of `inner`. It stops when the pool is dropped or closed; it
/// never keeps the pool alive between passes.
pub(crate) fn spawn<M: Manager>(inner: &Arc<Inner<M>>) {
    let weak = Arc::downgrade(inner);
    let period = inner.config.reap_interval;
    inner.handle.spawn(async move {
        let mut next = Instant::now() + period;
        loop {
            sleep_until(next).await;
            next = Instant::now() + period;
            let Some(inner) = weak.upgrade() else { return };
            if inner.is_closed() {
                return;
            }
            inner.reap().await;
        }
    });
}
