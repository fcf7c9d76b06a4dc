//! The knobs every unipool pool shares, with their defaults and validation.
//!
//! The same names are used in code, in TOML and in environment variables
//! (`UNIPOOL_<NAME>_<KNOB>`): see [`PoolConfig::set`].

use std::fmt;
use std::time::Duration;

/// Which idle connection `get()` reuses first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum QueueMode {
    /// The lowest idle slot first: hot connections stay hot, high slots go cold and
    /// are closed by the reaper after `idle_timeout`. The default.
    #[default]
    Lifo,
    /// Round-robin over the idle slots: every connection is used about as often.
    Fifo,
}

/// Configuration of one pool. Every field documents its default; build one with
/// [`PoolConfig::default`] and change fields, or through
/// [`Builder`](crate::Builder).
///
/// [`PoolConfig::validate`] (called by every `build`) turns each invalid combination
/// into a [`ConfigError`] naming the knob.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct PoolConfig {
    /// Connections alive at once: idle + in use + being opened. Default 10.
    pub max_size: usize,
    /// Idle connections the reaper keeps open and never closes below. Default 0.
    pub min_idle: usize,
    /// Longest a `get()` waits, everything included (queueing, connecting, check,
    /// reset). Default 30 s.
    #[cfg_attr(feature = "serde", serde(with = "serde_duration"))]
    pub acquire_timeout: Duration,
    /// Longest one connect attempt; `check` and `reset` run under the same bound.
    /// Default 10 s.
    #[cfg_attr(feature = "serde", serde(with = "serde_duration"))]
    pub connect_timeout: Duration,
    /// Idle longer than this → closed by the reaper (never below `min_idle`).
    /// `None` = never. Default 10 min.
    #[cfg_attr(feature = "serde", serde(with = "serde_opt_duration"))]
    pub idle_timeout: Option<Duration>,
    /// Older than this → closed when idle or on return. Each connection gets up to
    /// −10 % jitter so connections opened together do not expire together.
    /// `None` = never. Default 30 min.
    #[cfg_attr(feature = "serde", serde(with = "serde_opt_duration"))]
    pub max_lifetime: Option<Duration>,
    /// Idle longer than this → probed with `Manager::check` by the reaper.
    /// `None` = never. Default 2 min.
    #[cfg_attr(feature = "serde", serde(with = "serde_opt_duration"))]
    pub keepalive_interval: Option<Duration>,
    /// On checkout, `Manager::check` runs only if the connection was idle longer
    /// than this. Default 500 ms.
    #[cfg_attr(feature = "serde", serde(with = "serde_duration"))]
    pub validate_after: Duration,
    /// Period of the reaper; at least 100 ms. Default 30 s.
    #[cfg_attr(feature = "serde", serde(with = "serde_duration"))]
    pub reap_interval: Duration,
    /// Held longer than this → a warning naming where it was acquired.
    /// `None` = off (the default).
    #[cfg_attr(feature = "serde", serde(with = "serde_opt_duration"))]
    pub leak_threshold: Option<Duration>,
    /// Which idle connection is reused first. Default [`QueueMode::Lifo`].
    pub queue_mode: QueueMode,
    /// Longest a parked waiter can be overtaken by a running task; past it, returned
    /// connections are handed to the oldest waiter. `0` = strict FIFO hand-off.
    /// Default 1 ms.
    #[cfg_attr(feature = "serde", serde(with = "serde_duration"))]
    pub fairness_window: Duration,
    /// Extra connect attempts after a transient failure (refused, reset, connect
    /// timeout), inside the acquire deadline. Default 0 (fail fast).
    pub connect_retries: u32,
    /// First backoff between connect retries; doubles per attempt, full jitter.
    /// Default 100 ms.
    #[cfg_attr(feature = "serde", serde(with = "serde_duration"))]
    pub retry_backoff: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 10,
            min_idle: 0,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            keepalive_interval: Some(Duration::from_secs(120)),
            validate_after: Duration::from_millis(500),
            reap_interval: Duration::from_secs(30),
            leak_threshold: None,
            queue_mode: QueueMode::Lifo,
            fairness_window: Duration::from_millis(1),
            connect_retries: 0,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

/// Largest `max_size` a pool accepts: slots are allocated up front.
pub const MAX_POOL_SIZE: usize = 65_536;
/// Smallest `reap_interval`: a faster reaper only burns CPU.
pub const MIN_REAP_INTERVAL: Duration = Duration::from_millis(100);

/// Every knob name [`PoolConfig::set`] accepts.
pub const KNOBS: &[&str] = &[
    "max_size",
    "min_idle",
    "acquire_timeout",
    "connect_timeout",
    "idle_timeout",
    "max_lifetime",
    "keepalive_interval",
    "validate_after",
    "reap_interval",
    "leak_threshold",
    "queue_mode",
    "fairness_window",
    "connect_retries",
    "retry_backoff",
];

