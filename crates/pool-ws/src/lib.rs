//! # pool-ws
//!
//! A bounded, heartbeated WebSocket pool keyed by URL, on pool-core's
//! `KeyedPool` and tokio-tungstenite: [`WsPool::get`] leases an open
//! WebSocket for a URL under a per-URL and a total limit; idle connections are
//! pinged, closed with a Close frame when too old or idle too long, and what
//! arrives on them while idle never reaches the next holder.
//! [`WsPool::send_recv`] serves request/response peers, [`WsPool::subscribe`]
//! streaming ones (reconnecting, resubscribing). See `docs/ws.md`.

mod address;
mod closing;
mod config;
mod conn;
mod endpoint;
mod error;
mod manager;
mod pool;
mod stats;
mod subscribe;
mod tls;
mod tracked;

pub use config::WsConfig;
pub use conn::{WsConnection, READ_POLL};
pub use endpoint::WsEndpoint;
pub use error::WsError;
pub use manager::WsManager;
pub use pool::{WsLease, WsPool};
pub use stats::WsStats;
pub use subscribe::{Subscription, SubscriptionEvent};
pub use tokio_tungstenite::tungstenite::Message;

/// tokio-tungstenite, re-exported for its types.
pub use tokio_tungstenite;
