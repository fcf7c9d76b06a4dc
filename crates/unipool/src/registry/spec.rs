//! `PoolSpec`: one pool's settings resolved — its URL, its kind, and the
//! settings that apply to it in precedence order — with every rule that needs
//! no protocol crate checked.

use pool_core::{ConfigError, PoolConfig};

use super::config::{Declared, RegistryConfig, Setting};
use super::error::{shown, Origin, RegistryError};
use super::keys;
use super::kind::Kind;

/// One pool, ready to be built.
#[derive(Debug)]
pub(crate) struct PoolSpec {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// The URL as given (it may hold a password: never print it, use
    /// `error::redact_any_url`).
    pub(crate) url: String,
    /// The settings that apply, lowest precedence first; no `url` or `kind`.
    pub(crate) settings: Vec<Setting>,
}

impl RegistryConfig {
    /// Every declared pool, resolved. Defaults that do not apply to a pool's
    /// kind are skipped for it; a pool's own setting that does not apply is an
    /// error.
    ///
    /// # Errors
    /// The first [`RegistryError::Config`] or [`RegistryError::Unsupported`].
    pub(crate) fn specs(&self) -> Result<Vec<PoolSpec>, RegistryError> {
        self.pools.iter().map(|p| self.spec(p)).collect()
    }

    /// The engine knobs set in the defaults, for the registry's shared HTTP
    /// client (see `Registry::http_for`).
    pub(crate) fn default_settings(&self, kind: Kind) -> Vec<Setting> {
        let mut settings: Vec<Setting> = self
            .defaults
            .iter()
            .filter(|s| keys::applies(kind, s.key))
            .cloned()
            .collect();
        settings.sort_by_key(|s| s.layer);
        settings
    }

    fn spec(&self, pool: &Declared) -> Result<PoolSpec, RegistryError> {
        let mut all: Vec<&Setting> = self.defaults.iter().chain(&pool.settings).collect();
        all.sort_by_key(|s| s.layer);
        let last = |key: &str| all.iter().rev().find(|s| s.key == key).copied();
        let Some(url_setting) = last("url") else {
            let origin = pool.settings.first().map_or_else(
                || Origin::Default { key: "url".into() },
                |s| s.origin.clone(),
            );
            return Err(RegistryError::Config {
                origin,
                reason: format!(
                    "pool `{0}` has no url: set UNIPOOL_{1}_URL or `url` under [pools.{0}]",
                    pool.name,
                    pool.name.to_ascii_uppercase()
                ),
            });
        };
        let url = url_setting.text()?.trim().to_string();
        let scheme = match url::Url::parse(&url) {
            Ok(u) => u.scheme().to_string(),
            // A MongoDB connection string or a Redis Cluster URL may list
            // several hosts (`mongodb://h1:27017,h2:27017/db`), which is not a
            // URL: the protocol crate checks it when the pool is built.
            Err(_)
                if matches!(
                    url.split("://")
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase()
                        .as_str(),
                    "mongodb" | "mongodb+srv" | "redis+cluster"
                ) =>
            {
                url.split("://").next().unwrap_or("").to_ascii_lowercase()
            }
            Err(e) => {
                return Err(url_setting.error(format!("{} is not a URL ({e})", shown("url", &url))))
            }
        };
        let by_scheme = Kind::from_scheme(&scheme);
        let kind = match last("kind") {
            Some(k) => {
                let text = k.text()?;
                let Some(explicit) = Kind::parse(text) else {
                    return Err(k.error(format!(
                        "unknown kind {text:?} (known: postgres, sqlite, redis, http, ws, zmq, mongo)"
                    )));
                };
                if by_scheme.is_some_and(|s| s != explicit) {
                    return Err(k.error(format!(
                        "kind {text:?} does not match the URL's scheme `{scheme}:`"
                    )));
                }
                explicit
            }
            None => by_scheme.ok_or_else(|| {
                url_setting.error(format!(
                    "no pool kind speaks `{scheme}:` URLs (postgres, postgresql, sqlite, redis, \
                     rediss, redis+unix, redis+cluster, http, https, ws, wss, mongodb); a ZeroMQ endpoint \
                     needs kind = \"zmq\""
                ))
            })?,
        };
        if let Some(hint) = kind.unsupported() {
            return Err(RegistryError::Unsupported {
                name: pool.name.clone(),
                origin: url_setting.origin.clone(),
                kind,
                hint,
            });
        }
        let mut settings = Vec::new();
        for s in all {
            if matches!(s.key, "url" | "kind") {
                continue;
            }
            if !keys::applies(kind, s.key) {
                if s.layer.is_default() {
                    continue;
                }
                return Err(s.error(format!(
                    "`{}` does not apply to a {kind} pool (it applies to: {})",
                    s.key,
                    keys::kinds_of(s.key)
                )));
            }
            settings.push(s.clone());
        }
        let spec = PoolSpec {
            name: pool.name.clone(),
            kind,
            url,
            settings,
        };
        spec.engine()?;
        Ok(spec)
    }
}

