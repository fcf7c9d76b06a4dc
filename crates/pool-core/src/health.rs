//! `Health`: a pool's (or a registry's) verdict with its reason.

use std::fmt;

/// A pool's verdict. The reason is meant for humans and health endpoints; it
/// never contains credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Serving normally.
    Healthy,
    /// Serving, but something is wrong: saturation or recent connect failures.
    Degraded {
        /// What is wrong.
        reason: String,
    },
    /// Not serving: closed, or it cannot open any connection.
    Unhealthy {
        /// What is wrong.
        reason: String,
    },
}

impl Health {
    /// `true` for [`Health::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    /// A rank for combining verdicts: the worst one wins.
    fn rank(&self) -> u8 {
        match self {
            Health::Healthy => 0,
            Health::Degraded { .. } => 1,
            Health::Unhealthy { .. } => 2,
        }
    }

    /// The worse of two verdicts (for registries and keyed pools).
    pub fn worst(self, other: Health) -> Health {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Healthy => f.write_str("healthy"),
            Health::Degraded { reason } => write!(f, "degraded: {reason}"),
            Health::Unhealthy { reason } => write!(f, "unhealthy: {reason}"),
        }
    }
}
