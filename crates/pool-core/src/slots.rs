//! Fixed connection slots and the two atomic bitmaps that say who owns each one.
//!
//! Ownership protocol (the safety argument of every `unsafe` block in the engine):
//! a slot index is owned by exactly one party at a time.
//! - bit set in `idle`: the pool owns it; whoever clears the bit (`fetch_and`
//!   observing it set) becomes the owner;
//! - bit set in `free`: the slot holds no connection; whoever clears the bit may
//!   open a connection into it;
//! - neither bit: a guard, an opening task, the reaper or a waiter being handed
//!   the connection owns it, and only the owner touches the cell.
//!
//! Setting a bit is a release (`SeqCst` `fetch_or`), clearing one an acquire, so the
//! cell's contents travel with the ownership.

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};

use tokio::time::Instant;

use crate::padded::CachePadded;

/// One bit per slot, in 64-bit words, each word on its own cache line.
pub(crate) struct Bitmap {
    words: Box<[CachePadded<AtomicU64>]>,
    len: usize,
}

impl Bitmap {
    pub(crate) fn new(len: usize, all_set: bool) -> Self {
        let n = len.div_ceil(64);
        let words = (0..n)
            .map(|w| {
                let bits = if !all_set {
                    0
                } else if (w + 1) * 64 <= len {
                    u64::MAX
                } else {
                    (1u64 << (len - w * 64)) - 1
                };
                CachePadded(AtomicU64::new(bits))
            })
            .collect();
        Bitmap { words, len }
    }

    /// Takes the lowest set bit, if any; the caller then owns that index.
    #[inline]
    pub(crate) fn take_lowest(&self) -> Option<usize> {
        for (w, word) in self.words.iter().enumerate() {
            let mut v = word.load(Relaxed);
            while v != 0 {
                let bit = v.trailing_zeros() as usize;
                let mask = 1u64 << bit;
                let prev = word.fetch_and(!mask, SeqCst);
                if prev & mask != 0 {
                    return Some(w * 64 + bit);
                }
                v = prev & !mask;
            }
        }
        None
    }

    /// Takes the first set bit at or after `start` (wrapping), for round-robin use.
    pub(crate) fn take_from(&self, start: usize) -> Option<usize> {
        let start = start % self.len;
        (start..self.len)
            .chain(0..start)
            .find(|&i| self.try_take(i))
    }

    /// Takes bit `i` if it is set.
    #[inline]
    pub(crate) fn try_take(&self, i: usize) -> bool {
        let mask = 1u64 << (i % 64);
        let word = &self.words[i / 64];
        word.load(Relaxed) & mask != 0 && word.fetch_and(!mask, SeqCst) & mask != 0
    }

    /// Sets bit `i`, handing that index to whoever takes it next.
    #[inline]
    pub(crate) fn set(&self, i: usize) {
        self.words[i / 64].fetch_or(1u64 << (i % 64), SeqCst);
    }

    pub(crate) fn is_set(&self, i: usize) -> bool {
        self.words[i / 64].load(SeqCst) & (1u64 << (i % 64)) != 0
    }

    pub(crate) fn count(&self) -> usize {
        self.words
            .iter()
            .map(|w| w.load(Relaxed).count_ones() as usize)
            .sum()
    }

    pub(crate) fn any(&self) -> bool {
        self.words.iter().any(|w| w.load(SeqCst) != 0)
    }

    /// Indices set at this instant (a snapshot for the reaper).
    pub(crate) fn snapshot(&self) -> Vec<usize> {
        (0..self.len).filter(|&i| self.is_set(i)).collect()
    }
}

/// A pooled connection with its timestamps.
pub(crate) struct Entry<C> {
    pub(crate) conn: C,
    pub(crate) created: Instant,
    /// When the connection is retired (created + jittered `max_lifetime`).
    pub(crate) expires: Option<Instant>,
    /// Last return to the pool (or creation).
    pub(crate) last_used: Instant,
    /// Last successful `check` (checkout or keepalive), or creation.
    pub(crate) last_checked: Instant,
    /// Never handed out yet: no reset needed, and `reused` does not count it.
    pub(crate) fresh: bool,
}