impl PoolSpec {
    /// The last setting of `key`, if any.
    pub(crate) fn last(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.key == key)
    }

    /// The engine's configuration from the knobs set for this pool, validated.
    ///
    /// # Errors
    /// [`RegistryError::Config`] at the origin of the bad value, or, for a rule
    /// across knobs (`min_idle > max_size`), of the knob the rule names.
    pub(crate) fn engine(&self) -> Result<PoolConfig, RegistryError> {
        self.engine_from(PoolConfig::default())
    }

    /// Like [`engine`](Self::engine), from a protocol's own defaults.
    ///
    /// # Errors
    /// As [`engine`](Self::engine).
    pub(crate) fn engine_from(&self, mut config: PoolConfig) -> Result<PoolConfig, RegistryError> {
        for s in self
            .settings
            .iter()
            .filter(|s| PoolConfig::KNOBS.contains(&s.key))
        {
            config.set(s.key, s.text()?).map_err(|e| s.error(e))?;
        }
        config.validate().map_err(|e| self.config_error(e))?;
        Ok(config)
    }

    /// A value read with `parse`, or `None` when the key is not set.
    ///
    /// # Errors
    /// [`RegistryError::Config`] naming the origin, the value and `parse`'s reason.
    pub(crate) fn parsed<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, RegistryError> {
        let Some(s) = self.last(key) else {
            return Ok(None);
        };
        let text = s.text()?;
        parse(text.trim())
            .map(Some)
            .map_err(|reason| s.error(format!("invalid value {} for `{key}`: {reason}", s.shown())))
    }

    /// An engine error, placed at the origin of the knob it names.
    pub(crate) fn config_error(&self, e: ConfigError) -> RegistryError {
        let knob = match &e {
            ConfigError::Invalid { knob, .. } | ConfigError::InvalidValue { knob, .. } => *knob,
            _ => "",
        };
        let origin = self.last(knob).map_or_else(
            || Origin::Default { key: knob.into() },
            |s| s.origin.clone(),
        );
        RegistryError::Config {
            origin,
            reason: format!("pool `{}`: {e}", self.name),
        }
    }
}

/// Text forms shared by the protocol keys.
pub(crate) mod parse {
    use std::time::Duration;

    pub(crate) fn duration(text: &str) -> Result<Duration, String> {
        pool_core::util::parse_duration("", text)
            .map_err(|_| "not a duration like \"250ms\", \"30s\" or \"10m\"".to_string())
    }

    pub(crate) fn positive_duration(text: &str) -> Result<Duration, String> {
        match duration(text)? {
            d if d.is_zero() => Err("must be above zero".into()),
            d => Ok(d),
        }
    }

    pub(crate) fn count(text: &str) -> Result<usize, String> {
        text.parse()
            .map_err(|_| "not a non-negative integer".to_string())
    }

    pub(crate) fn positive(text: &str) -> Result<usize, String> {
        match count(text)? {
            0 => Err("must be at least 1".into()),
            n => Ok(n),
        }
    }

    pub(crate) fn boolean(text: &str) -> Result<bool, String> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err("expected `true` or `false`".into()),
        }
    }
}
