//! `MongoPool`: one shared driver `Client` per URI, built on first use, its
//! connection pools observed.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::doc;
use mongodb::event::EventHandler;
use mongodb::options::{ClientOptions, ConnectionString};
use mongodb::{Client, Database};
use pool_core::{BoxFuture, Health, HealthStatus, Pool, Stats};
use tokio::sync::OnceCell;

use crate::config::MongoConfig;
use crate::error::MongoError;
use crate::tracker::Tracker;

/// A MongoDB client shared by everything that talks to one deployment.
///
/// The driver pools connections per server inside each `Client`; a
/// `MongoPool` makes sure there is exactly one `Client` per URI (built on the
/// first [`client`](Self::client), so a pool can be made while the server is
/// down), maps unipool's knobs onto it ([`MongoConfig`]), and reads its
/// connection-pool events into [`Stats`], engine events and health.
/// Cheap to clone; every clone shares the client.
///
/// ```no_run
/// use mongodb::bson::{doc, Document};
/// use pool_mongo::{MongoConfig, MongoPool};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = MongoPool::new("mongodb://127.0.0.1:27017/app", MongoConfig::default())?;
/// let users = pool.default_database().await?.collection::<Document>("users");
/// let found = users.find_one(doc! { "_id": 1 }).await?;
/// println!("{found:?} — {:?}", pool.stats());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MongoPool {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    /// May hold a password: never printed.
    uri: String,
    /// The URI as shown in errors and reports.
    target: String,
    default_database: Option<String>,
    config: MongoConfig,
    client: OnceCell<Client>,
    tracker: Arc<Tracker>,
    closed: AtomicBool,
}

impl std::fmt::Debug for MongoPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoPool")
            .field("name", &self.inner.name)
            .field("target", &self.inner.target)
            .field("built", &self.inner.client.initialized())
            .finish_non_exhaustive()
    }
}

impl MongoPool {
    /// A pool named `mongo` for `uri` (`mongodb://`, or `mongodb+srv://` with
    /// the `srv` feature, on by default). Nothing connects yet.
    ///
    /// # Errors
    /// [`MongoError::Uri`] when the URI does not parse (password redacted), or
    /// is `mongodb+srv://` in a build without the `srv` feature;
    /// [`MongoError::Config`] for a bad knob.
    pub fn new(uri: &str, config: MongoConfig) -> Result<Self, MongoError> {
        Self::named("mongo", uri, config)
    }