/// Per-slot storage plus what the reaper and eviction read without owning the slot.
pub(crate) struct Slot<C> {
    entry: UnsafeCell<Option<Entry<C>>>,
    /// Nanoseconds since the pool's epoch when the slot last went idle; read by
    /// keyed-pool eviction to find the oldest idle connection without taking it.
    pub(crate) idle_since: AtomicU64,
    /// Leak tracking, only written when `leak_threshold` is set: nanoseconds since
    /// the epoch of the checkout (0 = not held), and the caller's location.
    pub(crate) held_since: AtomicU64,
    pub(crate) site: AtomicPtr<std::panic::Location<'static>>,
}

pub(crate) struct Slots<C> {
    /// Each slot on its own cache lines: two cores returning connections to
    /// neighbouring slots must not write to the same line.
    slots: Box<[CachePadded<Slot<C>>]>,
}

// SAFETY: a cell is only touched by the single owner of its index (module docs);
// ownership moves through SeqCst bitmap operations or a waiter's atomic state, which
// order the accesses. `C: Send` is enough because a connection is used by one
// owner at a time, never shared.
unsafe impl<C: Send> Sync for Slots<C> {}

impl<C> Slots<C> {
    pub(crate) fn new(len: usize) -> Self {
        let slots = (0..len)
            .map(|_| {
                CachePadded(Slot {
                    entry: UnsafeCell::new(None),
                    idle_since: AtomicU64::new(0),
                    held_since: AtomicU64::new(0),
                    site: AtomicPtr::new(std::ptr::null_mut()),
                })
            })
            .collect();
        Slots { slots }
    }

    pub(crate) fn meta(&self, i: usize) -> &Slot<C> {
        &self.slots[i]
    }

    /// Stores an entry in slot `i`.
    ///
    /// # Safety
    /// The caller owns index `i` (see the module docs).
    #[inline]
    pub(crate) unsafe fn put(&self, i: usize, entry: Entry<C>) {
        // SAFETY: the caller owns index `i`, so nobody else reads or writes the cell.
        unsafe { *self.slots[i].entry.get() = Some(entry) }
    }

    /// The entry in slot `i`, where it stays while checked out: a guard works on
    /// it in place instead of moving it out and back (two copies of the whole
    /// entry per checkout, measurable for a PostgreSQL client).
    ///
    /// # Safety
    /// The caller owns index `i` (see the module docs). The pointer is valid
    /// until the entry is taken or the slot handed on; the `Slots` never move.
    #[inline]
    pub(crate) unsafe fn entry_ptr(&self, i: usize) -> Option<NonNull<Entry<C>>> {
        // SAFETY: the caller owns index `i`, so nobody else reads or writes the cell.
        unsafe { (*self.slots[i].entry.get()).as_mut().map(NonNull::from) }
    }

    /// Takes the entry out of slot `i`.
    ///
    /// # Safety
    /// The caller owns index `i` (see the module docs).
    #[inline]
    pub(crate) unsafe fn take(&self, i: usize) -> Option<Entry<C>> {
        // SAFETY: the caller owns index `i`, so nobody else reads or writes the cell.
        unsafe { (*self.slots[i].entry.get()).take() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_takes_lowest_and_respects_length() {
        let b = Bitmap::new(70, true);
        assert_eq!(b.count(), 70);
        assert_eq!(b.take_lowest(), Some(0));
        assert_eq!(b.take_lowest(), Some(1));
        b.set(0);
        assert_eq!(b.take_lowest(), Some(0));
        for _ in 0..68 {
            assert!(b.take_lowest().is_some());
        }
        assert_eq!(b.take_lowest(), None);
        b.set(69);
        assert_eq!(b.take_from(10), Some(69));
        assert!(!b.any());
    }
}
