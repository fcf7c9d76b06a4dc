//! `Health`: what anything that reports its health implements (a pool, a keyed
//! pool, the HTTP layer, a registry), and `HealthStatus`, the verdict.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, as returned by [`Health::probe`] and [`Pool::close`](crate::Pool::close).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Anything that can say how it is doing: a cheap verdict from counters, and
/// an async probe that talks to the peer under a timeout.
pub trait Health: Send + Sync {
    /// The verdict from counters and recent events; no I/O, cheap enough for
    /// every scrape of a health endpoint.
    fn health(&self) -> HealthStatus;

    /// A probe of the peer that resolves within `timeout`: for a pool, a
    /// connection is checked out and `Manager::check` runs on it. Default: the
    /// cheap verdict.
    fn probe(&self, timeout: Duration) -> BoxFuture<'_, HealthStatus> {
        let _ = timeout;
        Box::pin(std::future::ready(self.health()))
    }
}

/// A verdict with its reason. The reason is meant for humans and health
/// endpoints; it never contains credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthStatus {
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

impl HealthStatus {
    /// `true` for [`HealthStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthStatus::Healthy)
    }

    /// The reason, unless healthy.
    pub fn reason(&self) -> Option<&str> {
        match self {
            HealthStatus::Healthy => None,
            HealthStatus::Degraded { reason } | HealthStatus::Unhealthy { reason } => Some(reason),
        }
    }

    /// A rank for combining verdicts: the worst one wins.
    fn rank(&self) -> u8 {
        match self {
            HealthStatus::Healthy => 0,
            HealthStatus::Degraded { .. } => 1,
            HealthStatus::Unhealthy { .. } => 2,
        }
    }

    /// The worse of two verdicts (for registries and keyed pools); the first
    /// one on a tie.
    pub fn worst(self, other: HealthStatus) -> HealthStatus {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthStatus::Healthy => f.write_str("healthy"),
            HealthStatus::Degraded { reason } => write!(f, "degraded: {reason}"),
            HealthStatus::Unhealthy { reason } => write!(f, "unhealthy: {reason}"),
        }
    }
}
