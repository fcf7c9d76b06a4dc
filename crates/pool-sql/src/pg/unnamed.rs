//! The helpers' statement-free path, for a transaction-pooling PgBouncer
//! ([`PgManager::pgbouncer`](super::PgManager::pgbouncer)): nothing they leave
//! on a server connection outlives the transaction that made it.
//!
//! An unnamed statement (`query_typed`: Parse, Bind, Execute, Sync in one
//! round trip) needs its parameters' types, which tokio-postgres's `ToSql`
//! does not give. The first call of an SQL text on a connection learns them
//! by preparing it inside a transaction of its own (so PgBouncer keeps the
//! exchange on one server connection, and the statement is closed before the
//! transaction ends); later calls are one unnamed round trip.

use futures_util::TryStreamExt;
use pool_core::PooledConnection;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, Statement, Transaction};

use super::PgManager;
use crate::error::SqlError;

type Conn<'a> = PooledConnection<'a, PgManager>;
type Param<'p> = &'p (dyn ToSql + Sync);

/// Rows of `sql`.
pub(crate) async fn query(
    conn: &mut Conn<'_>,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>, SqlError> {
    if let Some(typed) = typed(conn, sql, params) {
        return Ok(conn.query_typed(sql, &typed).await?);
    }
    match learn(conn, sql, params, Want::Rows).await? {
        Outcome::Rows(rows) => Ok(rows),
        Outcome::Affected(_) => unreachable!("asked for rows"),
    }
}

/// Rows affected by `sql`.
pub(crate) async fn execute(
    conn: &mut Conn<'_>,
    sql: &str,
    params: &[Param<'_>],
) -> Result<u64, SqlError> {
    if let Some(typed) = typed(conn, sql, params) {
        // An unnamed statement's rows-affected count is only on the raw stream.
        let mut stream = std::pin::pin!(conn.query_typed_raw(sql, typed).await?);
        while stream.try_next().await?.is_some() {}
        return Ok(stream.rows_affected().unwrap_or(0));
    }
    match learn(conn, sql, params, Want::Affected).await? {
        Outcome::Affected(n) => Ok(n),
        Outcome::Rows(_) => unreachable!("asked for a count"),
    }
}

/// `params` with their types, when known: none are needed without
/// parameters, else the ones learnt for `sql` on this connection.
fn typed<'p>(conn: &Conn<'_>, sql: &str, params: &[Param<'p>]) -> Option<Vec<(Param<'p>, Type)>> {
    if params.is_empty() {
        return Some(Vec::new());
    }
    let types = conn.param_types(sql)?;
    (types.len() == params.len())
        .then(|| params.iter().copied().zip(types.iter().cloned()).collect())
}

#[derive(Clone, Copy)]
enum Want {
    Rows,
    Affected,
}

enum Outcome {
    Rows(Vec<Row>),
    Affected(u64),
}

async fn run(
    tx: &Transaction<'_>,
    stmt: &Statement,
    params: &[Param<'_>],
    want: Want,
) -> Result<Outcome, tokio_postgres::Error> {
    Ok(match want {
        Want::Rows => Outcome::Rows(tx.query(stmt, params).await?),
        Want::Affected => Outcome::Affected(tx.execute(stmt, params).await?),
    })
}

/// Prepares `sql` inside a transaction, runs it there, closes the statement
/// and commits (rolls back on failure, keeping the connection); remembers
/// the parameter types for the next call.
async fn learn(
    conn: &mut Conn<'_>,
    sql: &str,
    params: &[Param<'_>],
    want: Want,
) -> Result<Outcome, SqlError> {
    // Dirty until the transaction ended: a caller cancelled in between
    // leaves a connection that is closed, not reused.
    conn.set_dirty(true);
    let tx = conn.client_mut().transaction().await?;
    let (outcome, types) = match tx.prepare(sql).await {
        Ok(stmt) => {
            let types = stmt.params().to_vec();
            // The statement is closed when dropped, before the commit below.
            (run(&tx, &stmt, params, want).await, Some(types))
        }
        Err(e) => (Err(e), None),
    };
    let result = match outcome {
        Ok(v) => tx.commit().await.map(|()| v).map_err(SqlError::from),
        Err(e) => {
            tx.rollback().await?;
            Err(e.into())
        }
    };
    conn.set_dirty(false);
    if let Some(types) = types {
        conn.learn_param_types(sql, types);
    }
    result
}