/// A configuration value that cannot be used. Every variant names the knob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The value could not be parsed for this knob.
    #[error("invalid value {value:?} for `{knob}`: {reason}")]
    InvalidValue {
        /// The knob, as named in code, TOML and the environment.
        knob: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The value parsed but breaks a rule (a zero size, `min_idle > max_size`, …).
    #[error("invalid `{knob}`: {reason}")]
    Invalid {
        /// The knob, as named in code, TOML and the environment.
        knob: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// No knob of that name exists.
    #[error("unknown pool setting `{0}` (known: max_size, min_idle, acquire_timeout, …)")]
    UnknownKnob(String),
    /// The pool was built outside a tokio runtime, so it has nowhere to run its
    /// reaper and connect tasks.
    #[error("a pool must be built inside a tokio runtime (no runtime is running here)")]
    NoRuntime,
}

impl PoolConfig {
    /// Checks every rule; the first broken one is returned.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the knob: `max_size` of 0 or above
    /// [`MAX_POOL_SIZE`], `min_idle > max_size`, a zero `acquire_timeout` or
    /// `connect_timeout`, `reap_interval` below [`MIN_REAP_INTERVAL`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |knob, reason: String| Err(ConfigError::Invalid { knob, reason });
        if self.max_size == 0 {
            return invalid("max_size", "must be at least 1".into());
        }
        if self.max_size > MAX_POOL_SIZE {
            return invalid(
                "max_size",
                format!("{} is above the limit of {MAX_POOL_SIZE}", self.max_size),
            );
        }
        if self.min_idle > self.max_size {
            return invalid(
                "min_idle",
                format!(
                    "{} is larger than max_size ({})",
                    self.min_idle, self.max_size
                ),
            );
        }
        if self.acquire_timeout.is_zero() {
            return invalid("acquire_timeout", "must be above zero".into());
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout", "must be above zero".into());
        }
        if self.reap_interval < MIN_REAP_INTERVAL {
            return invalid(
                "reap_interval",
                format!(
                    "{} is below the floor of 100ms",
                    humantime::format_duration(self.reap_interval)
                ),
            );
        }
        for (knob, value) in [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("keepalive_interval", self.keepalive_interval),
            ("leak_threshold", self.leak_threshold),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return invalid(knob, "must be above zero (use \"off\" to disable)".into());
            }
        }
        Ok(())
    }

    /// Sets one knob from its text form, as found in TOML or an environment
    /// variable: sizes as integers, durations human-readable (`"250ms"`, `"30s"`,
    /// `"10m"`), optional durations also `"off"`, `queue_mode` as `lifo`/`fifo`.
    /// The knob name is matched case-insensitively (`MAX_SIZE` works).
    ///
    /// # Errors
    /// [`ConfigError::UnknownKnob`] or [`ConfigError::InvalidValue`] naming the knob
    /// and the value. Rules across knobs are checked later by [`validate`](Self::validate).
    pub fn set(&mut self, knob: &str, value: &str) -> Result<(), ConfigError> {
        let lower = knob.to_ascii_lowercase();
        let Some(&name) = KNOBS.iter().find(|k| **k == lower) else {
            return Err(ConfigError::UnknownKnob(knob.to_string()));
        };
        let value = value.trim();
        match name {
            "max_size" => self.max_size = parse_int(name, value)?,
            "min_idle" => self.min_idle = parse_int(name, value)?,
            "connect_retries" => self.connect_retries = parse_int(name, value)?,
            "acquire_timeout" => self.acquire_timeout = parse_duration(name, value)?,
            "connect_timeout" => self.connect_timeout = parse_duration(name, value)?,
            "validate_after" => self.validate_after = parse_duration(name, value)?,
            "reap_interval" => self.reap_interval = parse_duration(name, value)?,
            "fairness_window" => self.fairness_window = parse_duration(name, value)?,
            "retry_backoff" => self.retry_backoff = parse_duration(name, value)?,
            "idle_timeout" => self.idle_timeout = parse_opt_duration(name, value)?,
            "max_lifetime" => self.max_lifetime = parse_opt_duration(name, value)?,
            "keepalive_interval" => self.keepalive_interval = parse_opt_duration(name, value)?,
            "leak_threshold" => self.leak_threshold = parse_opt_duration(name, value)?,
            "queue_mode" => {
                self.queue_mode = match value.to_ascii_lowercase().as_str() {
                    "lifo" => QueueMode::Lifo,
                    "fifo" => QueueMode::Fifo,
                    _ => return Err(invalid_value(name, value, "expected `lifo` or `fifo`")),
                }
            }
            _ => return Err(ConfigError::UnknownKnob(knob.to_string())),
        }
        Ok(())
    }
}

fn invalid_value(knob: &'static str, value: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::InvalidValue {
        knob,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_int<T: std::str::FromStr>(knob: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    value
        .parse()
        .map_err(|e| invalid_value(knob, value, format!("not a non-negative integer ({e})")))
}

/// Parses `"250ms"`, `"30s"`, `"10m"`, `"1h 30m"`; a bare number is refused because
/// its unit would be a guess.
///
/// # Errors
/// [`ConfigError::InvalidValue`] naming `knob` and the value.
pub fn parse_duration(knob: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        invalid_value(
            knob,
            value,
            format!("not a duration like \"250ms\", \"30s\" or \"10m\" ({e})"),
        )
    })
}

/// Like [`parse_duration`], and `"off"`, `"none"` or `"never"` mean `None`.
///
/// # Errors
/// [`ConfigError::InvalidValue`] naming `knob` and the value.
pub fn parse_opt_duration(
    knob: &'static str,
    value: &str,
) -> Result<Option<Duration>, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "never" | "disabled" => Ok(None),
        _ => parse_duration(knob, value).map(Some),
    }
}

#[cfg(feature = "serde")]
mod serde_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: {e} (expected e.g. \"250ms\", \"30s\", \"10m\")"
            ))
        })
    }
}

#[cfg(feature = "serde")]
mod serde_opt_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "never" | "disabled" => Ok(None),
            _ => humantime::parse_duration(&text).map(Some).map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?}: {e} (expected e.g. \"30s\" or \"off\")"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design_table() {
        let c = PoolConfig::default();
        assert_eq!(c.max_size, 10);
        assert_eq!(c.acquire_timeout, Duration::from_secs(30));
        assert_eq!(c.fairness_window, Duration::from_millis(1));
        assert_eq!(c.queue_mode, QueueMode::Lifo);
        assert_eq!(c.leak_threshold, None);
        c.validate().unwrap();
    }
}
