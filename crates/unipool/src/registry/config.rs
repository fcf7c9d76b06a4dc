//! `RegistryConfig`: pools declared in TOML files and environment variables,
//! layered. Only text is read here; nothing connects.
//!
//! Precedence, lowest first: the file's `[defaults]`, `UNIPOOL_DEFAULT_<KEY>`,
//! the file's `[pools.<name>]`, `UNIPOOL_<NAME>_<KEY>`. A pool's own setting
//! beats a default; at the same level the environment beats the file.

use std::fmt;

use super::error::{shown, Origin, RegistryError};
use super::keys;

/// Variables under `UNIPOOL_` that are not pool settings.
const RESERVED_VARS: &[&str] = &["UNIPOOL_CONFIG", "UNIPOOL_REPLICAS"];
/// Prefixes under `UNIPOOL_` kept for the project's own tools.
const RESERVED_PREFIXES: &[&str] = &["UNIPOOL_BENCH_", "UNIPOOL_SKIP_"];
/// Names that cannot be pool names, because their variables mean something
/// else (`UNIPOOL_DEFAULT_…`, `UNIPOOL_CONFIG`, …) or the registry uses them.
const RESERVED_NAMES: &[&str] = &["default", "defaults", "config", "bench", "skip"];

/// A value as written: text (numbers and booleans become their text, read by
/// the same parser as an environment variable), or name/value pairs (headers).
#[derive(Clone)]
pub(crate) enum Value {
    Text(String),
    Pairs(Vec<(String, String)>),
}

/// Where a setting sits in the precedence order, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    FileDefault,
    EnvDefault,
    FilePool,
    EnvPool,
}

impl Layer {
    pub(crate) fn is_default(self) -> bool {
        matches!(self, Layer::FileDefault | Layer::EnvDefault)
    }
}

/// One key set somewhere.
#[derive(Clone)]
pub(crate) struct Setting {
    pub(crate) key: &'static str,
    pub(crate) value: Value,
    pub(crate) origin: Origin,
    pub(crate) layer: Layer,
}

impl Setting {
    /// The value as text; a table where text was expected is an error.
    pub(crate) fn text(&self) -> Result<&str, RegistryError> {
        match &self.value {
            Value::Text(t) => Ok(t),
            Value::Pairs(_) => Err(self.error("expected a value, found a table")),
        }
    }

    /// The value as name/value pairs (`headers`): a table, or the text form
    /// `Name: value; Name: value`.
    pub(crate) fn pairs(&self) -> Result<Vec<(String, String)>, RegistryError> {
        match &self.value {
            Value::Pairs(p) => Ok(p.clone()),
            Value::Text(t) => t
                .split(';')
                .filter(|p| !p.trim().is_empty())
                .map(|p| match p.split_once(':') {
                    Some((n, v)) if !n.trim().is_empty() => {
                        Ok((n.trim().to_string(), v.trim().to_string()))
                    }
                    _ => Err(self.error(format!(
                        "{:?} is not `Name: value` (pairs are separated by `;`)",
                        p.trim()
                    ))),
                })
                .collect(),
        }
    }

    /// An error at this setting's origin.
    pub(crate) fn error(&self, reason: impl fmt::Display) -> RegistryError {
        RegistryError::Config {
            origin: self.origin.clone(),
            reason: reason.to_string(),
        }
    }

    /// The value as shown in errors (redacted when secret).
    pub(crate) fn shown(&self) -> String {
        match &self.value {
            Value::Text(t) => shown(self.key, t),
            Value::Pairs(p) => format!("a table of {} entries", p.len()),
        }
    }
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {} ({})", self.key, self.shown(), self.origin)
    }
}

/// A pool named somewhere, with its own settings.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    pub(crate) name: String,
    pub(crate) settings: Vec<Setting>,
}

