//! What a registry reports: health, stats, prewarm and close results, one entry
//! per pool. None of them holds a password: pool names, kinds, counters and
//! the protocol crates' (redacted) error texts only.

use std::fmt;
use std::time::Duration;

use pool_core::{HealthStatus, Stats};

use super::kind::Kind;

/// The health of one pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolHealth {
    /// The pool's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// The pool's verdict with its reason.
    pub status: HealthStatus,
    /// Connections in use over `max_size` (HTTP: requests in flight over
    /// `max_size`), 0–1.
    pub saturation: f64,
    /// Failed connects and acquire timeouts over all acquisition attempts,
    /// since the pool started, 0–1.
    pub error_rate: f64,
    /// The last connect failure, whenever it happened.
    pub last_error: Option<String>,
}

impl PoolHealth {
    pub(crate) fn new(
        name: &str,
        kind: Kind,
        status: HealthStatus,
        stats: &Stats,
        last_error: Option<String>,
    ) -> Self {
        let errors = stats.create_failures + stats.timeouts;
        let attempts = stats.acquired_total + errors;
        PoolHealth {
            name: name.to_string(),
            kind,
            status,
            saturation: ratio(stats.in_use as u64, stats.max_size as u64),
            error_rate: ratio(errors, attempts),
            last_error,
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f64 / b as f64).min(1.0)
    }
}

/// The health of every pool, and the worst verdict.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RegistryHealth {
    /// The worst verdict, its reason prefixed with the pool's name.
    pub status: HealthStatus,
    /// One entry per pool, in name order.
    pub pools: Vec<PoolHealth>,
}

impl RegistryHealth {
    pub(crate) fn new(pools: Vec<PoolHealth>) -> Self {
        let status = pools.iter().fold(HealthStatus::Healthy, |worst, p| {
            let named = match &p.status {
                HealthStatus::Healthy => HealthStatus::Healthy,
                HealthStatus::Degraded { reason } => HealthStatus::Degraded {
                    reason: format!("{}: {reason}", p.name),
                },
                HealthStatus::Unhealthy { reason } => HealthStatus::Unhealthy {
                    reason: format!("{}: {reason}", p.name),
                },
            };
            worst.worst(named)
        });
        RegistryHealth { status, pools }
    }
}

impl fmt::Display for RegistryHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "overall: {}", self.status)?;
        for p in &self.pools {
            write!(
                f,
                "  {:<12} {:<8} {} (saturation {:.0}%, error rate {:.1}%",
                p.name,
                p.kind,
                p.status,
                p.saturation * 100.0,
                p.error_rate * 100.0
            )?;
            if let Some(e) = &p.last_error {
                write!(f, ", last error: {e}")?;
            }
            writeln!(f, ")")?;
        }
        Ok(())
    }
}

/// The stats of one pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its snapshot (empty for a Redis pool not connected yet).
    pub stats: Stats,
}

/// What `prewarm` did, per pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PrewarmReport {
    /// One entry per pool, in name order.
    pub pools: Vec<Prewarmed>,
    /// The fleet budget per server (PostgreSQL and Redis pools).
    pub budget: Vec<super::budget::ServerBudget>,
}

/// What `prewarm` did to one pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Prewarmed {
    /// The pool's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Connections open and idle afterwards, or why they could not be opened.
    pub result: Result<usize, String>,
}

impl PrewarmReport {
    /// `true` when no pool failed.
    pub fn is_ok(&self) -> bool {
        self.pools.iter().all(|p| p.result.is_ok())
    }

    /// The servers whose fleet budget is exceeded: replicas × connections
    /// per replica above what the server allows.
    pub fn over_budget(&self) -> impl Iterator<Item = &super::budget::ServerBudget> {
        self.budget.iter().filter(|b| b.excess().is_some())
    }

    /// The pools that failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pools.iter().filter_map(|p| {
            p.result
                .as_ref()
                .err()
                .map(|e| (p.name.as_str(), e.as_str()))
        })
    }
}

impl fmt::Display for PrewarmReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.pools {
            match &p.result {
                Ok(0) if p.kind == Kind::Http => writeln!(
                    f,
                    "  {:<12} {:<8} ok (connects on the first request)",
                    p.name, p.kind
                )?,
                Ok(n) => writeln!(f, "  {:<12} {:<8} ok, {n} open", p.name, p.kind)?,
                Err(e) => writeln!(f, "  {:<12} {:<8} FAILED: {e}", p.name, p.kind)?,
            }
        }
        for b in &self.budget {
            let verdict = if b.excess().is_some() {
                "OVER BUDGET"
            } else {
                "fleet budget"
            };
            writeln!(f, "  {verdict}: {b}")?;
        }
        Ok(())
    }
}

/// What `close_all` did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CloseReport {
    /// Per pool: `true` if every connection closed before the deadline.
    pub pools: Vec<(String, bool)>,
    /// How long it took.
    pub elapsed: Duration,
}

impl CloseReport {
    /// `true` when every pool closed in time.
    pub fn all_closed(&self) -> bool {
        self.pools.iter().all(|(_, closed)| *closed)
    }
}
