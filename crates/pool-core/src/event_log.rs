//! A connection's buffer of checkout and return events, so that an observer
//! is called once per batch on a busy pool instead of twice per get()+drop.
//!
//! The buffer lives in the connection's entry, which only the slot's holder
//! touches: filling it takes no lock and no atomic. A batch is handed over
//! when it is full, and at the first event of a new coarse-clock tick (1 ms
//! while an observer is installed): a connection used less than once a
//! millisecond reports each event at once, a busy one at most a tick late.
//! What a connection buffered during its last tick of use is handed over by
//! its next use, the reaper's next pass, [`flush_events`], its close
//! (before its `Closed` event) or the pool's drop, whichever comes first.
//!
//! [`flush_events`]: crate::ConnectionPool::flush_events

use std::time::Duration;

use crate::events::{Event, Observer};
use crate::stats::TimeTotals;

/// Events a connection buffers at most before they are handed over.
const BATCH: usize = 16;

/// Never handed over yet: the first event goes out at once.
const NEVER: u64 = u64::MAX;

/// Checkouts and returns as their durations in nanoseconds, a bit per
/// event telling which: two stores per event on the hot path, the
/// [`Event`]s built only when handed over.
pub(crate) struct EventLog {
    nanos: [u64; BATCH],
    /// Bit `i`: event `i` is a return (else a checkout).
    returns: u32,
    len: usize,
    /// The logged returns' use times: sum and longest.
    used_sum: u64,
    used_max: u64,
    /// Coarse time of the last hand-over, or [`NEVER`].
    flushed_at: u64,
}

impl EventLog {
    pub(crate) fn new() -> Self {
        EventLog {
            nanos: [0; BATCH],
            returns: 0,
            len: 0,
            used_sum: 0,
            used_max: 0,
            flushed_at: NEVER,
        }
    }

    /// Logs a checkout that waited `wait` nanoseconds, at coarse time
    /// `now`; `true`: hand the batch over now ([`flush`](Self::flush)).
    #[inline]
    pub(crate) fn checked_out(&mut self, wait: u64, now: u64) -> bool {
        self.push(wait, false, now)
    }

    /// Logs a return of a connection held `used` nanoseconds, as
    /// [`checked_out`](Self::checked_out).
    #[inline]
    pub(crate) fn checked_in(&mut self, used: u64, now: u64) -> bool {
        self.used_sum = self.used_sum.wrapping_add(used);
        self.used_max = self.used_max.max(used);
        self.push(used, true, now)
    }

    /// `true` when the batch is full or the last hand-over was in an earlier
    /// tick.
    #[inline]
    fn push(&mut self, nanos: u64, is_return: bool, now: u64) -> bool {
        // Never full here: a full log is handed over before the next push.
        if let Some(slot) = self.nanos.get_mut(self.len) {
            *slot = nanos;
            self.returns |= u32::from(is_return) << self.len;
            self.len += 1;
        }
        self.len == BATCH || now != self.flushed_at
    }

    /// Hands what is buffered to `observer` in one call and empties the log;
    /// the returns' use times are counted in `used` (the slot's totals,
    /// which only the slot's holder writes).
    pub(crate) fn flush(
        &mut self,
        observer: &dyn Observer,
        pool: &str,
        used: &TimeTotals,
        now: u64,
    ) {
        let n = std::mem::take(&mut self.len);
        let returns = std::mem::take(&mut self.returns);
        self.flushed_at = now;
        if n == 0 {
            return;
        }
        used.record_many_owned(
            u64::from(returns.count_ones()),
            std::mem::take(&mut self.used_sum),
            std::mem::take(&mut self.used_max),
        );
        let nanos = &self.nanos[..n];
        observer.on_events(pool, EventBatch { nanos, returns });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One connection's checkouts and returns, in order, as
/// [`Observer::on_events`] receives them: the events themselves
/// ([`iter`](Self::iter)), or what a counter needs without building them
/// ([`checkouts`](Self::checkouts), [`returns`](Self::returns)).
#[derive(Debug, Clone, Copy)]
pub struct EventBatch<'a> {
    /// Each event's duration (a checkout's wait, a return's use time).
    nanos: &'a [u64],
    /// Bit `i`: event `i` is a return.
    returns: u32,
}

impl<'a> EventBatch<'a> {
    /// How many events (at most 16).
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// `true` if it holds none (the pool never hands over an empty batch).
    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    /// How many are returns ([`Event::CheckedIn`]).
    pub fn returns(&self) -> usize {
        self.returns.count_ones() as usize
    }