/// The pools of a registry and their settings, read from TOML and the
/// environment; [`build`](Self::build) turns it into a
/// [`Registry`](super::Registry).
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), unipool::RegistryError> {
/// use unipool::RegistryConfig;
///
/// let registry = RegistryConfig::new()
///     .toml(
///         r#"
///         [defaults]
///         acquire_timeout = "5s"
///
///         [pools.local]
///         url = "sqlite::memory:doc"
///         max_size = 4
///         "#,
///         "inline.toml",
///     )?
///     .vars([("UNIPOOL_LOCAL_MAX_SIZE", "8")])? // the environment wins
///     .build()?;
/// assert_eq!(registry.sqlite("local")?.config().max_size, 8);
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
#[derive(Clone, Default)]
pub struct RegistryConfig {
    pub(crate) defaults: Vec<Setting>,
    pub(crate) pools: Vec<Declared>,
    /// Processes of the service (`[fleet] replicas`, `UNIPOOL_REPLICAS`),
    /// for the fleet budget; where it was set.
    pub(crate) replicas: Option<(usize, Origin)>,
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("defaults", &self.defaults)
            .field("pools", &self.pools)
            .field("replicas", &self.replicas.as_ref().map(|(n, _)| n))
            .finish()
    }
}

impl RegistryConfig {
    /// No pools.
    pub fn new() -> Self {
        Self::default()
    }

    /// The file named by `UNIPOOL_CONFIG`, if set, then every `UNIPOOL_`
    /// variable of the process.
    ///
    /// # Errors
    /// As [`file`](Self::file) and [`env`](Self::env).
    pub fn from_env() -> Result<Self, RegistryError> {
        let mut config = Self::new();
        if let Some(path) = std::env::var_os("UNIPOOL_CONFIG") {
            config = config.file(path)?;
        }
        config.env()
    }

