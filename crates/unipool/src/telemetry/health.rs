//! `/health/connections`: Spring Boot Actuator's shape,
//! `{status, components: {<pool>: {status, details: {...}}}}`.

use serde_json::{json, Map, Value};

use crate::{HealthStatus, Registry};

/// The health of every pool as JSON, and whether every pool is up (healthy
/// or degraded: HTTP 200; otherwise 503). Statuses: `UP`, `DEGRADED` (up,
/// with a `reason`), `DOWN`.
pub fn health_json(registry: &Registry) -> (bool, String) {
    let health = registry.health();
    let stats = registry.stats();
    let checked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    #[cfg(feature = "http")]
    let http = registry.http_pools();
    let mut components = Map::new();
    for p in &health.pools {
        let s = stats
            .iter()
            .find(|s| s.name == p.name)
            .map(|s| s.stats.clone())
            .unwrap_or_default();
        let mut details = json!({
            "kind": p.kind.name(),
            "target": registry.target(&p.name),
            "size": s.size,
            "idle": s.idle,
            "in_use": s.in_use,
            "pending": s.waiting,
            "max": s.max_size,
            "reuse_rate": s.reuse_rate,
            "error_rate": p.error_rate,
            "last_error": p.last_error,
            "last_check": checked,
        });
        if let Some(reason) = reason(&p.status) {
            details["reason"] = Value::from(reason);
        }
        #[cfg(feature = "http")]
        if let Some((_, pool)) = http.iter().find(|(name, _)| *name == p.name) {
            details["hosts"] = hosts(pool);
        }
        components.insert(
            p.name.clone(),
            json!({ "status": status(&p.status), "details": details }),
        );
    }
    let up = !matches!(health.status, HealthStatus::Unhealthy { .. });
    let body = json!({ "status": status(&health.status), "components": components });
    (up, body.to_string())
}

fn status(s: &HealthStatus) -> &'static str {
    match s {
        HealthStatus::Healthy => "UP",
        HealthStatus::Degraded { .. } => "DEGRADED",
        HealthStatus::Unhealthy { .. } => "DOWN",
    }
}

fn reason(s: &HealthStatus) -> Option<&str> {
    match s {
        HealthStatus::Healthy => None,
        HealthStatus::Degraded { reason } | HealthStatus::Unhealthy { reason } => Some(reason),
    }
}

/// An HTTP pool's figures per host (seed 002's "efficiency").
#[cfg(feature = "http")]
fn hosts(pool: &pool_http::HttpPool) -> Value {
    pool.stats()
        .hosts
        .iter()
        .map(|h| {
            json!({
                "host": h.host,
                "requests": h.requests,
                "connections_opened": h.connections_opened,
                "open_connections": h.open_connections,
                "reuse_rate": h.reuse_rate,
                "error_rate": if h.requests == 0 { 0.0 } else { h.failures as f64 / h.requests as f64 },
            })
        })
        .collect()
}
