//! The reaper: one task per pool, holding only a weak handle (guarantee 7), and
//! its pass: retire expired and long-idle connections, probe the quiet ones,
//! top up `min_idle`, warn of leaks.

use std::panic::Location;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use crate::guard::{PoolRef, PooledConnection};
use crate::inner::Inner;
use crate::manager::Manager;
use crate::slots::Held;
use crate::stats::CloseReason;

/// Leak warnings: set in `held_since` once the warning for that checkout is logged.
const WARNED: u64 = 1 << 63;

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

impl<M: Manager> Inner<M> {
    /// One pass of the reaper: retire expired and long-idle connections, probe
    /// the ones idle past `keepalive_interval`, top up `min_idle`, warn of leaks.
    /// No lock is held across the probes: each probed connection is owned by a
    /// guard, exactly as if a caller had checked it out.
    pub(crate) async fn reap(self: &Arc<Self>) {
        let now = self.clock.exact();
        let mut idle_left = self.slots.idle_count();
        let mut to_probe = Vec::new();
        for idx in self.slots.idle_snapshot() {
            let Some(mut slot) = self.slots.try_take_idle(idx) else {
                continue;
            };
            self.flush_slot(&mut slot, false);
            let entry = self.slots.entry_mut(&mut slot);
            if now >= entry.expires {
                idle_left = idle_left.saturating_sub(1);
                self.close_taken(slot, CloseReason::Lifetime);
                continue;
            }
            let idle_for = Duration::from_nanos(now.saturating_sub(entry.last_used));
            if self.config.idle_timeout.is_some_and(|t| idle_for >= t)
                && idle_left > self.min_idle.load(Relaxed)
            {
                idle_left -= 1;
                self.close_taken(slot, CloseReason::Idle);
                continue;
            }
            let unprobed_for =
                Duration::from_nanos(now.saturating_sub(entry.last_used.max(entry.last_checked)));
            if self
                .config
                .keepalive_interval
                .is_some_and(|k| unprobed_for >= k)
            {
                to_probe.push(slot);
                continue;
            }
            self.release(slot);
        }
        for slot in to_probe {
            let mut guard = PooledConnection::from_slot(PoolRef::Borrowed(self), slot);
            // A probe cut short (runtime shutdown) leaves the connection in an
            // unknown state: the guard closes it instead of returning it.
            guard.set_dirty(true);
            let ok = matches!(
                tokio::time::timeout(self.config.connect_timeout, self.manager.check(&mut guard))
                    .await,
                Ok(Ok(()))
            );
            if ok {
                guard.entry_mut().last_checked = self.clock.exact();
                guard.keep_idle_time();
                guard.set_dirty(false);
            } else {
                guard.close_as(CloseReason::CheckFailed);
            }
        }
        self.top_up_min_idle();
        self.warn_leaks();
    }

    fn warn_leaks(&self) {
        let Some(threshold) = self.config.leak_threshold else {
            return;
        };
        let now = self.now_nanos();
        for idx in 0..self.config.capacity() {
            let meta = self.slots.meta(idx);
            let held = meta.held_since.load(Relaxed);
            if held == 0 || held & WARNED != 0 {
                continue;
            }
            let held_for = Duration::from_nanos(now.saturating_sub(held));
            if held_for < threshold {
                continue;
            }
            if meta
                .held_since
                .compare_exchange(held, held | WARNED, Relaxed, Relaxed)
                .is_ok()
            {
                let site = meta.site.load(Relaxed);
                // SAFETY: `site` is null or a `&'static Location` stored at checkout.
                let site = unsafe { site.as_ref() }
                    .map_or_else(|| "unknown".to_string(), |l| l.to_string());
                tracing::warn!(
                    pool = %self.name,
                    held_for = ?held_for,
                    acquired_at = %site,
                    "connection held longer than leak_threshold"
                );
            }
        }
    }

    /// Marks `slot` as held from `site` (only with `leak_threshold` set).
    pub(crate) fn track_checkout(&self, slot: &Held, site: &'static Location<'static>) {
        if self.config.leak_threshold.is_some() {
            let meta = self.slots.meta(slot.index());
            meta.site.store(site as *const _ as *mut _, Relaxed);
            meta.held_since.store(self.now_nanos().max(1), Relaxed);
        }
    }
}