    /// Adds the pools and defaults of a TOML file.
    ///
    /// # Errors
    /// [`RegistryError::File`] when it cannot be read or is not TOML (with the
    /// line and column, without the line's text, which may hold a password);
    /// [`RegistryError::Config`] naming the file, table and key of a bad entry.
    pub fn file(self, path: impl AsRef<std::path::Path>) -> Result<Self, RegistryError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::File {
            file: name.clone(),
            reason: e.to_string(),
        })?;
        self.toml(&text, &name)
    }

    /// Adds the pools and defaults of TOML text; `file` names it in errors.
    ///
    /// The text has a `[defaults]` table (engine knobs and protocol keys for
    /// every pool) and one `[pools.<name>]` table per pool, each with a `url`.
    /// Values are TOML strings, numbers or booleans, read by the same parser as
    /// the environment (`"30s"`, `20`, `"off"`); `headers` is a table.
    ///
    /// # Errors
    /// As [`file`](Self::file).
    pub fn toml(mut self, text: &str, file: &str) -> Result<Self, RegistryError> {
        let table: toml::Table = text.parse().map_err(|e| RegistryError::File {
            file: file.to_string(),
            reason: toml_reason(text, &e),
        })?;
        for (top, value) in table {
            let origin = |key: &str| Origin::File {
                file: file.to_string(),
                table: top.clone(),
                key: key.to_string(),
            };
            match top.as_str() {
                "defaults" => {
                    for (key, value) in as_table(value, || origin(""))? {
                        let setting = file_setting(&key, value, origin(&key), Layer::FileDefault)?;
                        self.push_default(setting)?;
                    }
                }
                "pools" => {
                    for (name, body) in as_table(value, || origin(""))? {
                        let table = format!("pools.{name}");
                        let origin = |key: &str| Origin::File {
                            file: file.to_string(),
                            table: table.clone(),
                            key: key.to_string(),
                        };
                        check_name(&name, &origin(""))?;
                        let index = self.declare(&name, &origin(""), true)?;
                        for (key, value) in as_table(body, || origin(""))? {
                            let setting = file_setting(&key, value, origin(&key), Layer::FilePool)?;
                            self.pools[index].settings.push(setting);
                        }
                    }
                }
                "fleet" => {
                    for (key, value) in as_table(value, || origin(""))? {
                        if key != "replicas" {
                            return Err(RegistryError::Config {
                                origin: origin(&key),
                                reason: format!("unknown key `{key}` (known: replicas)"),
                            });
                        }
                        let text = scalar(value).unwrap_or_default();
                        self.replicas = Some((replicas(&text, &origin(&key))?, origin(&key)));
                    }
                }
                _ => {
                    return Err(RegistryError::Config {
                        origin: origin(""),
                        reason: "unknown table: expected [defaults], [pools.<name>] or [fleet]"
                            .into(),
                    })
                }
            }
        }
        Ok(self)
    }

    /// Adds every `UNIPOOL_` variable of the process (see [`vars`](Self::vars)).
    ///
    /// # Errors
    /// As [`vars`](Self::vars); a `UNIPOOL_` variable that is not UTF-8 is an
    /// error naming it.
    pub fn env(self) -> Result<Self, RegistryError> {
        let mut vars = Vec::new();
        for (k, v) in std::env::vars_os() {
            let Some(k) = k.to_str().map(str::to_string) else {
                continue;
            };
            if !k.starts_with("UNIPOOL_") {
                continue;
            }
            let Some(v) = v.to_str().map(str::to_string) else {
                return Err(RegistryError::Config {
                    origin: Origin::Env { var: k },
                    reason: "the value is not valid UTF-8".into(),
                });
            };
            vars.push((k, v));
        }
        self.vars(vars)
    }

    /// Adds settings from variables (the process's, or any list in tests):
    /// `UNIPOOL_<NAME>_URL` declares pool `<name>` (lower-cased),
    /// `UNIPOOL_<NAME>_<KEY>` sets one of its keys, `UNIPOOL_DEFAULT_<KEY>` a
    /// default for every pool. `<KEY>` is matched against the known keys,
    /// longest first, so names may contain `_` (`UNIPOOL_USER_DB_MAX_SIZE`).
    /// Variables without the `UNIPOOL_` prefix are ignored, and so are
    /// `UNIPOOL_CONFIG`, `UNIPOOL_BENCH_*` and `UNIPOOL_SKIP_*`.
    ///
    /// # Errors
    /// [`RegistryError::Config`] naming the variable: no known key ends it, a
    /// bad pool name, `url` or `kind` as a default.
    pub fn vars<I, K, V>(mut self, vars: I) -> Result<Self, RegistryError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut pending_replicas = None;
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .filter(|(k, v)| {
                if k != "UNIPOOL_REPLICAS" {
                    return true;
                }
                pending_replicas = Some(v.clone());
                false
            })
            .filter(|(k, _)| {
                k.starts_with("UNIPOOL_")
                    && !RESERVED_VARS.contains(&k.as_str())
                    && !RESERVED_PREFIXES.iter().any(|p| k.starts_with(p))
            })
            .collect();
        if let Some(v) = pending_replicas {
            let origin = Origin::Env {
                var: "UNIPOOL_REPLICAS".into(),
            };
            self.replicas = Some((replicas(&v, &origin)?, origin));
        }
        vars.sort();
        let keys = keys::longest_first();
        for (var, value) in vars {
            let origin = Origin::Env { var: var.clone() };
            let rest = &var["UNIPOOL_".len()..];
            if let Some(key) = rest.strip_prefix("DEFAULT_") {
                let Some(key) = keys::canonical(key) else {
                    return Err(unknown_key(origin, key));
                };
                let setting = Setting {
                    key,
                    value: Value::Text(value),
                    origin,
                    layer: Layer::EnvDefault,
                };
                self.push_default(setting)?;
                continue;
            }
            let split = keys.iter().find_map(|key| {
                let cut = rest.len().checked_sub(key.len() + 1)?;
                (cut > 0
                    && rest.as_bytes()[cut] == b'_'
                    && rest[cut + 1..].eq_ignore_ascii_case(key))
                .then(|| (&rest[..cut], *key))
            });
            let Some((name, key)) = split else {
                return Err(RegistryError::Config {
                    origin,
                    reason: "not a pool setting: expected UNIPOOL_<NAME>_<KEY> or \
                             UNIPOOL_DEFAULT_<KEY>, with <KEY> one of url, kind, max_size, \
                             acquire_timeout, … (docs/configuration.md lists them)"
                        .into(),
                });
            };
            let name = name.to_ascii_lowercase();
            check_name(&name, &origin)?;
            let index = self.declare(&name, &origin, false)?;
            self.pools[index].settings.push(Setting {
                key,
                value: Value::Text(value),
                origin,
                layer: Layer::EnvPool,
            });
        }
        Ok(self)
    }

    /// The declared pool names, in name order.
    pub fn names(&self) -> Vec<&str> {
        self.pools.iter().map(|p| p.name.as_str()).collect()
    }

    fn push_default(&mut self, setting: Setting) -> Result<(), RegistryError> {
        if matches!(setting.key, "url" | "kind") {
            return Err(setting.error(format!(
                "`{}` cannot be a default: each pool has its own",
                setting.key
            )));
        }
        self.defaults.push(setting);
        Ok(())
    }

    /// The index of pool `name`, added if new. Names match case-insensitively
    /// (the environment's are upper-case); two spellings of one name in files
    /// are an error, since one of them is surely a mistake.
    fn declare(
        &mut self,
        name: &str,
        origin: &Origin,
        from_file: bool,
    ) -> Result<usize, RegistryError> {
        if let Some(i) = self
            .pools
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name))
        {
            let existing = &self.pools[i];
            if from_file && existing.name != name {
                let declared_in_file = existing
                    .settings
                    .iter()
                    .any(|s| matches!(s.origin, Origin::File { .. }));
                if declared_in_file || existing.settings.is_empty() {
                    return Err(RegistryError::Config {
                        origin: origin.clone(),
                        reason: format!(
                            "pool `{name}` differs only in case from pool `{}`: \
                             names are case-insensitive (the environment upper-cases them)",
                            existing.name
                        ),
                    });
                }
                // Declared by the environment first: the file's spelling wins.
                self.pools[i].name = name.to_string();
            }
            return Ok(i);
        }
        self.pools.push(Declared {
            name: name.to_string(),
            settings: Vec::new(),
        });
        Ok(self.pools.len() - 1)
    }
}

