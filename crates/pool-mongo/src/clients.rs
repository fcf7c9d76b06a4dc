//! `MongoClients`: one pool per URI or service name, built once.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::MongoConfig;
use crate::error::MongoError;
use crate::pool::MongoPool;

/// Pools by name: [`pool`](Self::pool) builds one the first time and returns
/// the same one (same client, same stats) afterwards — the fix for "a client
/// per call" when a pool cannot be passed down from `main`.
#[derive(Debug, Default)]
pub struct MongoClients {
    pools: Mutex<HashMap<String, MongoPool>>,
}

impl MongoClients {
    /// No pools yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pool named `name` (a service name, or the URI itself), built for
    /// `uri` from `config()` on first use only; later calls return it
    /// whatever their `uri` (the name is the key).
    ///
    /// # Errors
    /// As [`MongoPool::named`], on the first call for `name`.
    pub fn pool(
        &self,
        name: &str,
        uri: &str,
        config: impl FnOnce() -> MongoConfig,
    ) -> Result<MongoPool, MongoError> {
        let mut pools = pool_core::util::lock(&self.pools);
        if let Some(p) = pools.get(name) {
            return Ok(p.clone());
        }
        let pool = MongoPool::named(name, uri, config())?;
        pools.insert(name.to_string(), pool.clone());
        Ok(pool)
    }

    /// Every pool built so far.
    pub fn all(&self) -> Vec<MongoPool> {
        pool_core::util::lock(&self.pools)
            .values()
            .cloned()
            .collect()
    }
}