    /// How many are checkouts ([`Event::CheckedOut`]).
    pub fn checkouts(&self) -> usize {
        self.len() - self.returns()
    }

    /// Each event as `(is_return, nanoseconds)`, in order: a checkout's wait
    /// or a return's use time, without building the [`Event`]s (for an
    /// observer that only buckets durations).
    pub fn durations(&self) -> impl Iterator<Item = (bool, u64)> + 'a {
        let returns = self.returns;
        self.nanos
            .iter()
            .enumerate()
            .map(move |(i, &nanos)| (returns & (1 << i) != 0, nanos))
    }

    /// The events, in order: [`Event::CheckedOut`] and [`Event::CheckedIn`].
    pub fn iter(&self) -> impl Iterator<Item = Event> + 'a {
        let returns = self.returns;
        self.nanos.iter().enumerate().map(move |(i, &nanos)| {
            let d = Duration::from_nanos(nanos);
            if returns & (1 << i) != 0 {
                Event::CheckedIn { used: d }
            } else {
                Event::CheckedOut { wait: d }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Batches(Mutex<Vec<Vec<Event>>>);

    impl Observer for Batches {
        fn on_event(&self, _pool: &str, _event: Event) {
            unreachable!("the log hands over batches");
        }
        fn on_events(&self, _pool: &str, batch: EventBatch<'_>) {
            assert_eq!(batch.checkouts() + batch.returns(), batch.len());
            let from_durations: Vec<Event> = batch
                .durations()
                .map(|(r, n)| match r {
                    true => Event::CheckedIn {
                        used: Duration::from_nanos(n),
                    },
                    false => Event::CheckedOut {
                        wait: Duration::from_nanos(n),
                    },
                })
                .collect();
            assert_eq!(from_durations, batch.iter().collect::<Vec<_>>());
            self.0.lock().unwrap().push(batch.iter().collect());
        }
    }

    #[test]
    fn the_first_event_of_a_tick_goes_out_at_once_the_rest_when_full() {
        let seen = Batches::default();
        let used = TimeTotals::default();
        let mut log = EventLog::new();
        assert!(log.checked_out(7, 5), "never handed over: at once");
        log.flush(&seen, "p", &used, 5);
        let mut pushes = 0;
        while !log.checked_in(pushes, 5) {
            pushes += 1;
        }
        assert_eq!(
            pushes + 1,
            BATCH as u64,
            "same tick: only a full batch goes out"
        );
        log.flush(&seen, "p", &used, 5);
        assert!(!log.checked_out(1, 5));
        assert!(log.checked_in(2, 6), "a new tick hands over what waited");
        log.flush(&seen, "p", &used, 6);
        assert!(log.is_empty());
        log.flush(&seen, "p", &used, 6);

        let ns = Duration::from_nanos;
        let t = used.read();
        assert_eq!(t.count, BATCH as u64 + 1, "every return's use time counted");
        assert_eq!(
            (t.total, t.max),
            (ns((0..BATCH as u64).sum::<u64>() + 2), ns(15))
        );
        let seen = seen.0.into_inner().unwrap();
        assert_eq!(seen.len(), 3, "an empty log hands over nothing: {seen:?}");
        assert_eq!(seen[0], [Event::CheckedOut { wait: ns(7) }]);
        let full: Vec<Event> = (0..BATCH as u64)
            .map(|i| Event::CheckedIn { used: ns(i) })
            .collect();
        assert_eq!(seen[1], full);
        assert_eq!(
            seen[2],
            [
                Event::CheckedOut { wait: ns(1) },
                Event::CheckedIn { used: ns(2) }
            ],
            "in order, each of its kind"
        );
    }
}
