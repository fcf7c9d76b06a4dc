//! `ConnectionPool<M>`: the cheap, cloneable handle users hold.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::acquire::{acquire, Budget};
use crate::builder::Builder;
use crate::config::PoolConfig;
use crate::dyn_pool::Pool;
use crate::error::PoolError;
use crate::guard::PooledConnection;
use crate::health::{BoxFuture, Health, HealthStatus};
use crate::inner::Inner;
use crate::manager::Manager;
use crate::stats::Stats;

/// A pool of connections made by `M`. Cloning is cheap (one `Arc`); all clones
/// share the connections.
///
/// ```
/// use pool_core::{ConnectionPool, Manager};
/// use std::convert::Infallible;
///
/// struct Counter;
/// impl Manager for Counter {
///     type Connection = u32;
///     type Error = Infallible;
///     async fn connect(&self) -> Result<u32, Infallible> { Ok(7) }
///     async fn check(&self, _: &mut u32) -> Result<(), Infallible> { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = ConnectionPool::builder().max_size(4).build(Counter)?;
/// let conn = pool.get().await?;
/// assert_eq!(*conn, 7);
/// drop(conn);
/// assert_eq!(pool.stats().idle, 1);
/// # Ok(()) }
/// ```
pub struct ConnectionPool<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for ConnectionPool<M> {
    fn clone(&self) -> Self {
        ConnectionPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M: Manager> ConnectionPool<M> {
    /// A [`Builder`] with the default configuration.
    pub fn builder() -> Builder<M> {
        Builder::new()
    }

    /// Builds a pool from `config` on the current tokio runtime.
    ///
    /// # Errors
    /// See [`Builder::build`].
    pub fn new(config: PoolConfig, manager: M) -> Result<Self, crate::ConfigError> {
        Builder::from_config(config).build(manager)
    }

    pub(crate) fn from_inner(inner: Arc<Inner<M>>) -> Self {
        ConnectionPool { inner }
    }

    /// No connection and no other handle, guard or connect task: only this
    /// handle holds the pool (a keyed pool may then forget the key).
    pub(crate) fn is_unused(&self) -> bool {
        Arc::strong_count(&self.inner) == 1 && self.inner.size() == 0
    }

    /// Checks out a connection, waiting up to `acquire_timeout`.
    ///
    /// Cancel-safe: dropping the future at any point loses no slot and no
    /// connection; a connect it started finishes in the background and its
    /// connection goes to the next caller.
    ///
    /// # Errors
    /// [`PoolError::Backend`] or [`PoolError::ConnectTimeout`] at once when the
    /// connect made for this caller fails; [`PoolError::Timeout`] (with the last
    /// connect error, if any) after `acquire_timeout`; [`PoolError::Closed`].
    #[track_caller]
    pub fn get(
        &self,
    ) -> impl Future<Output = Result<PooledConnection<'_, M>, PoolError<M::Error>>> + Send + '_
    {
        let site = Location::caller();
        acquire(
            &self.inner,
            Budget::Total(self.inner.config.acquire_timeout),
            site,
        )
    }

    /// Like [`get`](Self::get) with another wait limit.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<PooledConnection<'_, M>, PoolError<M::Error>>> + Send + '_
    {
        let site = Location::caller();
        acquire(&self.inner, Budget::Total(timeout), site)
    }

    /// Like [`get`](Self::get), returning a guard that does not borrow this handle
    /// (it can move into a spawned task).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_owned(
        &self,
    ) -> impl Future<Output = Result<PooledConnection<'static, M>, PoolError<M::Error>>> + Send + '_
    {
        self.acquire_owned(Location::caller())
    }

    /// A `get()` whose guard does not borrow this handle.
    async fn acquire_owned(
        &self,
        site: &'static Location<'static>,
    ) -> Result<PooledConnection<'static, M>, PoolError<M::Error>> {
        acquire(
            &self.inner,
            Budget::Total(self.inner.config.acquire_timeout),
            site,
        )
        .await
        .map(PooledConnection::into_owned)
    }

    /// Checks out an idle connection without waiting for one: when none is idle
    /// (or parked callers have waited past `fairness_window` and come first) it
    /// fails at once with `Timeout` (and starts opening one if there is room and
    /// nobody waits, so that a later call may succeed). The connection it takes
    /// is still reset and checked, each under `connect_timeout` as in `get()`.
    ///
    /// # Errors
    /// `Timeout` when no connection can be taken now; `Closed`.
    #[track_caller]
    pub fn try_get(
        &self,
    ) -> impl Future<Output = Result<PooledConnection<'_, M>, PoolError<M::Error>>> + Send + '_
    {
        let site = Location::caller();
        acquire(&self.inner, Budget::NoWait, site)
    }

