//! Fixed connection slots, the two atomic bitmaps that say who owns each one,
//! and the tokens that carry that ownership.
//!
//! Ownership protocol: a slot index is owned by exactly one party at a time.
//! - bit set in `idle`: the pool owns it; whoever clears the bit (`fetch_and`
//!   observing it set) becomes the owner and gets a [`Held`] token;
//! - bit set in `free`: the slot holds no connection; whoever clears the bit
//!   gets a [`Vacant`] token and may open a connection into it;
//! - neither bit: the holder of the token (a guard, an opening task, the reaper,
//!   a waiter being handed the connection) owns it, and only it touches the cell.
//!
//! The tokens are neither `Copy` nor `Clone` and are `#[must_use]`: putting a
//! slot back, filling it, emptying it and freeing it consume them, so "the
//! caller owns slot i" is checked by the compiler instead of restated at every
//! use, and a `Held` slot always holds an entry. Only this module creates
//! tokens (from the bitmaps, or from the index a waiter's state carries).
//!
//! Setting a bit is a release (`SeqCst` `fetch_or`), clearing one an acquire, so the
//! cell's contents travel with the ownership.

use crate::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};
use std::cell::UnsafeCell;
use std::ptr::NonNull;

use tokio::time::Instant;

use crate::event_log::EventLog;
use crate::padded::CachePadded;
use crate::stats::{TimeTotals, Timing};
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

/// Ownership of a slot that holds a connection. Consumed by
/// [`Slots::put_idle`], [`Slots::vacate`] or [`Held::into_raw`].
#[must_use = "a held slot must be put back, vacated or handed over"]
#[derive(Debug)]
pub(crate) struct Held(usize);

/// Ownership of a slot that holds no connection. Consumed by
/// [`Slots::fill`] or [`Slots::free`].
#[must_use = "a vacant slot must be filled or freed"]
#[derive(Debug)]
pub(crate) struct Vacant(usize);

impl Held {
    pub(crate) fn index(&self) -> usize {
        self.0
    }

    /// The index, to travel through a waiter's atomic state.
    pub(crate) fn into_raw(self) -> usize {
        self.0
    }

    /// The token again, from the index [`Held::into_raw`] gave.
    ///
    /// # Safety
    /// `idx` came from `into_raw` of a token of this pool, and no other token
    /// for it was made since.
    pub(crate) unsafe fn from_raw(idx: usize) -> Self {
        Held(idx)
    }
}

/// A pooled connection with its timestamps.
pub(crate) struct Entry<C> {
    pub(crate) conn: C,
    pub(crate) created: Instant,
    /// When the connection is retired (created + jittered `max_lifetime`), on
    /// the pool's clock (`clock.rs`); `u64::MAX`: never.
    pub(crate) expires: u64,
    /// Last return to the pool (or creation), coarse clock.
    pub(crate) last_used: u64,
    /// Last successful `check` (checkout or keepalive), or creation, coarse clock.
    pub(crate) last_checked: u64,
    /// Never handed out yet: no reset needed, and `reused` does not count it.
    pub(crate) fresh: bool,
    /// The pool's generation when its connect began (`evict_all`).
    pub(crate) generation: u64,
    /// Its checkouts and returns not yet handed to the observer.
    pub(crate) log: EventLog,
}

/// Per-slot storage plus what the reaper and eviction read without owning the slot.
pub(crate) struct Slot<C> {
    /// `Some` exactly while a `Held` token or the `idle` bit stands for it.
    entry: UnsafeCell<Option<Entry<C>>>,
    /// When the connection was last used, as a keyed pool's sequence number;
    /// read by eviction to find the oldest idle connection without taking it.
    pub(crate) idle_order: AtomicU64,
    /// Leak tracking, only written when `leak_threshold` is set: nanoseconds since
    /// the epoch of the checkout (0 = not held), and the caller's location.
    pub(crate) held_since: AtomicU64,
    pub(crate) site: AtomicPtr<std::panic::Location<'static>>,
    /// Checkouts of the connection in this slot. Written only by the slot's
    /// owner (a load and a store, no read-modify-write: the bitmaps' SeqCst
    /// hand-over orders successive owners), read by stats.
    handouts: AtomicU64,
    /// How long the connection in this slot was held, per checkout (only
    /// with an observer installed); written only by the slot's owner.
    pub(crate) used: TimeTotals,
}

/// The slots of one pool and the bitmaps that hand them out.
pub(crate) struct Slots<C> {
    /// Each slot on its own cache lines: two cores returning connections to
    /// neighbouring slots must not write to the same line.
    slots: Box<[CachePadded<Slot<C>>]>,
    /// Slots holding an idle connection: the lock-free fast path.
    idle: Bitmap,
    /// Slots holding no connection.
    free: Bitmap,
    /// Checkouts counted by slots since emptied (`vacate`).
    retired_handouts: AtomicU64,
    /// Use times of slots since emptied.
    retired_used: TimeTotals,
}

