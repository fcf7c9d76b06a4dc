//! The distributions of a registry pool's create, wait and use times, from
//! the engine's events (an observer the registry installs on the pools it
//! builds, when an exporter feature is on): what `/metrics` exposes as
//! histogram buckets. Each thread adds to counters of its own
//! (`StripedCounters`): a bucket hit is two plain stores, no lock.

use std::sync::Arc;
use std::time::Duration;

use pool_core::util::StripedCounters;
use pool_core::{Event, EventBatch, Observer};

/// Upper bounds of the buckets, in seconds (the OpenTelemetry conventions'
/// advice for `db.client.connection.*` durations); one more bucket holds
/// what is above the last.
pub const BOUNDS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// One distribution of durations: a counter per bucket and the sum in
/// nanoseconds, striped per thread (no contended atomic on the hot path).
#[derive(Default)]
pub(crate) struct Histogram {
    /// Buckets `0..=BOUNDS.len()`, then the sum.
    counts: StripedCounters<{ BOUNDS.len() + 2 }>,
}

const SUM: usize = BOUNDS.len() + 1;

/// [`BOUNDS`] in nanoseconds, for durations that come as nanoseconds.
const BOUNDS_NS: [u64; BOUNDS.len()] = [
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// One batch's share of a [`Histogram`], added up on the stack first.
#[derive(Default)]
struct Tally([u64; BOUNDS.len() + 2]);

/// The bucket of a duration: the first bound it does not exceed, else the
/// last (`+Inf`).
fn bucket(nanos: u64) -> usize {
    BOUNDS_NS
        .iter()
        .position(|b| nanos <= *b)
        .unwrap_or(BOUNDS.len())
}

impl Tally {
    fn record(&mut self, nanos: u64) {
        self.0[bucket(nanos)] += 1;
        self.0[SUM] = self.0[SUM].wrapping_add(nanos);
    }
}

/// A histogram as prometheus-client takes it: sum in seconds, count, and
/// per bucket `(upper bound, count in it)` — not cumulative: the encoder
/// adds them up — the last one `+Inf`.
pub(crate) struct Distribution {
    pub(crate) sum: f64,
    pub(crate) count: u64,
    pub(crate) buckets: Vec<(f64, u64)>,
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts.add(bucket(nanos), 1);
        self.counts.add(SUM, nanos);
    }

    /// Adds a batch's tally: one add per bucket it touched.
    fn add(&self, tally: &Tally) {
        for (i, &n) in tally.0.iter().enumerate() {
            if n != 0 {
                self.counts.add(i, n);
            }
        }
    }

    pub(crate) fn read(&self) -> Distribution {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(BOUNDS.len() + 1);
        for i in 0..=BOUNDS.len() {
            let n = self.counts.get(i);
            total += n;
            buckets.push((BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), n));
        }
        Distribution {
            sum: Duration::from_nanos(self.counts.get(SUM)).as_secs_f64(),
            count: total,
            buckets,
        }
    }
}

/// The three distributions of one pool.
#[derive(Default)]
pub(crate) struct PoolTimings {
    pub(crate) create: Histogram,
    /// Every checkout's wait (zero for one that found an idle connection).
    pub(crate) wait: Histogram,
    pub(crate) use_: Histogram,
    /// The OpenTelemetry histograms, once `otel::install` ran.
    #[cfg(feature = "otel")]
    pub(crate) otel: std::sync::OnceLock<crate::otel::OtelTimings>,
}

impl std::fmt::Debug for PoolTimings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolTimings")
            .field("checkouts", &self.wait.read().count)
            .finish_non_exhaustive()
    }
}

/// The observer that fills a pool's timings.
pub(crate) struct Recorder(pub(crate) Arc<PoolTimings>);

impl Observer for Recorder {
    fn on_event(&self, _pool: &str, event: Event) {
        let t = &self.0;
        let (_which, d) = match event {
            Event::Created { connect_time } => {
                t.create.record(connect_time);
                (Which::Create, connect_time)
            }
            Event::CheckedOut { wait } => {
                t.wait.record(wait);
                (Which::Wait, wait)
            }
            Event::CheckedIn { used } => {
                t.use_.record(used);
                (Which::Use, used)
            }
            _ => return,
        };
        #[cfg(feature = "otel")]
        if let Some(o) = t.otel.get() {
            crate::otel::record(o, _which, d.as_secs_f64());
        }
        #[cfg(not(feature = "otel"))]
        let _ = d;
    }

    /// Checkouts and returns: tallied per batch (one add per bucket touched
    /// instead of two per event), unless the OpenTelemetry histograms also
    /// take each event.
    fn on_events(&self, pool: &str, batch: EventBatch<'_>) {
        #[cfg(feature = "otel")]
        if self.0.otel.get().is_some() {
            return batch.iter().for_each(|e| self.on_event(pool, e));
        }
        let _ = pool;
        let (mut wait, mut used) = (Tally::default(), Tally::default());
        for (is_return, nanos) in batch.durations() {
            match is_return {
                true => used.record(nanos),
                false => wait.record(nanos),
            }
        }
        self.0.wait.add(&wait);
        self.0.use_.add(&used);
    }
}

/// Which of a pool's three histograms an event goes to (ours and the
/// OpenTelemetry ones alike).
#[derive(Clone, Copy)]
pub(crate) enum Which {
    Create,
    Wait,
    Use,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_duration_lands_in_one_bucket_and_the_last_is_inf() {
        let h = Histogram::default();
        for ms in [0, 1, 3, 20, 20_000] {
            h.record(Duration::from_millis(ms));
        }
        let d = h.read();
        assert_eq!(d.count, 5);
        assert!((d.sum - 20.024).abs() < 1e-9, "{}", d.sum);
        assert_eq!(d.buckets[0], (0.001, 2), "0 and 1 ms are ≤ 1 ms");
        assert_eq!(d.buckets[1], (0.005, 1));
        assert_eq!(d.buckets[2], (0.01, 0));
        assert_eq!(d.buckets[3], (0.05, 1));
        assert_eq!(*d.buckets.last().unwrap(), (f64::INFINITY, 1), "20 s");
    }

    #[test]
    fn a_tally_lands_where_record_does() {
        let (one, batched) = (Histogram::default(), Histogram::default());
        let mut tally = Tally::default();
        for ns in [0, 1_000_000, 1_000_001, 5_000_000, 10_000_000_001, 3] {
            one.record(Duration::from_nanos(ns));
            tally.record(ns);
        }
        batched.add(&tally);
        let (a, b) = (one.read(), batched.read());
        assert_eq!((a.count, a.buckets), (b.count, b.buckets));
        assert!((a.sum - b.sum).abs() < 1e-12);
        for (s, ns) in BOUNDS.iter().zip(BOUNDS_NS) {
            assert_eq!(Duration::from_secs_f64(*s).as_nanos(), u128::from(ns));
        }
    }
}