/// A pool name: a letter, then letters, digits and `_` (it becomes part of a
/// variable name), at most 64, not one of the reserved words.
/// The number of replicas, ≥ 1.
fn replicas(text: &str, origin: &Origin) -> Result<usize, RegistryError> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| RegistryError::Config {
            origin: origin.clone(),
            reason: format!(
                "invalid value {} for `replicas`: expected an integer ≥ 1",
                shown("replicas", text)
            ),
        })
}

fn check_name(name: &str, origin: &Origin) -> Result<(), RegistryError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let reason = if !ok {
        format!(
            "{name:?} is not a pool name: a letter, then letters, digits and `_`, \
             at most 64 (it becomes part of UNIPOOL_<NAME>_… variables)"
        )
    } else if RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        format!("{name:?} is reserved and cannot name a pool")
    } else {
        return Ok(());
    };
    Err(RegistryError::Config {
        origin: origin.clone(),
        reason,
    })
}

fn unknown_key(origin: Origin, key: &str) -> RegistryError {
    RegistryError::Config {
        origin,
        reason: format!(
            "unknown key `{key}` (known: url, kind, the engine's knobs such as max_size and \
             acquire_timeout, and each protocol's keys; docs/configuration.md lists them)"
        ),
    }
}

fn as_table(value: toml::Value, origin: impl Fn() -> Origin) -> Result<toml::Table, RegistryError> {
    match value {
        toml::Value::Table(t) => Ok(t),
        other => Err(RegistryError::Config {
            origin: origin(),
            reason: format!("expected a table, found a {}", other.type_str()),
        }),
    }
}

fn file_setting(
    key: &str,
    value: toml::Value,
    origin: Origin,
    layer: Layer,
) -> Result<Setting, RegistryError> {
    let Some(canonical) = keys::canonical(key) else {
        return Err(unknown_key(origin, key));
    };
    let bad = |found: &str| RegistryError::Config {
        origin: origin.clone(),
        reason: format!("expected a string, a number or a boolean, found {found}"),
    };
    let value = match value {
        toml::Value::Table(t) => {
            let mut pairs = Vec::new();
            for (k, v) in t {
                pairs.push((
                    k,
                    scalar(v).ok_or_else(|| bad("a nested table or an array"))?,
                ));
            }
            Value::Pairs(pairs)
        }
        other => {
            let found = other.type_str();
            Value::Text(scalar(other).ok_or_else(|| bad(found))?)
        }
    };
    Ok(Setting {
        key: canonical,
        value,
        origin,
        layer,
    })
}

fn scalar(value: toml::Value) -> Option<String> {
    Some(match value {
        toml::Value::String(s) => s,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => return None,
    })
}

/// toml's message with the line and column, without the quoted source line
/// that toml's `Display` adds (it may hold a password).
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("invalid TOML at line {line}, column {column}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    }
}
