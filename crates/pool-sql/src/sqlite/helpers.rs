//! `query`, `execute`, `execute_many` and `transaction` on a `SqlitePool`, with
//! the same names as on a `PgPool`. SQLite calls block, so each runs whole on a
//! blocking thread; `transaction` therefore takes a synchronous closure.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pool_core::ConnectionPool;
use rusqlite::types::{FromSql, Value};

use super::SqliteManager;
use crate::error::SqlError;

/// One result row, owned (rusqlite's rows borrow their statement).
#[derive(Debug, Clone, PartialEq)]
pub struct SqliteRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl SqliteRow {
    /// Column `idx` converted to `T`.
    ///
    /// # Errors
    /// [`SqlError::Db`] when the index is out of range or the type does not fit.
    pub fn get<T: FromSql>(&self, idx: usize) -> Result<T, SqlError> {
        let v = self
            .values
            .get(idx)
            .ok_or(rusqlite::Error::InvalidColumnIndex(idx))?;
        T::column_result(v.into()).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, v.data_type(), Box::new(e)).into()
        })
    }

    /// Column `name` converted to `T`.
    ///
    /// # Errors
    /// As [`get`](Self::get); an unknown name is `InvalidColumnName`.
    pub fn get_named<T: FromSql>(&self, name: &str) -> Result<T, SqlError> {
        let idx = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_string()))?;
        self.get(idx)
    }

    /// The raw values.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

fn query_rows(
    c: &rusqlite::Connection,
    sql: &str,
    params: &[Value],
) -> Result<Vec<SqliteRow>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(sql)?;
    let columns: Arc<[String]> = stmt.column_names().map(|s| s.to_string()).collect();
    let n = columns.len();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..n)
            .map(|i| row.get::<_, Value>(i))
            .collect::<Result<_, _>>()?;
        out.push(SqliteRow {
            columns: columns.clone(),
            values,
        });
    }
    Ok(out)
}

/// Helpers on a [`SqlitePool`](super::SqlitePool).
pub trait SqlitePoolExt {
    /// Runs a query and returns its rows.
    ///
    /// # Errors
    /// [`SqlError::Pool`] when no connection could be had, [`SqlError::Db`] with
    /// rusqlite's error as source.
    fn query<P: Into<Value>>(
        &self,
        sql: &str,
        params: impl IntoIterator<Item = P>,
    ) -> impl Future<Output = Result<Vec<SqliteRow>, SqlError>> + Send;

    /// Runs a statement and returns the number of rows changed.
    ///
    /// # Errors
    /// As [`query`](Self::query).
    fn execute<P: Into<Value>>(
        &self,
        sql: &str,
        params: impl IntoIterator<Item = P>,
    ) -> impl Future<Output = Result<u64, SqlError>> + Send;

    /// Runs one statement per parameter set in one transaction; all or nothing.
    ///
    /// # Errors
    /// As [`query`](Self::query); nothing is applied on error.
    fn execute_many<P: Into<Value>, R: IntoIterator<Item = P>>(
        &self,
        sql: &str,
        batch: impl IntoIterator<Item = R>,
    ) -> impl Future<Output = Result<u64, SqlError>> + Send;

    /// Runs `f` in a transaction on a blocking thread: committed on `Ok`, rolled
    /// back on `Err` or panic (a panic becomes [`SqlError::Panicked`]).
    ///
    /// # Errors
    /// `f`'s error, or the pool's / database's.
    fn transaction<T, F>(&self, f: F) -> impl Future<Output = Result<T, SqlError>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, SqlError> + Send + 'static;
}

fn owned<P: Into<Value>>(params: impl IntoIterator<Item = P>) -> Vec<Value> {
    params.into_iter().map(Into::into).collect()
}

impl SqlitePoolExt for ConnectionPool<SqliteManager> {
    fn query<P: Into<Value>>(
        &self,
        sql: &str,
        params: impl IntoIterator<Item = P>,
    ) -> impl Future<Output = Result<Vec<SqliteRow>, SqlError>> + Send {
        let (sql, params) = (sql.to_string(), owned(params));
        async move {
            let conn = self.get().await?;
            conn.call(move |c| Ok(query_rows(c, &sql, &params)?)).await
        }
    }

    fn execute<P: Into<Value>>(
        &self,
        sql: &str,
        params: impl IntoIterator<Item = P>,
    ) -> impl Future<Output = Result<u64, SqlError>> + Send {
        let (sql, params) = (sql.to_string(), owned(params));
        async move {
            let conn = self.get().await?;
            conn.call(move |c| {
                let mut stmt = c.prepare_cached(&sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(&params))? as u64)
            })
            .await
        }
    }

    fn execute_many<P: Into<Value>, R: IntoIterator<Item = P>>(
        &self,
        sql: &str,
        batch: impl IntoIterator<Item = R>,
    ) -> impl Future<Output = Result<u64, SqlError>> + Send {
        let sql = sql.to_string();
        let batch: Vec<Vec<Value>> = batch.into_iter().map(owned).collect();
        async move {
            let conn = self.get().await?;
            conn.call(move |c| {
                let tx = c.transaction()?;
                let mut total = 0u64;
                {
                    let mut stmt = tx.prepare_cached(&sql)?;
                    for params in &batch {
                        total += stmt.execute(rusqlite::params_from_iter(params))? as u64;
                    }
                }
                tx.commit()?;
                Ok(total)
            })
            .await
        }
    }

    async fn transaction<T, F>(&self, f: F) -> Result<T, SqlError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, SqlError> + Send + 'static,
    {
        {
            let conn = self.get().await?;
            conn.call(move |c| {
                let tx = c.transaction()?;
                // The closure runs whole on the blocking thread: a cancelled
                // caller cannot interrupt it half-way. AssertUnwindSafe: after a
                // panic the transaction is dropped (rolled back) and nothing else
                // of the closure's state is used.
                match catch_unwind(AssertUnwindSafe(|| f(&tx))) {
                    Ok(Ok(v)) => {
                        tx.commit()?;
                        Ok(v)
                    }
                    Ok(Err(e)) => {
                        tx.rollback()?;
                        Err(e)
                    }
                    Err(_) => {
                        tx.rollback()?;
                        Err(SqlError::Panicked)
                    }
                }
            })
            .await
        }
    }
}
