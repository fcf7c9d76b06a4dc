//! Runs any `bb8::ManageConnection` as a [`Manager`] (feature `bb8`), so a bb8 user
//! switches engines without rewriting managers.

use std::fmt;

use crate::manager::Manager;

/// Wraps a bb8 manager: `connect` → `connect`, `check` → `is_valid`,
/// `is_broken` → `has_broken`.
#[derive(Debug, Clone)]
pub struct Bb8Manager<M>(pub M);

/// A bb8 manager's error (bb8 only asks for `Debug`), made a `std::error::Error`.
#[derive(Debug)]
pub struct Bb8Error<E>(pub E);

impl<E: fmt::Debug> fmt::Display for Bb8Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<E: fmt::Debug> std::error::Error for Bb8Error<E> {}

impl<M> Manager for Bb8Manager<M>
where
    M: bb8::ManageConnection,
    M::Error: Sync,
{
    type Connection = M::Connection;
    type Error = Bb8Error<M::Error>;

    async fn connect(&self) -> Result<M::Connection, Self::Error> {
        self.0.connect().await.map_err(Bb8Error)
    }

    async fn check(&self, conn: &mut M::Connection) -> Result<(), Self::Error> {
        self.0.is_valid(conn).await.map_err(Bb8Error)
    }

    fn is_broken(&self, conn: &mut M::Connection) -> bool {
        self.0.has_broken(conn)
    }

    fn kind(&self) -> &'static str {
        "bb8"
    }
}
