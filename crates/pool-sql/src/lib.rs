//! # pool-sql
//!
//! PostgreSQL and SQLite pools on the unipool engine (`pool-core`).
//!
//! - [`PgManager`] / [`PgPool`] (feature `postgres`): tokio-postgres, TLS through
//!   rustls when the URL asks for it, a recycle policy ([`RecyclePolicy`]);
//! - [`SqliteManager`] / [`SqlitePool`] (feature `sqlite`): rusqlite (bundled),
//!   every blocking call on tokio's blocking threads — the embedded default;
//! - the same helpers on both ([`PgPoolExt`], [`SqlitePoolExt`]): `query`,
//!   `execute`, `execute_many` (one transaction), `transaction`.
//!
//! ```no_run
//! use pool_sql::{PgManager, PgPool, PgPoolExt};
//!
//! # async fn demo() -> Result<(), pool_sql::SqlError> {
//! let pool: PgPool = PgPool::builder()
//!     .max_size(16)
//!     .build(PgManager::from_url("postgres://postgres@127.0.0.1/test")?)?;
//! let rows = pool.query("SELECT $1::int4 + 1", &[&41i32]).await?;
//! assert_eq!(rows[0].get::<_, i32>(0), 42);
//! # Ok(()) }
//! ```

#[cfg(feature = "postgres")]
mod catch_unwind;
mod error;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use error::{DbError, SqlError};
#[cfg(feature = "postgres")]
pub use pg::{PasswordProvider, PgConnection, PgManager, PgPool, PgPoolExt, RecyclePolicy};
pub use pool_core::util::redact_url;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConnection, SqliteManager, SqlitePool, SqlitePoolExt, SqliteRow};

/// The engine, re-exported for convenience.
pub use pool_core;
#[cfg(feature = "sqlite")]
pub use rusqlite;
#[cfg(feature = "postgres")]
pub use tokio_postgres;
