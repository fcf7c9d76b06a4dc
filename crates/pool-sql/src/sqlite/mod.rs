//! SQLite on rusqlite (bundled): the embedded default, no server needed.

mod helpers;
mod manager;

pub use helpers::{SqlitePoolExt, SqliteRow};
pub use manager::{SqliteConnection, SqliteManager};

/// A pool of SQLite connections.
pub type SqlitePool = pool_core::ConnectionPool<SqliteManager>;
