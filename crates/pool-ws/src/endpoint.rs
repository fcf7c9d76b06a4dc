//! `WsEndpoint`: one URL of a pool, for callers that are given a service
//! rather than a URL (the umbrella's registry).

use std::fmt;

use crate::address::parse;
use crate::error::WsError;
use crate::pool::{WsLease, WsPool};
use crate::subscribe::Subscription;
use crate::Message;

/// One URL of a [`WsPool`]: the pool's calls without the URL argument (what
/// the umbrella's registry hands out for a declared `ws://` service).
#[derive(Clone)]
pub struct WsEndpoint {
    pool: WsPool,
    /// May hold a password: shown only through `redact_url`.
    url: String,
}

impl fmt::Debug for WsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsEndpoint")
            .field("pool", &self.pool)
            .field("url", &self.url())
            .finish()
    }
}

impl WsPool {
    /// The endpoint for `url`.
    ///
    /// # Errors
    /// [`WsError::InvalidUrl`] as [`get`](Self::get).
    pub fn endpoint(&self, url: &str) -> Result<WsEndpoint, WsError> {
        parse(url)?;
        Ok(WsEndpoint {
            pool: self.clone(),
            url: url.to_string(),
        })
    }
}

impl WsEndpoint {
    /// [`WsPool::get`] for this URL.
    ///
    /// # Errors
    /// As [`WsPool::get`].
    pub async fn get(&self) -> Result<WsLease, WsError> {
        self.pool.get(&self.url).await
    }

    /// [`WsPool::send_recv`] to this URL.
    ///
    /// # Errors
    /// As [`WsPool::send_recv`].
    pub async fn send_recv(&self, msg: impl Into<Message>) -> Result<Message, WsError> {
        self.pool.send_recv(&self.url, msg).await
    }

    /// [`WsPool::subscribe`] to this URL.
    ///
    /// # Errors
    /// As [`WsPool::subscribe`].
    pub fn subscribe(
        &self,
        on_connect: impl Fn() -> Vec<Message> + Send + Sync + 'static,
    ) -> Result<Subscription, WsError> {
        self.pool.subscribe(&self.url, on_connect)
    }

    /// The pool behind it.
    pub fn pool(&self) -> &WsPool {
        &self.pool
    }

    /// The URL, redacted.
    pub fn url(&self) -> String {
        pool_core::util::redact_url(&self.url)
    }
}
