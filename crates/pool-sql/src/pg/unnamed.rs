//! The helpers' statement-free path, for a transaction-pooling PgBouncer
//! ([`PgManager::pgbouncer`](super::PgManager::pgbouncer)): nothing they leave
//! on a server connection outlives the transaction that made it.

use futures_util::TryStreamExt;
use pool_core::PooledConnection;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::PgManager;
use crate::error::SqlError;

type Conn<'a> = PooledConnection<'a, PgManager>;

/// Rows of `sql`: without parameters one unnamed Parse/Bind/Execute round trip
/// (`query_typed`); with parameters, whose types only the server knows, a
/// statement prepared, run and closed inside one transaction, so PgBouncer keeps
/// the whole exchange on one server connection.
pub(crate) async fn query(
    conn: &mut Conn<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, SqlError> {
    if params.is_empty() {
        return Ok(conn.query_typed(sql, &[]).await?);
    }
    conn.set_dirty(true);
    let tx = conn.client_mut().transaction().await?;
    let outcome = match tx.prepare(sql).await {
        // The statement is closed when dropped, before the commit below.
        Ok(stmt) => tx.query(&stmt, params).await,
        Err(e) => Err(e),
    };
    let result = settle(tx, outcome).await;
    conn.set_dirty(false);
    result
}

/// Rows affected by `sql`, on the path [`query`] takes.
pub(crate) async fn execute(
    conn: &mut Conn<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, SqlError> {
    if params.is_empty() {
        // An unnamed statement's rows-affected count is only on the raw stream.
        let none: [(&(dyn ToSql + Sync), tokio_postgres::types::Type); 0] = [];
        let mut stream = std::pin::pin!(conn.query_typed_raw(sql, none).await?);
        while stream.try_next().await?.is_some() {}
        return Ok(stream.rows_affected().unwrap_or(0));
    }
    conn.set_dirty(true);
    let tx = conn.client_mut().transaction().await?;
    let outcome = match tx.prepare(sql).await {
        Ok(stmt) => tx.execute(&stmt, params).await,
        Err(e) => Err(e),
    };
    let result = settle(tx, outcome).await;
    conn.set_dirty(false);
    result
}

/// Commits on success, rolls back on failure (the statement's error is the
/// one returned); either way the transaction is over.
async fn settle<T>(
    tx: tokio_postgres::Transaction<'_>,
    outcome: Result<T, tokio_postgres::Error>,
) -> Result<T, SqlError> {
    match outcome {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e.into())
        }
    }
}
