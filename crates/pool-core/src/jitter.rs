//! Randomness for jitter: retry backoff and lifetime spread. One generator,
//! used by the engine and by every protocol crate's retries.

use std::cell::Cell;
use std::time::Duration;

/// Exponential backoff with full jitter: uniform in `[0, min(cap, base·2^attempt))`.
/// Full jitter keeps a fleet of clients that lost the same server from
/// retrying in lock-step.
///
/// ```
/// use std::time::Duration;
/// let d = pool_core::util::backoff(Duration::from_millis(100), 3, Duration::from_secs(10));
/// assert!(d < Duration::from_millis(800));
/// ```
pub fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    base.saturating_mul(1u32 << attempt.min(20))
        .min(cap)
        .mul_f64(unit_random())
}

/// A uniform number in `[0, 1)` from a per-thread xorshift generator (good
/// enough for jitter, not for anything secret).
pub fn unit_random() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// A per-thread seed: the clock, mixed with the thread's stack address so two
/// threads started in the same nanosecond still differ.
fn seed() -> u64 {
    let local = 0u8;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
    (t ^ (std::ptr::addr_of!(local) as u64).rotate_left(32)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_cap_and_spreads() {
        let cap = Duration::from_millis(250);
        let draws: Vec<_> = (0..200)
            .map(|_| backoff(Duration::from_millis(100), 5, cap))
            .collect();
        assert!(draws.iter().all(|d| *d < cap));
        let low = draws.iter().filter(|d| **d < cap / 2).count();
        assert!((40..160).contains(&low), "{low} of 200 below half the cap");
    }
}