    /// A pool with a name (for stats, events and health reports).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn named(name: &str, uri: &str, config: MongoConfig) -> Result<Self, MongoError> {
        config.validate()?;
        let target = pool_core::util::redact_any_url(uri);
        if !cfg!(feature = "srv") && uri.starts_with("mongodb+srv:") {
            // The driver's own message names its feature, not ours.
            return Err(MongoError::Uri {
                uri: target,
                reason: "mongodb+srv:// needs pool-mongo's `srv` feature (on by default: \
                         the driver's DNS resolver), which this build leaves out"
                    .into(),
            });
        }
        let parsed = ConnectionString::parse(uri).map_err(|e| uri_error(uri, &target, &e))?;
        let tracker = Arc::new(Tracker::new(
            name,
            config.pool.max_size,
            // Server selection, then a connect: longer than that, the
            // caller has given up.
            config.pool.acquire_timeout + config.pool.connect_timeout,
            config.observer.as_ref().map(|o| o.0.clone()),
        ));
        Ok(MongoPool {
            inner: Arc::new(Inner {
                name: name.to_string(),
                uri: uri.to_string(),
                target,
                default_database: parsed.default_database,
                config,
                client: OnceCell::new(),
                tracker,
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The URI with its password redacted.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The configuration.
    pub fn config(&self) -> &MongoConfig {
        &self.inner.config
    }

    /// The shared client, built on the first call (a `mongodb+srv://` URI is
    /// resolved then). Cheap: a clone of the one client.
    ///
    /// # Errors
    /// [`MongoError::Closed`] after [`close`](Pool::close);
    /// [`MongoError::Uri`] when the options are refused or SRV records cannot
    /// be resolved (the next call tries again).
    pub async fn client(&self) -> Result<Client, MongoError> {
        if self.inner.closed.load(SeqCst) {
            return Err(self.closed());
        }
        let client = self
            .inner
            .client
            .get_or_try_init(|| self.build())
            .await?
            .clone();
        if self.inner.closed.load(SeqCst) {
            // Closed while building: `close` did not see this client.
            client.shutdown().immediate(true).await;
            return Err(self.closed());
        }
        Ok(client)
    }

    async fn build(&self) -> Result<Client, MongoError> {
        let i = &self.inner;
        let mut options = ClientOptions::parse(&i.uri)
            .await
            .map_err(|e| uri_error(&i.uri, &i.target, &e))?;
        i.config.apply(&i.name, &mut options);
        let cmap = Arc::clone(&i.tracker);
        options.cmap_event_handler = Some(EventHandler::callback(move |e| cmap.on_cmap(e)));
        let sdam = Arc::clone(&i.tracker);
        options.sdam_event_handler = Some(EventHandler::callback(move |e| sdam.on_sdam(e)));
        Client::with_options(options).map_err(|e| uri_error(&i.uri, &i.target, &e))
    }

    /// The database `name` on the shared client.
    ///
    /// # Errors
    /// As [`client`](Self::client).
    pub async fn database(&self, name: &str) -> Result<Database, MongoError> {
        Ok(self.client().await?.database(name))
    }

    /// The database the URI names (`mongodb://host/<database>`).
    ///
    /// # Errors
    /// [`MongoError::NoDefaultDatabase`] when the URI names none; otherwise as
    /// [`client`](Self::client).
    pub async fn default_database(&self) -> Result<Database, MongoError> {
        let Some(name) = &self.inner.default_database else {
            return Err(MongoError::NoDefaultDatabase {
                target: self.inner.target.clone(),
            });
        };
        self.database(name).await
    }

    /// Runs `ping` against the deployment under `ping_timeout` and returns
    /// its round trip. The outcome feeds `health()` and `last_error()`.
    ///
    /// # Errors
    /// [`MongoError::Timeout`] past `ping_timeout`; [`MongoError::Driver`]
    /// with the driver's error (a refused connection shows as a server
    /// selection error naming it); as [`client`](Self::client).
    pub async fn ping(&self) -> Result<Duration, MongoError> {
        self.ping_within(self.inner.config.ping_timeout).await
    }

    async fn ping_within(&self, deadline: Duration) -> Result<Duration, MongoError> {
        let client = self.client().await?;
        let started = Instant::now();
        let ran = tokio::time::timeout(
            deadline,
            client.database("admin").run_command(doc! { "ping": 1 }),
        )
        .await;
        let outcome = match ran {
            Ok(Ok(_)) => Ok(started.elapsed()),
            Ok(Err(source)) => Err(MongoError::Driver {
                op: "ping",
                target: self.inner.target.clone(),
                source,
            }),
            Err(_) => Err(MongoError::Timeout {
                op: "ping",
                target: self.inner.target.clone(),
                after: deadline,
            }),
        };
        self.inner
            .tracker
            .record(outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        outcome
    }

    /// Opens connections now: a `ping` (one connection), then waits, at most
    /// `connect_timeout`, until the driver holds `min_idle` connections per
    /// server. Returns how many are open.
    ///
    /// # Errors
    /// As [`ping`](Self::ping).
    pub async fn prewarm(&self) -> Result<usize, MongoError> {
        self.ping().await?;
        let want = self.inner.config.pool.min_idle.max(1);
        let deadline = Instant::now() + self.inner.config.pool.connect_timeout;
        loop {
            let s = self.stats();
            let open = s.idle + s.in_use;
            if open >= want || Instant::now() >= deadline {
                return Ok(open);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn closed(&self) -> MongoError {
        MongoError::Closed {
            name: self.inner.name.clone(),
        }
    }

    fn verdict(&self) -> HealthStatus {
        if self.inner.closed.load(SeqCst) {
            return HealthStatus::Unhealthy {
                reason: "pool is closed".into(),
            };
        }
        pool_core::util::health_verdict(&self.stats(), self.inner.tracker.recent_failure())
    }
}

impl Health for MongoPool {
    fn health(&self) -> HealthStatus {
        self.verdict()
    }

    /// A `ping` under `timeout` (and `ping_timeout`).
    fn probe(&self, timeout: Duration) -> BoxFuture<'_, HealthStatus> {
        Box::pin(async move {
            match self
                .ping_within(timeout.min(self.inner.config.ping_timeout))
                .await
            {
                Ok(_) => self.verdict(),
                Err(e) => HealthStatus::Unhealthy {
                    reason: e.to_string(),
                },
            }
        })
    }
}

impl Pool for MongoPool {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &str {
        "mongo"
    }

    fn stats(&self) -> Stats {
        self.inner.tracker.stats()
    }

    /// Shuts the client down: new calls fail with [`MongoError::Closed`];
    /// the driver waits for open cursors and sessions to be dropped. Past
    /// `timeout` it closes everything at once and this resolves `false`.
    fn close(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            self.inner.closed.store(true, SeqCst);
            let Some(client) = self.inner.client.get() else {
                return true;
            };
            match tokio::time::timeout(timeout, client.clone().shutdown()).await {
                Ok(()) => true,
                Err(_) => {
                    client.clone().shutdown().immediate(true).await;
                    false
                }
            }
        })
    }

    fn last_error(&self) -> Option<String> {
        self.inner.tracker.last_error()
    }
}

impl MongoPool {
    /// The stats (the same as [`Pool::stats`]): gauges and totals read from
    /// the driver's connection-pool events, summed over its servers.
    pub fn stats(&self) -> Stats {
        self.inner.tracker.stats()
    }
}

/// A URI error without the password, even should the driver's message echo
/// it.
fn uri_error(uri: &str, target: &str, e: &mongodb::error::Error) -> MongoError {
    let mut reason = e.to_string();
    if let Some(password) = password_of(uri) {
        reason = reason.replace(password, "***");
    }
    MongoError::Uri {
        uri: target.to_string(),
        reason,
    }
}

/// The password text of `scheme://user:password@hosts…`, if any.
fn password_of(uri: &str) -> Option<&str> {
    // Where the driver reads it: before the last `@` ahead of the options.
    let rest = &uri[uri.find("://")? + 3..];
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let userinfo = &rest[..rest.rfind('@')?];
    let password = &userinfo[userinfo.find(':')? + 1..];
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_uri_names_itself_without_its_password() {
        let e = MongoPool::new("mongodb://app:s3cret@h:notaport/db", MongoConfig::default())
            .unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("invalid MongoDB URI"), "{shown}");
        assert!(shown.contains("app:***@h"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let e = MongoPool::new("mongo://h/db", MongoConfig::default()).unwrap_err();
        assert!(e.to_string().contains("scheme"), "{e}");
    }

    #[test]
    fn an_srv_uri_is_taken_with_the_srv_feature_and_named_without_it() {
        let r = MongoPool::new(
            "mongodb+srv://app:s3cret@cluster0.example.invalid/shop",
            MongoConfig::default(),
        );
        if cfg!(feature = "srv") {
            // Parsed now, resolved when the client is built.
            assert!(r.is_ok(), "{:?}", r.err());
        } else {
            let e = r.unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(shown.contains("`srv` feature"), "{shown}");
            assert!(shown.contains("app:***@cluster0"), "{shown}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn the_password_is_found_where_the_driver_reads_it() {
        assert_eq!(password_of("mongodb://u:p%40ss@h1,h2/db"), Some("p%40ss"));
        assert_eq!(password_of("mongodb://u@h/db"), None);
        assert_eq!(password_of("mongodb://h/db"), None);
    }

    #[test]
    fn bad_knobs_are_refused_by_name() {
        let config = MongoConfig {
            max_connecting: Some(0),
            ..Default::default()
        };
        let e = MongoPool::new("mongodb://h/db", config).unwrap_err();
        assert!(e.to_string().contains("max_connecting"), "{e}");
    }

    #[test]
    fn debug_shows_no_password() {
        let pool = MongoPool::new("mongodb://u:s3cret@h/db", MongoConfig::default()).unwrap();
        let shown = format!("{pool:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("u:***@h"),
            "{shown}"
        );
    }
}
