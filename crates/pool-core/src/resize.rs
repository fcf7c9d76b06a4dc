//! Resizing at run time: `set_max_size` and `set_min_idle`.
//!
//! The slots are allocated up front for `grow_limit` (or `max_size`), so
//! growing needs no allocation and no pointer ever moves. `Inner::max_size`
//! is what `reserve` compares against; a return closes its connection while
//! more are alive than it allows (`finish_checkin`), so after a shrink the
//! pool gets down to the new size as connections come back, and never opens
//! one while above it.

use std::sync::atomic::Ordering::SeqCst;

use crate::config::ConfigError;
use crate::inner::Inner;
use crate::manager::Manager;
use crate::stats::CloseReason;

/// Checks a new `max_size` against the slots and `min_idle`.
pub(crate) fn check_max_size(n: usize, slots: usize, min_idle: usize) -> Result<(), ConfigError> {
    let invalid = |reason: String| {
        Err(ConfigError::Invalid {
            knob: "max_size",
            reason,
        })
    };
    if n == 0 {
        return invalid("must be at least 1".into());
    }
    if n > slots {
        return invalid(format!(
            "{n} is above grow_limit ({slots}): the pool's slots were allocated for that many"
        ));
    }
    if n < min_idle {
        return invalid(format!("{n} is below min_idle ({min_idle})"));
    }
    Ok(())
}

/// Checks a new `min_idle` against `max_size`.
pub(crate) fn check_min_idle(n: usize, max_size: usize) -> Result<(), ConfigError> {
    if n > max_size {
        return Err(ConfigError::Invalid {
            knob: "min_idle",
            reason: format!("{n} is larger than max_size ({max_size})"),
        });
    }
    Ok(())
}

impl<M: Manager> Inner<M> {
    /// Sets `max_size` (checked by the caller): growing starts connects for
    /// the waiters at once; shrinking closes idle connections now and
    /// surplus ones as they come back.
    pub(crate) fn set_max_size(&self, n: usize) -> Result<(), ConfigError> {
        check_max_size(n, self.config.capacity(), self.min_idle.load(SeqCst))?;
        let before = self.max_size.swap(n, SeqCst);
        if n > before {
            self.maybe_open();
        } else {
            self.close_surplus_idle();
        }
        Ok(())
    }

    /// Closes idle connections while more are alive than `max_size` allows.
    fn close_surplus_idle(&self) {
        while self.size() > self.max_size.load(SeqCst) {
            let Some(slot) = self.slots.take_idle_lowest() else {
                return;
            };
            self.close_taken(slot, CloseReason::Idle);
        }
    }

    /// Sets `min_idle` and opens at once what it now asks for.
    pub(crate) fn set_min_idle(&self, n: usize) -> Result<(), ConfigError> {
        check_min_idle(n, self.max_size.load(SeqCst))?;
        self.min_idle.store(n, SeqCst);
        self.top_up_min_idle();
        Ok(())
    }
}
