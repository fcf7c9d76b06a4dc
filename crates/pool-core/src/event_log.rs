//! A connection's buffer of checkout and return events, so that an observer
//! is called once per batch on a busy pool instead of twice per get()+drop.
//!
//! The buffer lives in the connection's entry, which only the slot's holder
//! touches: filling it takes no lock and no atomic. A connection's events
//! alternate (a checkout, its return, the next checkout, …), so the buffer
//! holds their durations only: a checkout at an even index, its return after
//! it. A batch is handed over when it is full, and at the first event of a
//! new coarse-clock tick (1 ms while an observer is installed): a connection
//! used less than once a millisecond reports each event at once, a busy one
//! at most a tick late. What a connection buffered during its last tick of
//! use is handed over by its next use, the reaper's next pass,
//! [`flush_events`], its close (before its `Closed` event) or the pool's
//! drop, whichever comes first.
//!
//! [`flush_events`]: crate::ConnectionPool::flush_events

use std::time::Duration;

use crate::events::{Event, Observer};
use crate::stats::TimeTotals;

/// Events a connection buffers at most before they are handed over (even,
/// a power of two: indices wrap with a mask instead of a bounds check).
const BATCH: usize = 64;

/// Never handed over yet: the first event goes out at once.
const NEVER: u64 = u64::MAX;

/// Checkouts and returns as their durations in nanoseconds, in order: two
/// stores per get()+drop on the hot path, the [`Event`]s built only when
/// handed over.
pub(crate) struct EventLog {
    /// `nanos[2k]`: a checkout's wait, `nanos[2k + 1]`: its return's use
    /// time.
    nanos: [u64; BATCH],
    /// Events logged: the next checkout goes to `nanos[len]` (even).
    len: usize,
    /// 1 after a hand-over at a checkout: `nanos[0]` went out already, and
    /// the next batch begins with the return.
    start: usize,
    /// When the connection was handed out (coarse clock).
    held_since: u64,
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
            len: 0,
            start: 0,
            held_since: 0,
            used_sum: 0,
            used_max: 0,
            flushed_at: NEVER,
        }
    }

    /// Logs a checkout that waited `wait` nanoseconds, at coarse time
    /// `now`; `true`: hand it over now, with what came before
    /// ([`flush`](Self::flush)).
    #[inline]
    pub(crate) fn checked_out(&mut self, wait: u64, now: u64) -> bool {
        self.held_since = now;
        // `len` is even and below BATCH here (a full log goes out at the
        // return that filled it): the mask only spares the bounds check.
        self.nanos[self.len % BATCH] = wait;
        now != self.flushed_at
    }

    /// Logs the return of the checkout logged last, at coarse time `now`;
    /// `true`: hand the batch over now ([`flush`](Self::flush)).
    #[inline]
    pub(crate) fn checked_in(&mut self, now: u64) -> bool {
        let used = now.saturating_sub(self.held_since);
        self.used_sum = self.used_sum.wrapping_add(used);
        self.used_max = self.used_max.max(used);
        self.nanos[(self.len + 1) % BATCH] = used;
        self.len += 2;
        self.len >= BATCH || now != self.flushed_at
    }

    /// Hands what is buffered to `observer` in one call and empties the log;
    /// the returns' use times are counted in `used` (the slot's totals,
    /// which only the slot's holder writes). `at_checkout`: the checkout
    /// just logged goes too, and the next batch begins with its return;
    /// else the connection is not held, or was just returned.
    pub(crate) fn flush(
        &mut self,
        at_checkout: bool,
        observer: &dyn Observer,
        pool: &str,
        used: &TimeTotals,
        now: u64,
    ) {
        let end = self.len + usize::from(at_checkout);
        let start = std::mem::replace(&mut self.start, usize::from(at_checkout));
        self.flushed_at = now;
        self.len = 0;
        if end <= start {
            return;
        }
        let batch = EventBatch {
            nanos: &self.nanos[start..end],
            first_is_return: start == 1,
        };
        used.record_many_owned(
            batch.returns() as u64,
            std::mem::take(&mut self.used_sum),
            std::mem::take(&mut self.used_max),
        );
        observer.on_events(pool, batch);
    }

    /// Nothing to hand over (on a connection not held).
    pub(crate) fn is_empty(&self) -> bool {
        self.len <= self.start
    }
}