    /// Checks out a connection from code that is not async, blocking the thread.
    /// Works outside the runtime (the usual case) and inside it (the wait then
    /// runs on a helper thread, so the runtime is not stalled by a nested block_on).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_blocking(&self) -> Result<PooledConnection<'static, M>, PoolError<M::Error>> {
        let fut = self.acquire_owned(Location::caller());
        if tokio::runtime::Handle::try_current().is_err() {
            return self.inner.handle.block_on(fut);
        }
        let handle = self.inner.handle.clone();
        std::thread::scope(|s| {
            s.spawn(move || handle.block_on(fut))
                .join()
                .unwrap_or(Err(PoolError::Closed))
        })
    }

    /// A snapshot of gauges and counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The pool's verdict from its counters (closed, cannot connect,
    /// saturated, or healthy); see [`Health`] for the probe.
    pub fn health(&self) -> HealthStatus {
        self.inner.health()
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The configuration in force.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Closes the pool (see [`Pool::close`]). Resolves `true` once every
    /// connection is closed, `false` if `timeout` passed first.
    pub async fn close(&self, timeout: Duration) -> bool {
        self.inner.close(timeout).await
    }

    /// Sets `max_size` at run time. Growing (up to `grow_limit`) serves
    /// parked callers at once; shrinking closes idle connections now and
    /// the surplus in use as it comes back, so that once they are back no
    /// more than `n` are alive; no connection is opened while above `n`.
    /// [`stats()`](Self::stats) shows the new limit, [`config()`](Self::config)
    /// the one the pool was built with.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`](crate::ConfigError::Invalid) naming
    /// `max_size`: 0, above `grow_limit` (or the built `max_size` when
    /// `grow_limit` is 0), or below `min_idle`.
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
    /// let pool = ConnectionPool::builder().max_size(4).grow_limit(16).build(Numbers)?;
    /// pool.set_max_size(16)?;
    /// assert_eq!(pool.stats().max_size, 16);
    /// assert!(pool.set_max_size(17).is_err());
    /// # Ok(()) }
    /// ```
    pub fn set_max_size(&self, n: usize) -> Result<(), crate::ConfigError> {
        self.inner.set_max_size(n)
    }

    /// Sets `min_idle` at run time; connections it now asks for are opened
    /// at once, not at the next reaper pass.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`](crate::ConfigError::Invalid) naming
    /// `min_idle` when it is above the current `max_size`.
    pub fn set_min_idle(&self, n: usize) -> Result<(), crate::ConfigError> {
        self.inner.set_min_idle(n)
    }

    /// Retires every connection alive now and every connect in flight, for a
    /// credential rotation without a restart: idle connections close now, the
    /// ones in use when returned, and a connect that began before this call is
    /// discarded when it completes, whatever its result, and made again. Once
    /// it returns, no `get()` hands out a connection made before it. With a
    /// manager that reads its credentials on each connect, rotating is: update
    /// the credentials, then call `evict_all` (docs/configuration.md).
    pub fn evict_all(&self) {
        self.inner.evict_all();
    }

    /// Hands the observer what idle connections logged in their last
    /// millisecond of use: checkouts and returns reach an
    /// [`Observer`](crate::Observer) in batches, and a connection that went
    /// idle keeps its last ones until its next use or the reaper's next pass.
    /// Call it before reading what an observer gathered (exporters do). A
    /// connection in use hands over its events when it is returned.
    pub fn flush_events(&self) {
        self.inner.flush_events();
    }

    /// `true` once `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Runs one reaper pass now (what the reaper does every `reap_interval`).
    pub async fn reap_now(&self) {
        self.inner.reap().await;
    }
}

impl<M: Manager> fmt::Debug for ConnectionPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.stats();
        f.debug_struct("ConnectionPool")
            .field("name", &self.inner.name)
            .field("kind", &self.inner.manager.kind())
            .field("size", &s.size)
            .field("idle", &s.idle)
            .field("max_size", &s.max_size)
            .finish()
    }
}

impl<M: Manager> Pool for ConnectionPool<M> {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &str {
        self.inner.manager.kind()
    }

    fn flush_events(&self) {
        ConnectionPool::flush_events(self);
    }

    fn stats(&self) -> Stats {
        self.inner.stats()
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(self.inner.close(timeout))
    }

    fn last_error(&self) -> Option<String> {
        self.inner.last_error().map(|e| e.to_string())
    }
}

impl<M: Manager> Health for ConnectionPool<M> {
    fn health(&self) -> HealthStatus {
        self.inner.health()
    }

    /// Checks out a connection within `timeout` and runs `Manager::check` on
    /// it; a connection whose check fails is closed. A failure of either step
    /// is `Unhealthy` with its cause; otherwise the cheap verdict stands.
    fn probe(&self, timeout: Duration) -> BoxFuture<'_, HealthStatus> {
        Box::pin(async move {
            let cheap = self.inner.health();
            if self.is_closed() {
                return cheap;
            }
            let deadline = tokio::time::Instant::now() + timeout;
            let mut conn = match self.get_timeout(timeout).await {
                Ok(conn) => conn,
                Err(e) => {
                    return HealthStatus::Unhealthy {
                        reason: format!("probe: {e}"),
                    }
                }
            };
            conn.set_dirty(true);
            let checked =
                tokio::time::timeout_at(deadline, self.inner.manager.check(&mut conn)).await;
            match checked {
                Ok(Ok(())) => {
                    conn.set_dirty(false);
                    cheap
                }
                Ok(Err(e)) => HealthStatus::Unhealthy {
                    reason: format!("probe: check failed: {e}"),
                },
                Err(_) => HealthStatus::Unhealthy {
                    reason: format!(
                        "probe: check did not answer within {}",
                        humantime::format_duration(timeout)
                    ),
                },
            }
        })
    }
}
