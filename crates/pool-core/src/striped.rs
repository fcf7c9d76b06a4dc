//! `StripedCounter`: a counter for hot paths that many cores bump at once.
//!
//! One shared atomic makes every increment a locked read-modify-write on a
//! line the cores pass around. Here each thread owns a stripe (its own cache
//! line) while it lives, so an increment is a plain load and store on a line
//! nobody else writes. A thread claims a stripe index on its first increment
//! and gives it back when it exits (through a mutex, which orders the last
//! owner's writes before the next owner's reads); threads beyond the stripes
//! share one atomic instead.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::lock::lock;
use crate::padded::CachePadded;

/// Stripes per counter: threads that may own one at a time.
const STRIPES: usize = 16;
/// Not yet claimed.
const UNCLAIMED: usize = usize::MAX;
/// No stripe was free: use the shared one.
const SHARED: usize = STRIPES;

/// Stripe indices of exited threads, for the next threads.
static RETURNED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// The next never-claimed index.
static NEXT: Mutex<usize> = Mutex::new(0);

/// This thread's stripe; gives it back when the thread exits.
struct Claim(Cell<usize>);

impl Drop for Claim {
    fn drop(&mut self) {
        let i = self.0.get();
        if i < STRIPES {
            lock(&RETURNED).push(i);
        }
    }
}

thread_local! {
    static CLAIM: Claim = const { Claim(Cell::new(UNCLAIMED)) };
}

fn claim() -> usize {
    if let Some(i) = lock(&RETURNED).pop() {
        return i;
    }
    let mut next = lock(&NEXT);
    if *next < STRIPES {
        *next += 1;
        *next - 1
    } else {
        SHARED
    }
}

/// This thread's stripe, or [`SHARED`] (also while the thread is exiting).
#[inline]
fn stripe() -> usize {
    CLAIM
        .try_with(|c| {
            let i = c.0.get();
            if i != UNCLAIMED {
                return i;
            }
            let i = claim();
            c.0.set(i);
            i
        })
        .unwrap_or(SHARED)
}

/// A counter bumped on the hot path by many threads: each thread increments
/// a stripe of its own (a load and a store, no locked instruction, no line
/// shared with another core); reading sums the stripes (2 KiB per counter;
/// meant for a handful of counters per pool or observer).
///
/// ```
/// let requests = pool_core::util::StripedCounter::new();
/// requests.incr();
/// assert_eq!(requests.get(), 1);
/// ```
pub struct StripedCounter {
    /// `STRIPES` owned stripes and the shared one.
    stripes: [CachePadded<AtomicU64>; STRIPES + 1],
}

impl Default for StripedCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StripedCounter").field(&self.get()).finish()
    }
}

impl StripedCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        StripedCounter {
            stripes: Default::default(),
        }
    }

    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// Adds `v` (wrapping).
    #[inline]
    pub fn add(&self, v: u64) {
        let i = stripe();
        let s = &self.stripes[i];
        if i < STRIPES {
            // Only this thread writes stripe `i` while it owns it.
            s.store(s.load(Relaxed).wrapping_add(v), Relaxed);
        } else {
            s.fetch_add(v, Relaxed);
        }
    }

    /// The sum over all stripes (a relaxed read: exact once writers are quiet).
    pub fn get(&self) -> u64 {
        self.stripes.iter().map(|s| s.load(Relaxed)).sum()
    }
}

/// `N` counters bumped together on a hot path (a histogram's buckets and
/// its sum), striped like [`StripedCounter`]: each thread adds to a row of
/// its own (loads and stores on one cache line nobody else writes), reads
/// sum the rows. One row is 8 × `N` bytes rounded up to 128; there are 17.
///
/// ```
/// let buckets = pool_core::util::StripedCounters::<3>::new();
/// buckets.add(1, 5);
/// buckets.add(1, 2);
/// assert_eq!(buckets.get(1), 7);
/// ```
pub struct StripedCounters<const N: usize> {
    /// `STRIPES` owned rows and the shared one.
    rows: Box<[CachePadded<[AtomicU64; N]>]>,
}

impl<const N: usize> Default for StripedCounters<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Debug for StripedCounters<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries((0..N).map(|i| self.get(i))).finish()
    }
}

impl<const N: usize> StripedCounters<N> {
    /// `N` counters at zero.
    pub fn new() -> Self {
        StripedCounters {
            rows: (0..=STRIPES)
                .map(|_| CachePadded(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// Adds `v` to counter `i` (panics if `i >= N`).
    #[inline]
    pub fn add(&self, i: usize, v: u64) {
        let s = stripe();
        let c = &self.rows[s][i];
        if s < STRIPES {
            // Only this thread writes row `s` while it owns it.
            c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
        } else {
            c.fetch_add(v, Relaxed);
        }
    }

    /// Counter `i` summed over the rows (relaxed: exact once writers are quiet).
    pub fn get(&self, i: usize) -> u64 {
        self.rows
            .iter()
            .map(|r| r[i].load(Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_more_threads_than_stripes_and_after_threads_exit() {
        let c = std::sync::Arc::new(StripedCounter::new());
        for _round in 0..3 {
            let threads: Vec<_> = (0..STRIPES + 4)
                .map(|_| {
                    let c = c.clone();
                    std::thread::spawn(move || {
                        for _ in 0..1000 {
                            c.incr();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
        assert_eq!(c.get(), 3 * (STRIPES as u64 + 4) * 1000);
    }

    #[test]
    fn striped_counters_add_up_over_threads() {
        let c = std::sync::Arc::new(StripedCounters::<2>::new());
        let threads: Vec<_> = (0..STRIPES + 4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(0, 1);
                        c.add(1, 3);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = (STRIPES as u64 + 4) * 1000;
        assert_eq!((c.get(0), c.get(1)), (n, 3 * n));
    }
}
