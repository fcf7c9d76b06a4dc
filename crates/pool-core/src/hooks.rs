//! Hooks: async steps added to a pool's life cycle, each under
//! `connect_timeout` — after a connect (a `SET search_path`, a handshake),
//! before a checkout (may refuse a connection), after a return (may discard
//! it) — and the observer of the pool's events (`events.rs`). Installed on
//! the [`Builder`](crate::Builder); without them a pool pays one predictable
//! branch per checkout and per return.

use std::sync::Arc;

use crate::events::Observer;
use crate::health::BoxFuture;
use crate::manager::Manager;

/// A hook: an async step on a connection that may fail with the manager's
/// error. Build one from a closure returning a boxed future:
/// `|conn| Box::pin(async move { … Ok(()) })`.
pub type Hook<M> = Arc<
    dyn for<'c> Fn(
            &'c mut <M as Manager>::Connection,
        ) -> BoxFuture<'c, Result<(), <M as Manager>::Error>>
        + Send
        + Sync,
>;

/// The user's code one pool calls.
pub(crate) struct Hooks<M: Manager> {
    /// After a successful connect; its failure fails the connect (at once,
    /// not retried unless the manager calls the error transient).
    pub(crate) after_connect: Option<Hook<M>>,
    /// Before a connection is handed out; its failure closes the connection
    /// and the next one is tried.
    pub(crate) before_checkout: Option<Hook<M>>,
    /// After a connection is returned; its failure closes it. Runs on a task
    /// (the return itself never waits).
    pub(crate) after_return: Option<Hook<M>>,
    /// Told of every event (`events.rs`).
    pub(crate) observer: Option<Arc<dyn Observer>>,
}

impl<M: Manager> Default for Hooks<M> {
    fn default() -> Self {
        Hooks {
            after_connect: None,
            before_checkout: None,
            after_return: None,
            observer: None,
        }
    }
}

impl<M: Manager> Clone for Hooks<M> {
    fn clone(&self) -> Self {
        Hooks {
            after_connect: self.after_connect.clone(),
            before_checkout: self.before_checkout.clone(),
            after_return: self.after_return.clone(),
            observer: self.observer.clone(),
        }
    }
}
