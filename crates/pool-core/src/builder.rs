//! `Builder`: a `PoolConfig` plus a name, validated by `build()`.

use std::marker::PhantomData;
use std::sync::Arc;

use tokio::runtime::Handle;

use crate::clock::Clock;
use crate::config::{ConfigError, PoolConfig};
use crate::events::Observer;
use crate::health::BoxFuture;
use crate::hooks::Hooks;
use crate::inner::Inner;
use crate::knobs::knob_table;
use crate::limit::TotalLimit;
use crate::manager::Manager;
use crate::pool::ConnectionPool;
use crate::reaper;

/// Builds a [`ConnectionPool`]. Every setter mirrors a [`PoolConfig`] field (see
/// there for defaults); nothing is checked until [`build`](Self::build).
pub struct Builder<M: Manager> {
    config: PoolConfig,
    name: Option<String>,
    hooks: Hooks<M>,
    // `fn() -> M`: the builder neither owns nor shares an `M`; the parameter
    // only lets `ConnectionPool::builder()` infer it.
    _manager: PhantomData<fn() -> M>,
}

impl<M: Manager> Default for Builder<M> {
    fn default() -> Self {
        Builder {
            config: PoolConfig::default(),
            name: None,
            hooks: Hooks::default(),
            _manager: PhantomData,
        }
    }
}

impl<M: Manager> Clone for Builder<M> {
    fn clone(&self) -> Self {
        Builder {
            config: self.config.clone(),
            name: self.name.clone(),
            hooks: self.hooks.clone(),
            _manager: PhantomData,
        }
    }
}

impl<M: Manager> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("name", &self.name)
            .field("after_connect", &self.hooks.after_connect.is_some())
            .field("before_checkout", &self.hooks.before_checkout.is_some())
            .field("after_return", &self.hooks.after_return.is_some())
            .field("observer", &self.hooks.observer.is_some())
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
            hooks: Hooks::default(),
            _manager: PhantomData,
        }
    }

    /// Runs `hook` on every new connection, under `connect_timeout`, before it
    /// is handed out or kept: its failure fails the connect, at once (the
    /// caller gets the hook's error; retried only if the manager calls it
    /// transient). For session setup: `SET search_path`, a handshake.
    ///
    /// ```
    /// # use pool_core::{ConnectionPool, Manager};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(0) }
    /// #     async fn check(&self, _: &mut u64) -> Result<(), std::io::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = ConnectionPool::builder()
    ///     .after_connect(|n: &mut u64| Box::pin(async move { *n = 42; Ok(()) }))
    ///     .build(Numbers)?;
    /// assert_eq!(*pool.get().await?, 42);
    /// # Ok(()) }
    /// ```
    pub fn after_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut M::Connection) -> BoxFuture<'c, Result<(), M::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.after_connect = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` before each checkout (after `reset` and `check`), under
    /// `connect_timeout` and within the caller's `acquire_timeout`: its failure
    /// closes that connection and the next one is tried; the caller's slot is
    /// not lost.
    pub fn before_checkout<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut M::Connection) -> BoxFuture<'c, Result<(), M::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.before_checkout = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` after each return, on a task (the return never waits for
    /// it), under `connect_timeout`: its failure closes the connection instead
    /// of keeping it. Until it finishes the connection is counted in use.
    pub fn after_return<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut M::Connection) -> BoxFuture<'c, Result<(), M::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.after_return = Some(Arc::new(hook));
        self
    }

    /// Tells `observer` of every event of the pool ([`Event`](crate::Event)):
    /// for metrics. With one installed the pool's coarse clock ticks every
    /// millisecond (use times are read from it) and each checkout is
    /// timestamped; without one the pool pays a branch per checkout and return.
    ///
    /// ```
    /// # use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// # use pool_core::{ConnectionPool, Event, Manager, Observer};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(0) }
    /// #     async fn check(&self, _: &mut u64) -> Result<(), std::io::Error> { Ok(()) }
    /// # }
    /// #[derive(Default)]
    /// struct Opened(AtomicU64);
    /// impl Observer for Opened {
    ///     fn on_event(&self, _pool: &str, event: Event) {
    ///         if let Event::Created { .. } = event {
    ///             self.0.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let opened = Arc::new(Opened::default());
    /// let pool = ConnectionPool::builder().observer(opened.clone()).build(Numbers)?;
    /// drop(pool.get().await?);
    /// assert_eq!(opened.0.load(Ordering::Relaxed), 1);
    /// # Ok(()) }
    /// ```
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.hooks.observer = Some(observer);
        self
    }

    /// [`observer`](Self::observer), if `observer` is `Some` (for the
    /// protocol crates, whose configurations carry an optional one).
    pub fn observer_opt(self, observer: Option<&crate::SharedObserver>) -> Self {
        match observer {
            Some(o) => self.observer(o.0.clone()),
            None => self,
        }
    }

    /// The configuration and hooks (a keyed pool hands them to its sub-pools).
    pub(crate) fn into_parts(self) -> (PoolConfig, Hooks<M>) {
        (self.config, self.hooks)
    }

    /// A builder from a configuration and hooks.
    pub(crate) fn from_parts(config: PoolConfig, hooks: Hooks<M>) -> Self {
        Builder {
            config,
            name: None,
            hooks,
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
        let clock = Clock::start(
            self.config.validate_after,
            self.hooks.observer.is_some(),
            &handle,
        );
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
        let inner = Inner::new(
            manager,
            self.config,
            name,
            handle,
            total.clone(),
            clock,
            self.hooks,
        );
        if let Some(total) = total {
            let weak: std::sync::Weak<dyn crate::limit::Capacity> = Arc::downgrade(&inner) as _;
            total.register(weak);
        }
        reaper::spawn(&inner);
        inner.top_up_min_idle();
        ConnectionPool::from_inner(inner)
    }
}
