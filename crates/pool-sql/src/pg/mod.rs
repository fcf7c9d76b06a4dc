//! PostgreSQL on tokio-postgres.

mod helpers;
mod manager;
mod tls;
mod unnamed;

pub use helpers::PgPoolExt;
pub use manager::{PasswordProvider, PgConnection, PgManager, RecyclePolicy};

/// A pool of PostgreSQL connections.
pub type PgPool = pool_core::ConnectionPool<PgManager>;
