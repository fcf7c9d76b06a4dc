//! `query`, `execute`, `execute_many` and `transaction` on a `PgPool`.

use std::future::Future;
use std::pin::Pin;

use pool_core::ConnectionPool;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, Transaction};

use super::{unnamed, PgManager};
use crate::catch_unwind::CatchUnwind;
use crate::error::SqlError;

/// The future a `transaction` closure returns.
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, SqlError>> + Send + 't>>;

/// Helpers on a [`PgPool`](super::PgPool). Each checks out a connection, uses the
/// connection's prepared-statement cache, and returns the connection. Behind
/// PgBouncer in transaction mode ([`PgManager::pgbouncer`]) they use no named
/// statement that outlives a transaction instead.
pub trait PgPoolExt {
    /// Runs a query and returns its rows.
    ///
    /// # Errors
    /// [`SqlError::Pool`] when no connection could be had, [`SqlError::Db`] with
    /// the database's error (SQLSTATE, message) as source.
    fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, SqlError>> + Send;

    /// Runs a query whose parameter types are given, as one round trip with an
    /// unnamed statement: nothing is prepared or cached, so it is the fastest
    /// path behind PgBouncer in transaction mode, and works the same anywhere.
    ///
    /// ```no_run
    /// # use pool_sql::{PgPool, PgPoolExt, SqlError};
    /// # use tokio_postgres::types::Type;
    /// # async fn demo(pool: PgPool) -> Result<(), SqlError> {
    /// let rows = pool.query_typed("SELECT $1::int4 + 1", &[(&41i32, Type::INT4)]).await?;
    /// assert_eq!(rows[0].get::<_, i32>(0), 42);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`query`](Self::query); a value that does not fit its type fails
    /// before anything is sent.
    fn query_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<Vec<Row>, SqlError>> + Send;

    /// Runs a statement and returns the number of rows affected.
    ///
    /// # Errors
    /// As [`query`](Self::query).
    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, SqlError>> + Send;

    /// Runs one statement once per parameter set, all in one transaction; returns
    /// the total of rows affected. Nothing is applied if any execution fails.
    ///
    /// # Errors
    /// As [`query`](Self::query); the transaction is rolled back.
    fn execute_many(
        &self,
        sql: &str,
        batch: &[&[&(dyn ToSql + Sync)]],
    ) -> impl Future<Output = Result<u64, SqlError>> + Send;

    /// Runs `f` in a transaction: committed when it returns `Ok`, rolled back on
    /// `Err` or panic (a panic becomes [`SqlError::Panicked`]). If the caller is
    /// cancelled mid-transaction, the connection is discarded (the server rolls
    /// back when it closes), never handed to the next caller.
    ///
    /// ```no_run
    /// # use pool_sql::{PgPool, PgPoolExt, SqlError};
    /// # async fn demo(pool: PgPool) -> Result<(), SqlError> {
    /// let moved = pool
    ///     .transaction(|tx| Box::pin(async move {
    ///         tx.execute("UPDATE acct SET n = n - 1 WHERE id = 1", &[]).await?;
    ///         Ok(tx.execute("UPDATE acct SET n = n + 1 WHERE id = 2", &[]).await?)
    ///     }))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `f`'s error, or the pool's / database's.
    fn transaction<T, F>(&self, f: F) -> impl Future<Output = Result<T, SqlError>> + Send
    where
        T: Send,
        F: for<'t> FnOnce(&'t Transaction<'t>) -> TxFuture<'t, T> + Send;
}

impl PgPoolExt for ConnectionPool<PgManager> {
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, SqlError> {
        let mut conn = self.get().await?;
        // Marked while a request is on the wire: a caller cancelled before the
        // reply leaves it pending, and the next checkout waits for it first,
        // under the pool's deadline (`PgManager::reset`).
        conn.set_awaiting_reply(true);
        let rows = if conn.transaction_pooling() {
            unnamed::query(&mut conn, sql, params).await
        } else {
            async {
                let stmt = conn.prepare_cached(sql).await?;
                Ok(conn.query(&stmt, params).await?)
            }
            .await
        };
        conn.set_awaiting_reply(false);
        rows
    }

    async fn query_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, SqlError> {
        let mut conn = self.get().await?;
        // Marked while a request is on the wire, as in `query`.
        conn.set_awaiting_reply(true);
        let rows = conn.query_typed(sql, params).await;
        conn.set_awaiting_reply(false);
        Ok(rows?)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, SqlError> {
        let mut conn = self.get().await?;
        // Marked while a request is on the wire, as in `query`.
        conn.set_awaiting_reply(true);
        let n = if conn.transaction_pooling() {
            unnamed::execute(&mut conn, sql, params).await
        } else {
            async {
                let stmt = conn.prepare_cached(sql).await?;
                Ok(conn.execute(&stmt, params).await?)
            }
            .await
        };
        conn.set_awaiting_reply(false);
        n
    }

    async fn execute_many(
        &self,
        sql: &str,
        batch: &[&[&(dyn ToSql + Sync)]],
    ) -> Result<u64, SqlError> {
        let mut conn = self.get().await?;
        // Marked while a request is on the wire, as in `query`; dirty from
        // BEGIN until the transaction ended.
        conn.set_awaiting_reply(true);
        let cached = if conn.transaction_pooling() {
            None
        } else {
            Some(conn.prepare_cached(sql).await?)
        };
        conn.set_awaiting_reply(false);
        conn.set_dirty(true);
        let tx = conn.client_mut().transaction().await?;
        // Behind PgBouncer, prepared inside the transaction and closed (dropped)
        // before it ends.
        let stmt = match cached {
            Some(stmt) => stmt,
            None => tx.prepare(sql).await?,
        };
        let mut total = 0;
        for params in batch {
            match tx.execute(&stmt, params).await {
                Ok(n) => total += n,
                Err(e) => {
                    drop(stmt);
                    tx.rollback().await?;
                    conn.set_dirty(false);
                    return Err(e.into());
                }
            }
        }
        drop(stmt);
        tx.commit().await?;
        conn.set_dirty(false);
        Ok(total)
    }

    async fn transaction<T, F>(&self, f: F) -> Result<T, SqlError>
    where
        T: Send,
        F: for<'t> FnOnce(&'t Transaction<'t>) -> TxFuture<'t, T> + Send,
    {
        let mut conn = self.get().await?;
        // Dirty until the transaction ended: cancelled or panicked in between,
        // the connection is closed instead of reused.
        conn.set_dirty(true);
        let tx = conn.client_mut().transaction().await?;
        let outcome = CatchUnwind(f(&tx)).await;
        let result = match outcome {
            Ok(Ok(v)) => {
                tx.commit().await?;
                Ok(v)
            }
            Ok(Err(e)) => {
                tx.rollback().await?;
                Err(e)
            }
            Err(()) => {
                // Dropping the transaction queues a ROLLBACK; the connection stays
                // dirty and is discarded anyway.
                drop(tx);
                return Err(SqlError::Panicked);
            }
        };
        conn.set_dirty(false);
        result
    }
}
