//! `RedisManager`: dedicated connections for the exclusive lane.

use std::fmt;
use std::time::Duration;

use pool_core::util::redact_url;
use pool_core::Manager;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError, Value};

use crate::config::PasswordSource;

/// Opens dedicated connections (a multiplexed connection used by one holder at a
/// time), checks them with `PING` and resets them with `UNWATCH` (+ `DISCARD` when
/// a `MULTI` was left open).
#[derive(Clone)]
pub struct RedisManager {
    client: Client,
    /// With a password source: trusted roots for `rediss://` (a client is
    /// made per connect, with the password of the moment).
    root_pem: Option<Vec<u8>>,
    password: Option<PasswordSource>,
    connection: AsyncConnectionConfig,
    /// The URL with its password redacted.
    display: String,
}

impl RedisManager {
    /// From a redis URL (`redis://`, `rediss://`, `redis+unix://`, with user,
    /// password and database index). `root_pem` replaces the system's trusted
    /// roots for `rediss://`.
    ///
    /// # Errors
    /// redis's error when the URL does not parse (the message carries no password).
    pub fn new(
        url: &str,
        connect_timeout: Duration,
        command_timeout: Duration,
        root_pem: Option<&[u8]>,
    ) -> Result<Self, RedisError> {
        let root_pem = root_pem
            .filter(|_| url.starts_with("rediss:"))
            .map(<[u8]>::to_vec);
        Ok(RedisManager {
            client: client_for(url.into_connection_info()?, root_pem.as_deref())?,
            root_pem,
            password: None,
            connection: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(command_timeout)),
            display: redact_url(url),
        })
    }

    /// Reads the password from `source` on every connect (see
    /// [`RedisConfig::password_provider`](crate::RedisConfig::password_provider)).
    pub fn password_source(mut self, source: PasswordSource) -> Self {
        self.password = Some(source);
        self
    }

    /// A client with the credentials of the moment: the URL's, or the
    /// password source's.
    pub(crate) fn client(&self) -> Result<Client, RedisError> {
        let Some(source) = &self.password else {
            return Ok(self.client.clone());
        };
        let info = self.client.get_connection_info().clone();
        let redis = info.redis_settings().clone().set_password((source.0)());
        client_for(info.set_redis_settings(redis), self.root_pem.as_deref())
    }

    /// The URL with its password redacted.
    pub fn url(&self) -> &str {
        &self.display
    }
}

/// A client for `info`, trusting `root_pem` (for `rediss://`) if given.
fn client_for(info: redis::ConnectionInfo, root_pem: Option<&[u8]>) -> Result<Client, RedisError> {
    match root_pem {
        Some(pem) => Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
        None => Client::open(info),
    }
}

/// `url` without its password.
impl fmt::Debug for RedisManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisManager")
            .field("url", &self.display)
            .finish()
    }
}

impl Manager for RedisManager {
    type Connection = MultiplexedConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        self.client()?
            .get_multiplexed_async_connection_with_config(&self.connection)
            .await
    }

    async fn check(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        redis::cmd("PING").query_async::<()>(conn).await
    }

    async fn reset(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        // Inside a MULTI, UNWATCH is queued ("QUEUED") instead of run ("OK"): that
        // reply tells us a transaction was left open, which DISCARD ends (and
        // DISCARD also drops the watches).
        let reply: Value = redis::cmd("UNWATCH").query_async(conn).await?;
        if matches!(&reply, Value::SimpleString(s) if s == "QUEUED") {
            redis::cmd("DISCARD").query_async::<()>(conn).await?;
        }
        Ok(())
    }

    fn is_transient(&self, e: &RedisError) -> bool {
        e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped()
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
