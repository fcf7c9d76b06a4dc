//! `Pool`: the object-safe face every pool shows to registries, exporters and
//! shutdown, whatever its protocol.

use std::fmt::Debug;
use std::time::Duration;

use crate::health::{BoxFuture, Health};
use crate::stats::Stats;

/// What a registry needs to know of a pool, on top of its [`Health`]. Held as
/// `Arc<dyn Pool>`.
pub trait Pool: Health + Debug {
    /// The pool's name (unique within a registry).
    fn name(&self) -> &str;
    /// The protocol: `"postgres"`, `"redis"`, `"http"`, … (`Manager::kind`).
    fn kind(&self) -> &str;
    /// A cheap snapshot of gauges and counters.
    fn stats(&self) -> Stats;
    /// Closes the pool: waiting and new `get()`s fail with `Closed` at once, idle
    /// connections close now and the ones in use on return. Resolves `true` once
    /// all are closed, `false` if `timeout` passed first.
    fn close(&self, timeout: Duration) -> BoxFuture<'_, bool>;
    /// The last failure to open a connection, whenever it happened (`None`
    /// if none did, or the pool does not track it). Never holds a password.
    fn last_error(&self) -> Option<String> {
        None
    }

    /// Hands the observer what idle connections logged in their last
    /// millisecond of use ([`Observer`](crate::Observer): checkouts and
    /// returns come in batches). Exporters call it before they read; a pool
    /// without an observer, or not on pool-core's engine, does nothing.
    fn flush_events(&self) {}
}
