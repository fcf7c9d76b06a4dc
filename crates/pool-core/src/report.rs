//! What a pool says about itself: the stats snapshot and the health verdict.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::health::HealthStatus;
use crate::inner::Inner;
use crate::lock::lock;
use crate::manager::Manager;
use crate::stats::Stats;

/// How long a connect failure colours `health()`.
pub const HEALTH_WINDOW: Duration = Duration::from_secs(60);

/// The verdict of a pool that is open and whose breaker is closed, from its
/// snapshot and its last connect failure not followed by a success (within
/// [`HEALTH_WINDOW`]): Unhealthy when that failure left no open connection,
/// Degraded when some are open or callers wait with every connection in use,
/// else Healthy. Shared by every pool, engine-built or not (pool-mongo).
pub fn health_verdict(s: &Stats, failure: Option<String>) -> HealthStatus {
    if let Some(e) = failure {
        let reason = format!("cannot connect: {e}");
        // Connects still in flight to a server that refuses are not
        // connections: only open ones make the pool merely degraded.
        return if s.idle + s.in_use == 0 {
            HealthStatus::Unhealthy { reason }
        } else {
            HealthStatus::Degraded { reason }
        };
    }
    if s.waiting > 0 && s.idle == 0 && s.size >= s.max_size {
        return HealthStatus::Degraded {
            reason: format!(
                "saturated: {} waiting, all {} connections in use",
                s.waiting, s.max_size
            ),
        };
    }
    HealthStatus::Healthy
}

impl<M: Manager> Inner<M> {
    pub(crate) fn stats(&self) -> Stats {
        let mut s = Stats {
            max_size: self.max_size.load(Relaxed),
            size: self.size(),
            idle: self.slots.idle_count(),
            opening: self.opening.load(Relaxed),
            waiting: self.waiters.len(),
            ..Stats::default()
        };
        s.in_use = s.size.saturating_sub(s.idle + s.opening);
        self.counters.fill(&mut s, self.slots.handouts());
        s.use_time = self.slots.use_time();
        s.circuits_open = usize::from(self.breaker.refuses().is_some());
        s
    }

    pub(crate) fn health(&self) -> HealthStatus {
        if self.is_closed() {
            return HealthStatus::Unhealthy {
                reason: "pool is closed".into(),
            };
        }
        if let Some(open) = self.breaker.refuses() {
            return HealthStatus::Unhealthy {
                reason: format!(
                    "circuit open after {} failed connects in a row{}; next probe in {:?}",
                    open.failures,
                    open.last_error
                        .map(|e| format!(" (last: {e})"))
                        .unwrap_or_default(),
                    open.retry_in
                ),
            };
        }
        let s = self.stats();
        let recent_failure = {
            let last = lock(&self.last_error);
            let ok = *lock(&self.last_connect_ok);
            match &*last {
                Some((at, e)) if at.elapsed() < HEALTH_WINDOW && ok.is_none_or(|ok| ok < *at) => {
                    Some(e.to_string())
                }
                _ => None,
            }
        };
        health_verdict(&s, recent_failure)
    }
}
