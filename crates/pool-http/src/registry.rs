//! `HttpRegistry`: many services, each built once.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::HttpConfig;
use crate::error::HttpError;
use crate::pool::HttpPool;

/// Named HTTP services. `service(name, ..)` builds a pool the first time and
/// returns the same pool (same client, same limits, same stats) afterwards —
/// the fix for "a client per call".
#[derive(Debug, Default)]
pub struct HttpRegistry {
    services: Mutex<HashMap<String, HttpPool>>,
}

impl HttpRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pool of `name`, built from `config()` on first use only.
    ///
    /// # Errors
    /// [`HttpError::Config`] when the first build fails.
    pub fn service(
        &self,
        name: &str,
        config: impl FnOnce() -> HttpConfig,
    ) -> Result<HttpPool, HttpError> {
        let mut services = pool_core::util::lock(&self.services);
        if let Some(p) = services.get(name) {
            return Ok(p.clone());
        }
        let pool = HttpPool::new(name, config())?;
        services.insert(name.to_string(), pool.clone());
        Ok(pool)
    }

    /// The pool of `name`, if built.
    pub fn get(&self, name: &str) -> Option<HttpPool> {
        pool_core::util::lock(&self.services).get(name).cloned()
    }

    /// Every service.
    pub fn all(&self) -> Vec<HttpPool> {
        pool_core::util::lock(&self.services)
            .values()
            .cloned()
            .collect()
    }
}
