//! `BlockingHttpPool`: the same service for code outside async.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use crate::config::HttpConfig;
use crate::error::HttpError;
use crate::pool::HttpPool;

/// A response read whole (status, headers, body).
#[derive(Debug, Clone)]
pub struct BlockingResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// An [`HttpPool`] driven by its own small runtime (one worker thread), for
/// callers that are not async. Do not call it from inside an async task: it
/// blocks the thread.
#[derive(Debug, Clone)]
pub struct BlockingHttpPool {
    pool: HttpPool,
    rt: Arc<tokio::runtime::Runtime>,
}

impl BlockingHttpPool {
    /// Builds the service and its runtime.
    ///
    /// # Errors
    /// [`HttpError::Config`].
    pub fn new(name: &str, config: HttpConfig) -> Result<Self, HttpError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("unipool-http-{name}"))
            .enable_all()
            .build()
            .map_err(|e| HttpError::Config(format!("runtime: {e}")))?;
        let pool = {
            let _enter = rt.enter();
            HttpPool::new(name, config)?
        };
        Ok(BlockingHttpPool {
            pool,
            rt: Arc::new(rt),
        })
    }

    /// The async pool behind it (same client, limits and stats).
    pub fn pool(&self) -> &HttpPool {
        &self.pool
    }

    /// Sends `method path` with an optional body and reads the whole response.
    ///
    /// # Errors
    /// As [`HttpPool::send`].
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<BlockingResponse, HttpError> {
        let pool = self.pool.clone();
        let path = path.to_string();
        self.rt.block_on(async move {
            let mut req = pool.request(method, &path)?;
            if let Some(b) = body {
                req = req.body(b);
            }
            let resp = pool.send(req).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map_err(|e| HttpError::Request {
                service: pool.name().to_string(),
                host: path.clone(),
                source: e.without_url(),
            })?;
            Ok(BlockingResponse {
                status,
                headers,
                body: body.to_vec(),
            })
        })
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`HttpPool::send`].
    pub fn get(&self, path: &str) -> Result<BlockingResponse, HttpError> {
        self.send(Method::GET, path, None)
    }
}
