//! `Lease`: an exclusive connection, discarded when a command was cut short.

use std::fmt;

use pool_core::PooledConnection;
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::manager::RedisManager;

/// A dedicated connection from the exclusive lane. Use it with `query_async`
/// like any redis connection. Each command marks the connection dirty until its
/// reply arrives: a command cancelled mid-way (or one that failed on the socket)
/// leaves the connection in an unknown state, so it is closed on return instead
/// of reaching the next lease.
pub struct Lease {
    pub(crate) conn: PooledConnection<'static, RedisManager>,
}

impl Lease {
    /// Closes the connection instead of returning it (e.g. after `SUBSCRIBE`).
    pub fn discard(self) {
        self.conn.discard();
    }
}

fn clean_after(e: &redis::RedisError) -> bool {
    // A server error (WRONGTYPE, EXECABORT, …) leaves the connection in sync; a
    // socket error or a timeout does not.
    !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error())
}

impl ConnectionLike for Lease {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.conn.set_dirty(true);
            let r = self.conn.req_packed_command(cmd).await;
            if r.as_ref().err().is_none_or(clean_after) {
                self.conn.set_dirty(false);
            }
            r
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.conn.set_dirty(true);
            let r = self.conn.req_packed_commands(pipeline, offset, count).await;
            if r.as_ref().err().is_none_or(clean_after) {
                self.conn.set_dirty(false);
            }
            r
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").field("conn", &self.conn).finish()
    }
}
