//! `Builder`: a `PoolConfig` plus a name, validated by `build()`.

use std::marker::PhantomData;
use std::sync::Arc;

use tokio::runtime::Handle;

use crate::clock::Clock;
use crate::config::{ConfigError, PoolConfig};
use crate::inner::Inner;
use crate::knobs::knob_table;
use crate::limit::TotalLimit;
use crate::manager::Manager;
use crate::pool::ConnectionPool;
use crate::reaper;

/// Builds a [`ConnectionPool`]. Every setter mirrors a [`PoolConfig`] field (see
/// there for defaults); nothing is checked until [`build`](Self::build).
pub struct Builder<M> {
    config: PoolConfig,
    name: Option<String>,
    // `fn() -> M`: the builder neither owns nor shares an `M`, so it is Send and
    // Sync whatever `M` is; the parameter only lets `ConnectionPool::builder()` infer it.
    _manager: PhantomData<fn() -> M>,
}

impl<M> Default for Builder<M> {
    fn default() -> Self {
        Builder {
            config: PoolConfig::default(),
            name: None,
            _manager: PhantomData,
        }
    }
}

impl<M> Clone for Builder<M> {
    fn clone(&self) -> Self {
        Builder {
            config: self.config.clone(),
            name: self.name.clone(),
            _manager: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("name", &self.name)
            .finish()
    }
}

/// Generates one setter per knob of the table in `knobs.rs`, with its doc.
macro_rules! define_setters {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:literal, $form:literal;)*) => {
        impl<M: Manager> Builder<M> {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!("Default: `", $default, "`.")]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.config.$name = value;
                    self
                }
            )*
        }
    };
}

knob_table!(define_setters);

impl<M: Manager> Builder<M> {
    /// A builder with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from an existing configuration (from TOML or the environment).
    pub fn from_config(config: PoolConfig) -> Self {
        Builder {
            config,
            name: None,
            _manager: PhantomData,
        }
    }

    /// The pool's name in logs, stats and health reports. Default: the manager's kind.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The configuration as set so far.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Validates the configuration and starts the pool (and its reaper) on the
    /// current tokio runtime. Connections are opened lazily, except `min_idle`
    /// ones, which the reaper starts opening at once.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid knob, or [`ConfigError::NoRuntime`]
    /// when called outside a tokio runtime.
    pub fn build(self, manager: M) -> Result<ConnectionPool<M>, ConfigError> {
        self.config.validate()?;
        let handle = Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let clock = Clock::start(self.config.validate_after, &handle);
        Ok(self.start(manager, handle, None, clock))
    }

    /// Starts a pool whose configuration was validated, on `handle` (a keyed
    /// pool's sub-pools: one check at the keyed pool's build, not one per key).
    pub(crate) fn start(
        self,
        manager: M,
        handle: Handle,
        total: Option<Arc<TotalLimit>>,
        clock: Arc<Clock>,
    ) -> ConnectionPool<M> {
        let name = self.name.unwrap_or_else(|| manager.kind().to_string());
        let inner = Inner::new(manager, self.config, name, handle, total.clone(), clock);
        if let Some(total) = total {
            let weak: std::sync::Weak<dyn crate::limit::Capacity> = Arc::downgrade(&inner) as _;
            total.register(weak);
        }
        reaper::spawn(&inner);
        inner.top_up_min_idle();
        ConnectionPool::from_inner(inner)
    }
}
