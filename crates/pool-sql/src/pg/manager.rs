//! `PgManager`: opens, checks and recycles tokio-postgres connections.

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;

use pool_core::Manager;
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;
use crate::error::{DbError, SqlError};
use pool_core::util::redact_url;

/// What happens to a connection before it is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecyclePolicy {
    /// Only `is_closed()` — no round trip. The helpers and tokio-postgres's
    /// `Transaction` (which rolls back when dropped) never leave a transaction
    /// open; a raw `BEGIN` sent through `simple_query` needs `Verified` or `Clean`.
    /// The default.
    #[default]
    Fast,
    /// One simple query that also detects an open transaction
    /// (`statement_timestamp() = transaction_timestamp()`); a connection inside a
    /// transaction, or whose query fails, is discarded.
    Verified,
    /// `DISCARD ALL`: session state (`SET`, temp tables, prepared statements,
    /// advisory locks) is reset; inside a transaction it fails and the connection
    /// is discarded.
    Clean,
}

/// How TLS is used, from the URL's `sslmode`.
#[derive(Clone)]
enum Tls {
    /// `disable`, `prefer` or no `sslmode`: plain TCP.
    None,
    /// `require` (encrypted, not verified) or `verify-ca` / `verify-full`.
    Rustls(MakeRustlsConnect),
}

/// Opens tokio-postgres connections. Build it from a URL
/// (`postgres://user:pass@host:port/db?sslmode=require`) or a
/// `tokio_postgres::Config`.
#[derive(Clone)]
pub struct PgManager {
    config: tokio_postgres::Config,
    tls: Tls,
    policy: RecyclePolicy,
    /// Behind a transaction-pooling PgBouncer: no session state (see
    /// [`PgManager::pgbouncer`]).
    transaction_pooling: bool,
    /// Read on every connect when set (credential rotation).
    password: Option<PasswordProvider>,
    /// The URL with its password redacted, for logs and `Debug`.
    display: String,
}

/// Where each connect reads its password (see [`PgManager::password_provider`]).
pub use pool_core::util::PasswordProvider;

/// Statements prepared on one connection by the helpers, bounded so that ad-hoc
/// SQL cannot grow it without limit.
const STATEMENT_CACHE: usize = 256;

/// The statement cache's map. Keys are the application's SQL, hashed on every
/// query: foldhash (seeded per process) costs a fraction of SipHash there, and
/// the cache's bound caps what colliding keys could cost.
type StatementMap = HashMap<String, Statement, foldhash::fast::RandomState>;

/// The parameter-type cache of the statement-free path, bounded as the
/// statement cache.
type ParamTypeMap = HashMap<String, Vec<Type>, foldhash::fast::RandomState>;

/// A pooled PostgreSQL connection: derefs to the tokio-postgres `Client`.
pub struct PgConnection {
    client: Client,
    statements: StatementMap,
    /// Behind PgBouncer: the parameter types of each SQL text, learnt once
    /// inside a transaction, so that later calls are one unnamed round trip.
    param_types: ParamTypeMap,
    transaction_pooling: bool,
    /// A helper's request may still be on the wire: its caller was cancelled
    /// before the reply. The next checkout waits for that reply first, under
    /// the pool's deadline (see `reset`).
    awaiting_reply: bool,
    driver: JoinHandle<()>,
}

impl PgConnection {
    /// A prepared statement for `sql`, from this connection's cache.
    ///
    /// # Errors
    /// The database's error when preparing fails.
    pub async fn prepare_cached(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// The client and the statement cache, for a transaction that needs both.
    pub(crate) fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Marks that a request is (or no longer is) waiting for its reply.
    pub(crate) fn set_awaiting_reply(&mut self, on: bool) {
        self.awaiting_reply = on;
    }

    /// The parameter types learnt for `sql` (statement-free path).
    pub(crate) fn param_types(&self, sql: &str) -> Option<&[Type]> {
        self.param_types.get(sql).map(Vec::as_slice)
    }

    /// Remembers `sql`'s parameter types (statement-free path).
    pub(crate) fn learn_param_types(&mut self, sql: &str, types: Vec<Type>) {
        if self.param_types.len() >= STATEMENT_CACHE {
            self.param_types.clear();
        }
        self.param_types.insert(sql.to_string(), types);
    }

    /// Whether this connection goes through a transaction-pooling PgBouncer
    /// ([`PgManager::pgbouncer`]): the helpers then keep no session state.
    pub fn transaction_pooling(&self) -> bool {
        self.transaction_pooling
    }
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        // The driver ends by itself once the client is gone; aborting also covers
        // a peer that never answers the terminate message.
        self.driver.abort();
    }
}

