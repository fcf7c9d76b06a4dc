//! Errors of pool-sql: the pool's (which phase failed) or the database's own.

use pool_core::PoolError;

/// A backend failure: the database's own error is the `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// PostgreSQL. `Display` names the server's severity, message and SQLSTATE
    /// (`postgres: FATAL: password authentication failed for user "app"
    /// (28P01)`), or the I/O cause (`connection refused`); the error itself is
    /// the `source()`.
    #[cfg(feature = "postgres")]
    #[error("postgres: {}", PgCause(.0))]
    Postgres(#[source] tokio_postgres::Error),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// TLS could not be set up for a PostgreSQL URL asking for it.
    #[error("tls: {0}")]
    Tls(String),
    /// A connection came back in a state that cannot be reused (inside a
    /// transaction); the pool discards it.
    #[error("connection is dirty: {0}")]
    Dirty(&'static str),
    /// A blocking SQLite call panicked or was cancelled by runtime shutdown.
    #[error("blocking task failed: {0}")]
    Task(String),
}

/// A named prepared statement missing (26000) or already there (42P05): what
/// the statement cache meets when PgBouncer in transaction mode hands the next
/// transaction to another server connection.
#[cfg(feature = "postgres")]
const PGBOUNCER_SYMPTOMS: [&str; 2] = ["26000", "42P05"];

#[cfg(feature = "postgres")]
const PGBOUNCER_HINT: &str = "; if this server is reached through PgBouncer in transaction mode, \
     set `pgbouncer = true` (PgManager::pgbouncer, or `?pgbouncer=true` in the URL): \
     named prepared statements do not outlive a transaction there";

/// What tokio-postgres keeps one level down: its own `Display` says only
/// `db error` or `error connecting to server`.
#[cfg(feature = "postgres")]
struct PgCause<'a>(&'a tokio_postgres::Error);

#[cfg(feature = "postgres")]
impl std::fmt::Display for PgCause<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(db) = self.0.as_db_error() else {
            return pool_core::util::ErrorChain(self.0).fmt(f);
        };
        write!(
            f,
            "{}: {} ({})",
            db.severity(),
            db.message(),
            db.code().code()
        )?;
        if let Some(detail) = db.detail() {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(hint) = db.hint() {
            write!(f, "; hint: {hint}")?;
        }
        if PGBOUNCER_SYMPTOMS.contains(&db.code().code()) {
            f.write_str(PGBOUNCER_HINT)?;
        }
        Ok(())
    }
}

/// Why a pool-sql call failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Checking out a connection failed (timeout, closed, or a connect error with
    /// the database's error as its source).
    #[error(transparent)]
    Pool(#[from] PoolError<DbError>),
    /// The statement failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A connection URL or option is invalid; names the option, never a password.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// A pool knob is invalid (names the knob and the value).
    #[error(transparent)]
    PoolConfig(#[from] pool_core::ConfigError),
    /// A `transaction` closure panicked; the transaction was rolled back and the
    /// connection discarded.
    #[error("the transaction closure panicked; rolled back")]
    Panicked,
}

#[cfg(feature = "postgres")]
impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

#[cfg(feature = "postgres")]
impl From<tokio_postgres::Error> for SqlError {
    fn from(e: tokio_postgres::Error) -> Self {
        SqlError::Db(DbError::Postgres(e))
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        SqlError::Db(DbError::Sqlite(e))
    }
}

impl SqlError {
    /// The PostgreSQL SQLSTATE (e.g. `"28P01"` for a wrong password), wherever in
    /// the chain the database error sits.
    #[cfg(feature = "postgres")]
    pub fn sqlstate(&self) -> Option<&str> {
        let db = match self {
            SqlError::Db(e) | SqlError::Pool(PoolError::Backend(e)) => e,
            _ => return None,
        };
        match db {
            DbError::Postgres(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }
}
