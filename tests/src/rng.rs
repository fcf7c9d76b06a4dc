//! The random deadlines of the cancellation storms: xorshift64*, seeded from
//! the clock; the seed is printed so that a failing storm can be replayed with
//! `UNIPOOL_STORM_SEED`.

use std::time::Duration;

/// A small, reproducible generator of deadlines; a clone replays the same
/// sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `UNIPOOL_STORM_SEED` when set, else from the clock; prints
    /// the seed.
    pub fn new() -> Rng {
        let seed = std::env::var("UNIPOOL_STORM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("storm seed {seed} (UNIPOOL_STORM_SEED to replay)");
        Rng(seed)
    }

    /// A deadline of 0–5 ms.
    pub fn deadline(&mut self) -> Duration {
        self.deadline_within(Duration::from_millis(5))
    }

    /// A deadline of 0 to `max` (whole microseconds).
    pub fn deadline_within(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let max = u64::try_from(max.as_micros()).unwrap_or(u64::MAX).max(1);
        Duration::from_micros(self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % max)
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}