// SAFETY: a cell is only touched by the holder of its token (module docs);
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
                    idle_order: AtomicU64::new(0),
                    held_since: AtomicU64::new(0),
                    site: AtomicPtr::new(std::ptr::null_mut()),
                    handouts: AtomicU64::new(0),
                    used: TimeTotals::default(),
                })
            })
            .collect();
        Slots {
            slots,
            idle: Bitmap::new(len, false),
            free: Bitmap::new(len, true),
            retired_handouts: AtomicU64::new(0),
            retired_used: TimeTotals::default(),
        }
    }

    pub(crate) fn meta(&self, i: usize) -> &Slot<C> {
        &self.slots[i]
    }

    // ----- idle slots ------------------------------------------------------------

    /// The lowest idle slot (LIFO: hot connections stay hot).
    #[inline]
    pub(crate) fn take_idle_lowest(&self) -> Option<Held> {
        self.idle.take_lowest().map(Held)
    }

    /// The first idle slot at or after `start`, wrapping (FIFO-like rotation).
    pub(crate) fn take_idle_from(&self, start: usize) -> Option<Held> {
        self.idle.take_from(start).map(Held)
    }

    /// Slot `i` if it is idle now.
    #[inline]
    pub(crate) fn try_take_idle(&self, i: usize) -> Option<Held> {
        self.idle.try_take(i).then_some(Held(i))
    }

    /// Gives a held slot back to the idle set, for whoever takes it next.
    #[inline]
    pub(crate) fn put_idle(&self, slot: Held) {
        self.idle.set(slot.0);
    }

    pub(crate) fn any_idle(&self) -> bool {
        self.idle.any()
    }

    pub(crate) fn idle_count(&self) -> usize {
        self.idle.count()
    }

    /// The idle slots at this instant (for the reaper and eviction).
    pub(crate) fn idle_snapshot(&self) -> Vec<usize> {
        self.idle.snapshot()
    }

    // ----- the entry of a held slot ----------------------------------------------

    /// The entry of a held slot, where it stays while checked out: a guard works
    /// on it in place instead of moving it out and back (two copies of the
    /// whole entry per checkout, measurable for a PostgreSQL client). The
    /// pointer is valid while `slot` is held; the `Slots` never move.
    #[inline]
    pub(crate) fn entry_ptr(&self, slot: &mut Held) -> NonNull<Entry<C>> {
        // SAFETY: the token owns the cell (module docs); `&mut Held` makes this
        // the only access through it.
        let cell = unsafe { &mut *self.slots[slot.0].entry.get() };
        NonNull::from(cell.as_mut().expect("a held slot holds its entry"))
    }

    /// The entry of a held slot.
    #[inline]
    pub(crate) fn entry_mut<'a>(&'a self, slot: &'a mut Held) -> &'a mut Entry<C> {
        // SAFETY: the pointer is valid while `slot` is held, and the returned
        // borrow is tied to `&mut slot`, the only access to the cell.
        unsafe { &mut *self.entry_ptr(slot).as_ptr() }
    }

    // ----- filling and emptying ----------------------------------------------------

    /// A slot with no connection, to open one into.
    pub(crate) fn take_vacant(&self) -> Option<Vacant> {
        self.free.take_lowest().map(Vacant)
    }

    /// Stores an entry in a vacant slot, which is then held.
    #[inline]
    pub(crate) fn fill(&self, slot: Vacant, entry: Entry<C>) -> Held {
        // SAFETY: the token owns the cell (module docs).
        unsafe { *self.slots[slot.0].entry.get() = Some(entry) };
        Held(slot.0)
    }

    /// Counts a checkout of a held slot: the fast path's only counter, and no
    /// atomic read-modify-write, since only the holder writes it.
    #[inline]
    pub(crate) fn count_handout(&self, slot: &Held) {
        let n = &self.slots[slot.0].handouts;
        n.store(n.load(Relaxed) + 1, Relaxed);
    }

    /// Checkouts of every slot so far (a snapshot: may miss one in flight).
    pub(crate) fn handouts(&self) -> u64 {
        let live: u64 = self.slots.iter().map(|s| s.handouts.load(Relaxed)).sum();
        live + self.retired_handouts.load(Relaxed)
    }

    /// Use times of every slot so far.
    pub(crate) fn use_time(&self) -> Timing {
        let mut t = self.retired_used.read();
        for s in self.slots.iter() {
            t.merge(&s.used.read());
        }
        t
    }

    /// Takes the entry out of a held slot, which is then vacant.
    #[inline]
    pub(crate) fn vacate(&self, slot: Held) -> (Entry<C>, Vacant) {
        let counted = self.slots[slot.0].handouts.swap(0, Relaxed);
        self.retired_handouts.fetch_add(counted, Relaxed);
        self.slots[slot.0].used.drain_into(&self.retired_used);
        // SAFETY: the token owns the cell (module docs).
        let entry = unsafe { (*self.slots[slot.0].entry.get()).take() };
        (entry.expect("a held slot holds its entry"), Vacant(slot.0))
    }

    /// Marks a vacant slot free for the next connect.
    pub(crate) fn free(&self, slot: Vacant) {
        self.free.set(slot.0);
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