/// One connection's checkouts and returns, in order, as
/// [`Observer::on_events`] receives them: the events themselves
/// ([`iter`](Self::iter)), or what a counter needs without building them
/// ([`checkouts`](Self::checkouts), [`returns`](Self::returns)).
#[derive(Debug, Clone, Copy)]
pub struct EventBatch<'a> {
    /// Each event's duration (a checkout's wait, a return's use time); the
    /// kinds alternate.
    nanos: &'a [u64],
    /// The kind of the first.
    first_is_return: bool,
}

impl<'a> EventBatch<'a> {
    /// How many events (at most 64).
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// `true` if it holds none (the pool never hands over an empty batch).
    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    /// How many are returns ([`Event::CheckedIn`]).
    pub fn returns(&self) -> usize {
        (self.len() + usize::from(self.first_is_return)) / 2
    }

    /// How many are checkouts ([`Event::CheckedOut`]).
    pub fn checkouts(&self) -> usize {
        self.len() - self.returns()
    }

    /// Each event as `(is_return, nanoseconds)`, in order: a checkout's wait
    /// or a return's use time, without building the [`Event`]s (for an
    /// observer that only buckets durations).
    pub fn durations(&self) -> impl Iterator<Item = (bool, u64)> + 'a {
        // The kinds alternate: a flip per event instead of a test.
        let mut is_return = !self.first_is_return;
        self.nanos.iter().map(move |&nanos| {
            is_return = !is_return;
            (is_return, nanos)
        })
    }

    /// The events, in order: [`Event::CheckedOut`] and [`Event::CheckedIn`].
    pub fn iter(&self) -> impl Iterator<Item = Event> + 'a {
        self.durations().map(|(is_return, nanos)| {
            let d = Duration::from_nanos(nanos);
            if is_return {
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
        assert!(log.checked_out(7, 100), "never handed over: at once");
        log.flush(true, &seen, "p", &used, 100);
        assert!(!log.checked_in(100), "same tick: kept");
        let mut uses = 1;
        loop {
            assert!(!log.checked_out(uses, 100), "same tick: kept");
            if log.checked_in(100) {
                break;
            }
            uses += 1;
        }
        assert_eq!(
            2 * uses + 1,
            BATCH as u64 - 1,
            "same tick: only a full batch goes out (the first return with it)"
        );
        log.flush(false, &seen, "p", &used, 100);
        assert!(log.is_empty());
        assert!(!log.checked_out(3, 100));
        assert!(log.checked_in(104), "a new tick hands over what waited");
        log.flush(false, &seen, "p", &used, 104);
        assert!(log.is_empty());
        log.flush(false, &seen, "p", &used, 104);

        let ns = Duration::from_nanos;
        let t = used.read();
        assert_eq!(t.count, uses + 2, "every return's use time counted");
        assert_eq!((t.total, t.max), (ns(4), ns(4)));
        let seen = seen.0.into_inner().unwrap();
        assert_eq!(seen.len(), 3, "an empty log hands over nothing: {seen:?}");
        assert_eq!(seen[0], [Event::CheckedOut { wait: ns(7) }]);
        let pair = |wait, used| {
            [
                Event::CheckedOut { wait: ns(wait) },
                Event::CheckedIn { used: ns(used) },
            ]
        };
        let full: Vec<Event> = std::iter::once(Event::CheckedIn { used: ns(0) })
            .chain((1..=uses).flat_map(|i| pair(i, 0)))
            .collect();
        assert_eq!(seen[1], full, "in order, the first a return");
        assert_eq!(seen[2], pair(3, 4));
    }
}
