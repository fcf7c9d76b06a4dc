//! In-flight limits on the engine: a pool-core `ConnectionPool` whose
//! "connections" are unit permits. Its idle fast path takes no lock (a tokio
//! semaphore locks its wait list on every release), and `fairness_window = 0`
//! makes queued requests strictly FIFO once a limit is reached.

use std::convert::Infallible;
use std::time::Duration;

use pool_core::{ConfigError, ConnectionPool, Manager, PoolConfig};

/// Makes permits: nothing to open, check or reset.
#[derive(Debug)]
pub(crate) struct Permits;

impl Manager for Permits {
    type Connection = ();
    type Error = Infallible;

    async fn connect(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn check(&self, _: &mut ()) -> Result<(), Infallible> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "http-limit"
    }
}

/// A limit of `max` requests in flight, waited for at most `acquire_timeout`.
pub(crate) fn limit(
    name: String,
    max: usize,
    acquire_timeout: Duration,
) -> Result<ConnectionPool<Permits>, ConfigError> {
    pool_core::Builder::from_config(PoolConfig {
        max_size: max,
        // All permits exist from the start, and none ever expires.
        min_idle: max,
        acquire_timeout,
        idle_timeout: None,
        max_lifetime: None,
        keepalive_interval: None,
        validate_after: Duration::from_secs(3600),
        reap_interval: Duration::from_secs(3600),
        fairness_window: Duration::ZERO,
        ..PoolConfig::default()
    })
    .name(name)
    .build(Permits)
}
