//! # pool-http
//!
//! reqwest already keeps sockets alive per host. What services lacked is around
//! it: one shared client per service instead of one per call site, limits on
//! in-flight requests, a count of the connections actually opened (so reuse is
//! measured, not hoped for), HTTP/2, and retries that are safe.
//!
//! - [`HttpPool`]: one service (a name + base URL): its shared `reqwest::Client`,
//!   total and per-host in-flight limits (FIFO, with an acquire timeout), retries
//!   (exponential backoff, full jitter, `Retry-After`), and [`HttpStats`];
//! - [`HttpRegistry`]: many services, each built once — asking twice for a name
//!   returns the same pool;
//! - [`BlockingHttpPool`]: the same for code outside async.
//!
//! ```no_run
//! use pool_http::{HttpConfig, HttpPool};
//!
//! # async fn demo() -> Result<(), pool_http::HttpError> {
//! let api = HttpPool::new("billing", HttpConfig::with_base_url("https://billing.internal/v1/")?)?;
//! let resp = api.send(api.get("invoices/42")?).await?;
//! println!("{} {:?}", resp.status(), api.stats());
//! # Ok(()) }
//! ```

mod blocking;
mod config;
mod counting;
mod error;
mod limit;
mod pool;
mod registry;
mod retry;
mod tracking;

pub use blocking::{BlockingHttpPool, BlockingResponse};
pub use config::{Auth, HttpConfig, RetryPolicy};
pub use error::HttpError;
pub use pool::{HostStats, HttpPool, HttpStats};
pub use registry::HttpRegistry;

pub use reqwest;
