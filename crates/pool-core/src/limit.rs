//! The total limit shared by the sub-pools of a `KeyedPool`.
//!
//! Each sub-pool reserves from its own `max_size` (the per-key limit) and then from
//! this total. When the total is reached, the oldest idle connection of another
//! key is closed to make room (as commons-pool2's keyed pool does); when no key has
//! an idle connection, the sub-pool is remembered as starved and is told when
//! capacity frees up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, Weak};

use crate::lock::lock;

/// What the total limit needs from a sub-pool, whatever its manager type.
pub(crate) trait Capacity: Send + Sync {
    /// Capacity freed up: start connects for waiters. Returns whether one was
    /// started (`false`: nobody there needs it, offer it to the next pool).
    fn on_capacity(&self) -> bool;
    /// `(idle_order, slot)` of this pool's connection idle longest.
    fn oldest_idle(&self) -> Option<(u64, usize)>;
    /// Closes the idle connection in `slot` if it is still idle.
    fn evict(&self, slot: usize) -> bool;
}

pub(crate) struct TotalLimit {
    max: AtomicUsize,
    used: AtomicUsize,
    /// Every sub-pool, for eviction.
    pools: Mutex<Vec<Weak<dyn Capacity>>>,
    /// Sub-pools that found the total full and have waiters.
    starved: Mutex<VecDeque<Weak<dyn Capacity>>>,
    starved_count: AtomicUsize,
    /// Hands out the sub-pools' use order (`TotalLimit::stamp`).
    uses: AtomicU64,
}

impl TotalLimit {
    pub(crate) fn new(max: usize) -> Self {
        TotalLimit {
            max: AtomicUsize::new(max),
            used: AtomicUsize::new(0),
            pools: Mutex::new(Vec::new()),
            starved: Mutex::new(VecDeque::new()),
            starved_count: AtomicUsize::new(0),
            uses: AtomicU64::new(0),
        }
    }

    pub(crate) fn register(&self, pool: Weak<dyn Capacity>) {
        let mut pools = lock(&self.pools);
        pools.retain(|p| p.strong_count() > 0);
        pools.push(pool);
    }

    /// The next number of the use order across every sub-pool.
    pub(crate) fn stamp(&self) -> u64 {
        self.uses.fetch_add(1, Relaxed)
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(SeqCst)
    }

    pub(crate) fn max(&self) -> usize {
        self.max.load(SeqCst)
    }

    /// More units are in use than the limit allows (it was lowered).
    pub(crate) fn is_over(&self) -> bool {
        self.used() > self.max()
    }

    /// Sets the limit: raising it offers the room to the starved sub-pools;
    /// lowering it closes idle connections, oldest first, until the total
    /// fits (the rest close as they come back).
    pub(crate) fn set_max(&self, n: usize) {
        let before = self.max.swap(n, SeqCst);
        if n > before {
            self.offer_room();
        } else {
            let none: Weak<dyn Capacity> = Weak::<Never>::new();
            while self.is_over() && self.evict_oldest_idle(&none) {}
        }
    }

    pub(crate) fn has_starved(&self) -> bool {
        self.starved_count.load(SeqCst) != 0
    }

    fn try_take(&self) -> bool {
        let mut u = self.used.load(SeqCst);
        loop {
            if u >= self.max() {
                return false;
            }
            match self.used.compare_exchange_weak(u, u + 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => u = now,
            }
        }
    }

    /// Takes one unit for `me`, evicting another key's oldest idle connection if
    /// the total is full. When nothing can be evicted, `me` is told later through
    /// `on_capacity`.
    pub(crate) fn try_acquire(&self, me: &Weak<dyn Capacity>) -> bool {
        if self.try_take() {
            return true;
        }
        if self.evict_oldest_idle(me) && self.try_take() {
            return true;
        }
        {
            let mut starved = lock(&self.starved);
            if !starved.iter().any(|p| Weak::ptr_eq(p, me)) {
                starved.push_back(me.clone());
                self.starved_count.store(starved.len(), SeqCst);
            }
        }
        // A release between our failed take and the push above found nobody
        // starved; look once more so that it is not lost.
        self.try_take()
    }

    fn evict_oldest_idle(&self, me: &Weak<dyn Capacity>) -> bool {
        let pools: Vec<_> = lock(&self.pools)
            .iter()
            .filter(|p| !Weak::ptr_eq(p, me))
            .filter_map(Weak::upgrade)
            .collect();
        let mut candidates: Vec<_> = pools
            .iter()
            .filter_map(|p| p.oldest_idle().map(|(since, slot)| (since, slot, p)))
            .collect();
        candidates.sort_by_key(|(since, _, _)| *since);
        candidates
            .into_iter()
            .any(|(_, slot, pool)| pool.evict(slot))
    }

    /// Gives one unit back and offers it to the longest-starved sub-pool, then
    /// to the next one, until one starts a connect with it or the total is full
    /// again. A sub-pool stays on the list after its waiter was cancelled, timed
    /// out or served by a return of its own; offering the room to that pool
    /// alone would leave it unused while another key waits (issue 16).
    pub(crate) fn release(&self) {
        self.used.fetch_sub(1, SeqCst);
        self.offer_room();
    }

    /// Offers free room to the starved sub-pools, longest-starved first.
    fn offer_room(&self) {
        while self.has_starved() && self.used() < self.max() {
            let next = {
                let mut starved = lock(&self.starved);
                let next = starved.pop_front();
                self.starved_count.store(starved.len(), SeqCst);
                next
            };
            let Some(next) = next else { return };
            if next.upgrade().is_some_and(|pool| pool.on_capacity()) {
                return;
            }
        }
    }
}

/// A `Capacity` that is never alive: the `me` of an eviction on no pool's
/// behalf (`set_max`).
struct Never;

impl Capacity for Never {
    fn on_capacity(&self) -> bool {
        false
    }
    fn oldest_idle(&self) -> Option<(u64, usize)> {
        None
    }
    fn evict(&self, _: usize) -> bool {
        false
    }
}
