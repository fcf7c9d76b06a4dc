//! `MongoConfig`: unipool's knobs, mapped onto the driver's `ClientOptions`.

use std::time::Duration;

use mongodb::options::ClientOptions;
use pool_core::{ConfigError, PoolConfig, SharedObserver};

/// How a [`MongoPool`](crate::MongoPool) sets up its client. The driver keeps
/// one connection pool per server inside the client; these knobs are mapped
/// onto it (`docs/mongo.md` has the table):
///
/// | unipool | driver |
/// |---|---|
/// | `pool.max_size` | `max_pool_size` (per server) |
/// | `pool.min_idle` | `min_pool_size` (per server) |
/// | `pool.idle_timeout` | `max_idle_time` (`None` → never) |
/// | `pool.connect_timeout` | `connect_timeout` |
/// | `pool.acquire_timeout` | `server_selection_timeout` |
///
/// The engine's other knobs (`max_lifetime`, `keepalive_interval`,
/// `queue_mode`, …) have no match in the driver and are ignored. Options set
/// in the URI's query (`?maxPoolSize=…`) win over these.
#[derive(Debug, Clone, PartialEq)]
pub struct MongoConfig {
    /// The engine's knobs; see the table above for the ones that apply.
    /// Default: [`PoolConfig::default`] (10 connections per server, idle
    /// connections closed after 10 minutes, 10 s connect, 30 s acquire).
    pub pool: PoolConfig,
    /// Connections the driver may be opening at once per server (the
    /// driver's `max_connecting`). Default: `None`, the driver's 2.
    pub max_connecting: Option<u32>,
    /// How often the driver's monitor checks each server (its
    /// `heartbeat_freq`, at least 500 ms). Default: `None`, the driver's 10 s.
    pub heartbeat_interval: Option<Duration>,
    /// The deadline of a [`ping`](crate::MongoPool::ping) and of a health
    /// probe. Default: 10 s.
    pub ping_timeout: Duration,
    /// The name the server logs for this client (`appName`). Default: the
    /// pool's name.
    pub app_name: Option<String>,
    /// Receives the engine's events, translated from the driver's CMAP events.
    /// Default: none.
    pub observer: Option<SharedObserver>,
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            pool: PoolConfig::default(),
            max_connecting: None,
            heartbeat_interval: None,
            ping_timeout: Duration::from_secs(10),
            app_name: None,
            observer: None,
        }
    }
}

impl MongoConfig {
    /// Checks the knobs.
    ///
    /// # Errors
    /// [`ConfigError`] naming the knob and its bad value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.pool.validate()?;
        let bad = |knob: &'static str, value: String, reason: &str| ConfigError::InvalidValue {
            knob,
            value,
            reason: reason.to_string(),
        };
        if u32::try_from(self.pool.max_size).is_err() {
            return Err(bad(
                "max_size",
                self.pool.max_size.to_string(),
                "the driver takes at most 4 294 967 295",
            ));
        }
        if self.max_connecting == Some(0) {
            return Err(bad("max_connecting", "0".into(), "must be at least 1"));
        }
        if self.ping_timeout.is_zero() {
            return Err(bad("ping_timeout", "0s".into(), "must be more than zero"));
        }
        if let Some(h) = self.heartbeat_interval {
            if h < Duration::from_millis(500) {
                return Err(bad(
                    "heartbeat_interval",
                    format!("{h:?}"),
                    "the driver needs at least 500ms",
                ));
            }
        }
        Ok(())
    }

    /// Writes these knobs into `options` where the URI did not set them.
    pub(crate) fn apply(&self, name: &str, options: &mut ClientOptions) {
        let p = &self.pool;
        options
            .max_pool_size
            .get_or_insert(u32::try_from(p.max_size).unwrap_or(u32::MAX));
        options
            .min_pool_size
            .get_or_insert(u32::try_from(p.min_idle).unwrap_or(u32::MAX));
        // The driver reads zero as "never".
        options
            .max_idle_time
            .get_or_insert(p.idle_timeout.unwrap_or(Duration::ZERO));
        options.connect_timeout.get_or_insert(p.connect_timeout);
        options
            .server_selection_timeout
            .get_or_insert(p.acquire_timeout);
        if options.max_connecting.is_none() {
            options.max_connecting = self.max_connecting;
        }
        if options.heartbeat_freq.is_none() {
            options.heartbeat_freq = self.heartbeat_interval;
        }
        if options.app_name.is_none() {
            options.app_name = Some(self.app_name.clone().unwrap_or_else(|| name.to_string()));
        }
    }
}