impl Deref for PgConnection {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.client.is_closed())
            .field("cached_statements", &self.statements.len())
            .field("transaction_pooling", &self.transaction_pooling)
            .finish()
    }
}

impl PgManager {
    /// From a `postgres://` URL. `sslmode=require` encrypts without verifying the
    /// certificate (as libpq does), `verify-ca` / `verify-full` verify it against
    /// the webpki roots, anything else connects in plain text.
    ///
    /// # Errors
    /// [`SqlError::Config`] naming what is wrong, with the URL redacted.
    pub fn from_url(url: &str) -> Result<Self, SqlError> {
        let display = redact_url(url);
        let mut parsed = url::Url::parse(url)
            .map_err(|e| SqlError::Config(format!("{display}: not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(SqlError::Config(format!(
                "{display}: scheme must be postgres:// or postgresql://"
            )));
        }
        // tokio-postgres knows disable/prefer/require only: take `sslmode` out and
        // decide TLS here.
        // `pgbouncer` is ours (the name Prisma and others use), not libpq's.
        let mut sslmode = None;
        let mut pgbouncer = None;
        let rest: Vec<(String, String)> = parsed
            .query_pairs()
            .filter_map(|(k, v)| match &*k {
                "sslmode" => {
                    sslmode = Some(v.into_owned());
                    None
                }
                "pgbouncer" => {
                    pgbouncer = Some(v.into_owned());
                    None
                }
                _ => Some((k.into_owned(), v.into_owned())),
            })
            .collect();
        let transaction_pooling = match pgbouncer.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(SqlError::Config(format!(
                    "{display}: pgbouncer={other} is not `true` or `false`"
                )))
            }
        };
        parsed.set_query(None);
        if !rest.is_empty() {
            parsed.query_pairs_mut().extend_pairs(rest);
        }
        let mut config = tokio_postgres::Config::from_str(parsed.as_str())
            .map_err(|e| SqlError::Config(format!("{display}: {e}")))?;
        let tls = match sslmode.as_deref() {
            None | Some("disable" | "allow" | "prefer") => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Tls::None
            }
            Some("require") => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Tls::Rustls(MakeRustlsConnect::new(tls::encrypt_only()?))
            }
            Some("verify-ca" | "verify-full") => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Tls::Rustls(MakeRustlsConnect::new(tls::verifying()?))
            }
            Some(other) => {
                return Err(SqlError::Config(format!(
                    "{display}: sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                )))
            }
        };
        Ok(PgManager {
            config,
            tls,
            policy: RecyclePolicy::Fast,
            transaction_pooling,
            password: None,
            display,
        })
    }

    /// From a tokio-postgres config, in plain text (`ssl_mode` is ignored; use a
    /// URL for TLS).
    pub fn from_config(config: tokio_postgres::Config) -> Self {
        let display = format!(
            "postgres://{}@{:?}/{}",
            config.get_user().unwrap_or(""),
            config.get_hosts(),
            config.get_dbname().unwrap_or("")
        );
        PgManager {
            config,
            tls: Tls::None,
            policy: RecyclePolicy::Fast,
            transaction_pooling: false,
            password: None,
            display,
        }
    }

    /// Reads the password from `provider` on every connect instead of the URL:
    /// to rotate it without a restart, change what `provider` returns, then
    /// call `evict_all()` on the pool — no caller receives a connection made
    /// with the old password afterwards (docs/sql.md).
    pub fn password_provider(
        mut self,
        provider: impl Fn() -> String + Send + Sync + 'static,
    ) -> Self {
        self.password = Some(std::sync::Arc::new(provider));
        self
    }

    /// For a server reached through PgBouncer in transaction mode (default
    /// `false`; `?pgbouncer=true` in the URL sets it too). PgBouncer hands each
    /// transaction to whichever server connection is free, so nothing may outlive
    /// one: the helpers then use unnamed statements, one round trip each (the
    /// first call of an SQL text with parameters on a connection learns their
    /// types inside a transaction of its own), `DISCARD ALL` is never sent
    /// (`RecyclePolicy::Clean` acts as
    /// `Verified`), and `SET` belongs inside a transaction (`SET LOCAL`).
    /// Without it, the statement cache fails there with SQLSTATE 26000, whose
    /// message points to this setting. docs/sql.md says what it costs.
    pub fn pgbouncer(mut self, on: bool) -> Self {
        self.transaction_pooling = on;
        self
    }

    /// Whether [`pgbouncer`](Self::pgbouncer) is set.
    pub fn is_pgbouncer(&self) -> bool {
        self.transaction_pooling
    }

    /// Sets the recycle policy (default [`RecyclePolicy::Fast`]).
    pub fn recycle_policy(mut self, policy: RecyclePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The URL with its password redacted.
    pub fn url(&self) -> &str {
        &self.display
    }
}

impl fmt::Debug for PgManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("url", &self.display)
            .field("tls", &matches!(self.tls, Tls::Rustls(_)))
            .field("policy", &self.policy)
            .field("pgbouncer", &self.transaction_pooling)
            .field("password_provider", &self.password.is_some())
            .finish()
    }
}

