//! The knobs every unipool pool shares, with their defaults and validation.
//!
//! The same names are used in code, in TOML and in environment variables
//! (`UNIPOOL_<NAME>_<KNOB>`): see [`PoolConfig::set`].

use std::fmt;
use std::time::Duration;

use crate::knobs::knob_table;

/// Which idle connection `get()` reuses first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueMode {
    /// The lowest idle slot first: hot connections stay hot, high slots go cold and
    /// are closed by the reaper after `idle_timeout`. The default.
    #[default]
    Lifo,
    /// Round-robin over the idle slots: every connection is used about as often.
    Fifo,
}

/// Generates `PoolConfig`, its `Default`, the knob list and `set` from the
/// table in `knobs.rs`.
macro_rules! define_config {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:literal, $form:literal;)*) => {
        /// Configuration of one pool. Every field documents its default; build one
        /// with [`PoolConfig::default`] and change fields, from text with
        /// [`PoolConfig::set`], or through [`Builder`](crate::Builder).
        ///
        /// [`PoolConfig::validate`] (called by every `build`) turns each invalid
        /// combination into a [`ConfigError`] naming the knob.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct PoolConfig {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!("Default: `", $default, "`.")]
                pub $name: $ty,
            )*
        }

        impl Default for PoolConfig {
            fn default() -> Self {
                PoolConfig {
                    $(
                        $name: <$ty as KnobValue>::parse(stringify!($name), $default)
                            .expect("the knob table's defaults parse (unit-tested)"),
                    )*
                }
            }
        }

        /// Every knob: name, default and text form, in the table's order.
        #[cfg(test)]
        pub(crate) const KNOB_ROWS: &[(&str, &str, &str)] = &[$((stringify!($name), $default, $form)),*];

        impl PoolConfig {
            /// Every knob name [`set`](Self::set) accepts, as in TOML and
            /// (upper-cased) in environment variables.
            pub const KNOBS: &'static [&'static str] = &[$(stringify!($name)),*];

            fn set_known(&mut self, name: &str, value: &str) -> Result<bool, ConfigError> {
                match name {
                    $(stringify!($name) => self.$name = KnobValue::parse(stringify!($name), value)?,)*
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
    };
}

knob_table!(define_config);

/// How a knob's value is read from its text form.
trait KnobValue: Sized {
    fn parse(knob: &'static str, text: &str) -> Result<Self, ConfigError>;
}

impl KnobValue for usize {
    fn parse(knob: &'static str, text: &str) -> Result<Self, ConfigError> {
        parse_int(knob, text)
    }
}

impl KnobValue for u32 {
    fn parse(knob: &'static str, text: &str) -> Result<Self, ConfigError> {
        parse_int(knob, text)
    }
}

impl KnobValue for Duration {
    fn parse(knob: &'static str, text: &str) -> Result<Self, ConfigError> {
        parse_duration(knob, text)
    }
}

impl KnobValue for Option<Duration> {
    fn parse(knob: &'static str, text: &str) -> Result<Self, ConfigError> {
        parse_opt_duration(knob, text)
    }
}

impl KnobValue for QueueMode {
    fn parse(knob: &'static str, text: &str) -> Result<Self, ConfigError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "lifo" => Ok(QueueMode::Lifo),
            "fifo" => Ok(QueueMode::Fifo),
            _ => Err(invalid_value(knob, text, "expected `lifo` or `fifo`")),
        }
    }
}

/// Largest `max_size` a pool accepts: slots are allocated up front.
pub const MAX_POOL_SIZE: usize = 65_536;
/// Smallest `reap_interval`: a faster reaper only burns CPU.
pub const MIN_REAP_INTERVAL: Duration = Duration::from_millis(100);

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
    /// How many slots a pool of this configuration allocates: the most
    /// connections it can ever hold (`grow_limit`, or `max_size`).
    pub(crate) fn capacity(&self) -> usize {
        self.max_size.max(self.grow_limit)
    }

    /// Checks every rule; the first broken one is returned.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the knob: `max_size` of 0 or above
    /// [`MAX_POOL_SIZE`], `grow_limit` below `max_size` (and not 0) or above
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
        if self.grow_limit != 0 && self.grow_limit < self.max_size {
            return invalid(
                "grow_limit",
                format!(
                    "{} is below max_size ({}); 0 means max_size",
                    self.grow_limit, self.max_size
                ),
            );
        }
        if self.grow_limit > MAX_POOL_SIZE {
            return invalid(
                "grow_limit",
                format!("{} is above the limit of {MAX_POOL_SIZE}", self.grow_limit),
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
        if self.breaker_open.is_zero() {
            return invalid("breaker_open", "must be above zero".into());
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
        if self.set_known(&knob.to_ascii_lowercase(), value)? {
            Ok(())
        } else {
            Err(ConfigError::UnknownKnob(knob.to_string()))
        }
    }
}

fn invalid_value(knob: &'static str, value: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::InvalidValue {
        knob,
        value: crate::redact::clip(value).into_owned(),
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

/// TOML (or any serde format): a table of knob names to values, each value
/// read by [`PoolConfig::set`] from its text form, so a file, the environment
/// and code parse alike. Missing knobs keep their defaults; an unknown one is
/// an error naming it.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for PoolConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PoolConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of pool knobs (max_size, acquire_timeout, …)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PoolConfig, A::Error> {
                let mut config = PoolConfig::default();
                while let Some(knob) = map.next_key::<String>()? {
                    let Text(value) = map.next_value()?;
                    config
                        .set(&knob, &value)
                        .map_err(serde::de::Error::custom)?;
                }
                Ok(config)
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// A knob's value as text, whether the format wrote a number or a string.
#[cfg(feature = "serde")]
struct Text(String);

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string such as \"30s\"")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
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

    /// Every row of `docs/configuration.md`'s knob table names a knob of the
    /// table in `knobs.rs` with the same default and text form, and every knob
    /// has a row.
    #[test]
    fn docs_configuration_md_lists_every_knob_with_its_default() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let doc = std::fs::read_to_string(path).expect("docs/configuration.md");
        // The engine's table: from its header to the first line that is not a row.
        let rows: Vec<Vec<String>> = doc
            .lines()
            .skip_while(|l| !l.starts_with("| knob | default | text form |"))
            .take_while(|l| l.starts_with('|'))
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                l.trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), KNOB_ROWS.len(), "one row per knob");
        for (name, default, form) in KNOB_ROWS {
            let row = rows
                .iter()
                .find(|r| r[0] == format!("`{name}`"))
                .unwrap_or_else(|| panic!("no row for `{name}` in {path}"));
            assert_eq!(row[1], *default, "default of `{name}`");
            assert_eq!(row[2], *form, "text form of `{name}`");
        }
    }

    #[test]
    fn every_default_parses_and_validates() {
        for (name, default, _) in KNOB_ROWS {
            let mut c = PoolConfig::default();
            c.set(name, default).unwrap();
            assert_eq!(c, PoolConfig::default(), "`{name}` = {default:?}");
        }
    }
}
