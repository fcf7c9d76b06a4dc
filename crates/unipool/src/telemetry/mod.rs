//! Feature `prometheus`: what a registry's pools say about themselves, for
//! machines — `/metrics` in the Prometheus text format and
//! `/health/connections` as JSON — as an axum [`Router`](axum::Router) an
//! application mounts, or on a side port with [`serve`].
//!
//! Everything is read from the pools at request time (their `Stats`
//! snapshots and health verdicts): a scrape costs a few atomic loads per
//! pool and nothing is recorded on the pools' hot paths. Names, units and
//! labels: docs/metrics.md.

mod health;
mod metrics;

use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::Registry;

pub use health::health_json;
pub use metrics::metrics_text;

/// The content type of the Prometheus text format (OpenMetrics 1.0).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics` and `GET /health/connections` over `registry`'s pools.
pub fn router(registry: Registry) -> Router {
    let metrics = {
        let registry = registry.clone();
        move || async move {
            (
                [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
                metrics_text(&registry),
            )
        }
    };
    let health = move || async move {
        let (up, body) = health_json(&registry);
        let status = if up {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/connections", get(health))
}

/// Serves [`router`] on `addr` (a side port) until the task is dropped or
/// the listener fails.
///
/// # Errors
/// The listener's error: the address is taken, or not this machine's.
pub async fn serve(addr: SocketAddr, registry: Registry) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(registry)).await
}
