//! `SqliteManager`: opens rusqlite connections on tokio's blocking threads.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pool_core::Manager;
use rusqlite::OpenFlags;

use crate::error::{DbError, SqlError};

#[derive(Debug, Clone)]
enum Target {
    File(PathBuf),
    /// A named in-memory database shared by every connection of the pool (it
    /// lives while at least one connection is open).
    Memory(String),
}

/// Opens SQLite connections: files (WAL and a busy timeout by default) or a
/// shared in-memory database.
#[derive(Debug, Clone)]
pub struct SqliteManager {
    target: Target,
    busy_timeout: Duration,
    wal: bool,
}

/// A pooled SQLite connection. Every call runs on tokio's blocking threads
/// through [`call`](Self::call), never on the async workers.
pub struct SqliteConnection {
    /// Shared with a blocking call still running for a cancelled caller; the
    /// connection is then discarded on return (see `is_broken`).
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl fmt::Debug for SqliteConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConnection").finish_non_exhaustive()
    }
}

fn lock(
    conn: &Mutex<rusqlite::Connection>,
) -> Result<MutexGuard<'_, rusqlite::Connection>, DbError> {
    conn.lock()
        .map_err(|_| DbError::Task("a previous call on this connection panicked".into()))
}

impl SqliteConnection {
    /// Runs `f` with the connection on a blocking thread.
    ///
    /// # Errors
    /// `f`'s error, or [`DbError::Task`] when the blocking task panicked.
    pub async fn call<T, F>(&self, f: F) -> Result<T, SqlError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T, SqlError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = lock(&conn)?;
            f(&mut c)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

impl SqliteManager {
    /// A database file (created if missing), with `journal_mode=WAL` and a 5 s
    /// busy timeout.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SqliteManager {
            target: Target::File(path.into()),
            busy_timeout: Duration::from_secs(5),
            wal: true,
        }
    }

    /// A named in-memory database shared by the pool's connections.
    pub fn memory(name: &str) -> Self {
        SqliteManager {
            target: Target::Memory(name.to_string()),
            busy_timeout: Duration::from_secs(5),
            wal: false,
        }
    }

    /// From `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:` (named
    /// `sqlite::memory:NAME`).
    ///
    /// # Errors
    /// [`SqlError::Config`] when the URL is not a SQLite URL.
    pub fn from_url(url: &str) -> Result<Self, SqlError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                // The text may be another kind's URL, with its password.
                let shown = pool_core::util::redact_url(url);
                SqlError::Config(format!("{shown:?} is not a sqlite: URL"))
            })?;
        if let Some(name) = rest.strip_prefix(":memory:") {
            return Ok(Self::memory(if name.is_empty() { "unipool" } else { name }));
        }
        if rest.is_empty() {
            return Err(SqlError::Config("sqlite URL without a path".into()));
        }
        Ok(Self::file(rest))
    }

    /// The busy timeout (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether files use `journal_mode=WAL` (default on).
    pub fn wal(mut self, on: bool) -> Self {
        self.wal = on;
        self
    }

    fn open(&self) -> Result<rusqlite::Connection, rusqlite::Error> {
        let conn = match &self.target {
            Target::File(path) => rusqlite::Connection::open(path)?,
            Target::Memory(name) => rusqlite::Connection::open_with_flags(
                format!("file:{name}?mode=memory&cache=shared"),
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
        };
        conn.busy_timeout(self.busy_timeout)?;
        if self.wal && matches!(self.target, Target::File(_)) {
            self.switch_to_wal(&conn)?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Ok(conn)
    }

    /// `journal_mode=WAL`, retried while another connection holds the lock it
    /// needs, up to the busy timeout: connections opening at once on a new file
    /// race for that lock, and SQLite answers the loser with "database is
    /// locked" at once, without calling the busy handler (which would risk a
    /// deadlock between two connections that both hold a shared lock).
    fn switch_to_wal(&self, conn: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && start.elapsed() < self.busy_timeout =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                done => return done,
            }
        }
    }
}

impl Manager for SqliteManager {
    type Connection = SqliteConnection;
    type Error = DbError;

    async fn connect(&self) -> Result<SqliteConnection, DbError> {
        let me = self.clone();
        let conn = tokio::task::spawn_blocking(move || me.open())
            .await
            .map_err(|e| DbError::Task(e.to_string()))??;
        Ok(SqliteConnection {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn check(&self, conn: &mut SqliteConnection) -> Result<(), DbError> {
        conn.call(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
            .map_err(|e| match e {
                SqlError::Db(d) => d,
                other => DbError::Task(other.to_string()),
            })
    }

    fn is_broken(&self, conn: &mut SqliteConnection) -> bool {
        // A blocking call of a cancelled caller still holds the connection, a
        // panic poisoned it, or a raw BEGIN left a transaction open: none of
        // these may reach the next caller.
        if Arc::strong_count(&conn.conn) > 1 {
            return true;
        }
        match conn.conn.try_lock() {
            Ok(c) => !c.is_autocommit(),
            Err(_) => true,
        }
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}