impl Manager for PgManager {
    type Connection = PgConnection;
    type Error = DbError;

    async fn connect(&self) -> Result<PgConnection, DbError> {
        let with_password;
        let config = match &self.password {
            Some(provider) => {
                let mut c = self.config.clone();
                c.password(provider());
                with_password = c;
                &with_password
            }
            None => &self.config,
        };
        let (client, driver) = match &self.tls {
            Tls::None => {
                let (client, conn) = config.connect(NoTls).await?;
                (client, tokio::spawn(drive(conn)))
            }
            Tls::Rustls(tls) => {
                let (client, conn) = config.connect(tls.clone()).await?;
                (client, tokio::spawn(drive(conn)))
            }
        };
        Ok(PgConnection {
            client,
            statements: StatementMap::default(),
            param_types: ParamTypeMap::default(),
            transaction_pooling: self.transaction_pooling,
            awaiting_reply: false,
            driver,
        })
    }

    async fn check(&self, conn: &mut PgConnection) -> Result<(), DbError> {
        conn.client.simple_query("SELECT 1").await?;
        Ok(())
    }

    fn is_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.is_closed()
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), DbError> {
        if conn.awaiting_reply {
            // A caller was cancelled before its reply: the next request would
            // queue behind it, for ever on a peer gone silent. An empty query
            // answers once that reply is in, and the pool bounds the wait by
            // its deadline (a silent connection is then closed).
            conn.client.simple_query("").await?;
            conn.awaiting_reply = false;
        }
        // Behind a transaction-pooling PgBouncer, DISCARD ALL would run on
        // whichever server connection is free and reset another client's
        // state: checking for an open transaction is what is left.
        let policy = match self.policy {
            RecyclePolicy::Clean if self.transaction_pooling => RecyclePolicy::Verified,
            p => p,
        };
        match policy {
            RecyclePolicy::Fast => Ok(()),
            RecyclePolicy::Verified => {
                // Simple protocol on purpose: one Query message, so outside a
                // transaction both timestamps are the same instant; inside one,
                // transaction_timestamp() is the time of BEGIN.
                let msgs = conn
                    .client
                    .simple_query("SELECT statement_timestamp() = transaction_timestamp()")
                    .await?;
                let outside = msgs.iter().any(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
                    _ => false,
                });
                if outside {
                    Ok(())
                } else {
                    Err(DbError::Dirty("returned inside a transaction"))
                }
            }
            RecyclePolicy::Clean => {
                conn.client.batch_execute("DISCARD ALL").await?;
                // DISCARD ALL deallocated every prepared statement.
                conn.statements.clear();
                Ok(())
            }
        }
    }

    fn reset_is_cancel_safe(&self, _conn: &PgConnection) -> bool {
        // A cancelled wait for a pending reply (`Fast`) or a cancelled
        // `Verified` query leaves one more request pending, which the next
        // reset waits for in turn; `Clean` clears the statement cache after
        // `DISCARD ALL` returns, so a cancel in between would leave it stale.
        self.policy != RecyclePolicy::Clean
    }

    fn is_transient(&self, error: &DbError) -> bool {
        let DbError::Postgres(e) = error else {
            return false;
        };
        let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
        io.is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::TimedOut
            )
        })
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

async fn drive<S, T>(conn: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "postgres connection ended");
    }
}
