//! The three pools the scenarios compare, built with the same settings
//! through each one's own knobs, and what every scenario reads from them.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

use pool_core::ConnectionPool;
use pool_sql::{PgManager, PgPool, PgPoolExt};
use tokio_postgres::{Client, NoTls};

type Bb8Manager = bb8_postgres::PostgresConnectionManager<NoTls>;

/// Which pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ours,
    Bb8,
    Deadpool,
}

/// Every pool, ours first.
pub const ALL: [Kind; 3] = [Kind::Ours, Kind::Bb8, Kind::Deadpool];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "pool-sql",
            Kind::Bb8 => "bb8-postgres 0.9",
            Kind::Deadpool => "deadpool-postgres 0.14",
        }
    }
}

/// The settings every pool gets where it has the knob. bb8 has no connect
/// timeout of its own (its `connection_timeout` bounds the whole `get()`),
/// deadpool has no `min_idle`, `idle_timeout` nor reaper: tokio-postgres's
/// `connect_timeout` is set for both, which bounds the TCP connect only.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    pub max: usize,
    pub min_idle: usize,
    /// How long a caller may wait for a connection.
    pub wait: Duration,
    pub connect: Duration,
    pub idle_timeout: Option<Duration>,
    pub reap: Duration,
}

impl Knobs {
    pub fn new(max: usize, wait: Duration, connect: Duration) -> Knobs {
        Knobs {
            max,
            min_idle: 0,
            wait,
            connect,
            idle_timeout: None,
            reap: Duration::from_secs(30),
        }
    }
}

/// One pool under test.
pub enum Subject {
    Ours(PgPool),
    Bb8(bb8::Pool<Bb8Manager>),
    Deadpool(deadpool_postgres::Pool),
}

/// A checked-out connection of any of them.
pub enum Lease<'a> {
    Ours(pool_core::PooledConnection<'a, PgManager>),
    Bb8(bb8::PooledConnection<'a, Bb8Manager>),
    Deadpool(deadpool_postgres::Object),
}

impl Deref for Lease<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        match self {
            Lease::Ours(c) => c,
            Lease::Bb8(c) => c,
            Lease::Deadpool(c) => c,
        }
    }
}

/// What a pool says about itself; `None` where it does not say.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub size: usize,
    pub idle: usize,
    pub waiting: Option<usize>,
}

impl Subject {
    /// Builds `kind` against `url` with `knobs`.
    pub async fn build(kind: Kind, url: &str, knobs: &Knobs) -> Subject {
        let mut config: tokio_postgres::Config = url.parse().expect("a PostgreSQL URL");
        config.connect_timeout(knobs.connect);
        match kind {
            Kind::Ours => Subject::Ours(
                ConnectionPool::builder()
                    .max_size(knobs.max)
                    .min_idle(knobs.min_idle)
                    .idle_timeout(knobs.idle_timeout)
                    .reap_interval(knobs.reap)
                    .acquire_timeout(knobs.wait)
                    .connect_timeout(knobs.connect)
                    .build(PgManager::from_url(url).unwrap())
                    .unwrap(),
            ),
            Kind::Bb8 => Subject::Bb8(
                bb8::Pool::builder()
                    .max_size(knobs.max as u32)
                    .min_idle((knobs.min_idle > 0).then_some(knobs.min_idle as u32))
                    .idle_timeout(knobs.idle_timeout)
                    .reaper_rate(knobs.reap)
                    .connection_timeout(knobs.wait)
                    .build(Bb8Manager::new(config, NoTls))
                    .await
                    .unwrap(),
            ),
            Kind::Deadpool => Subject::Deadpool(
                deadpool_postgres::Pool::builder(deadpool_postgres::Manager::from_config(
                    config,
                    NoTls,
                    deadpool_postgres::ManagerConfig {
                        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                    },
                ))
                .max_size(knobs.max)
                .wait_timeout(Some(knobs.wait))
                .create_timeout(Some(knobs.connect))
                .recycle_timeout(Some(knobs.connect))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .unwrap(),
            ),
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    pub fn kind(&self) -> Kind {
        match self {
            Subject::Ours(_) => Kind::Ours,
            Subject::Bb8(_) => Kind::Bb8,
            Subject::Deadpool(_) => Kind::Deadpool,
        }
    }

    /// A connection, or the pool's error as its `Display`.
    pub async fn get(&self) -> Result<Lease<'_>, String> {
        match self {
            Subject::Ours(p) => p.get().await.map(Lease::Ours).map_err(|e| e.to_string()),
            Subject::Bb8(p) => p.get().await.map(Lease::Bb8).map_err(|e| e.to_string()),
            Subject::Deadpool(p) => p
                .get()
                .await
                .map(Lease::Deadpool)
                .map_err(|e| e.to_string()),
        }
    }

    /// `SELECT 1` on a checked-out connection (pool-sql: through its
    /// helper, as its users call it).
    pub async fn call(&self) -> Result<(), String> {
        if let Subject::Ours(p) = self {
            return p
                .query("SELECT 1", &[])
                .await
                .map(drop)
                .map_err(|e| e.to_string());
        }
        let c = self.get().await?;
        c.simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// `sql` with `$1 = v` on a checked-out connection; the first column
    /// (pool-sql: through its helper).
    pub async fn echo(&self, sql: &str, v: i32) -> Result<i32, String> {
        if let Subject::Ours(p) = self {
            let rows = p.query(sql, &[&v]).await.map_err(|e| e.to_string())?;
            return Ok(rows[0].get::<_, i32>(0));
        }
        let c = self.get().await?;
        c.query_one(sql, &[&v])
            .await
            .map(|row| row.get::<_, i32>(0))
            .map_err(|e| e.to_string())
    }

    /// Opens `n` connections at once (each runs `SELECT 1`) and returns them.
    pub async fn warm(&self, n: usize) {
        let mut leases = Vec::new();
        for _ in 0..n {
            let c = self.get().await.expect("serves before the fault");
            c.simple_query("SELECT 1").await.expect("answers");
            leases.push(c);
        }
    }

    pub fn counts(&self) -> Counts {
        match self {
            Subject::Ours(p) => {
                let s = p.stats();
                Counts {
                    size: s.size,
                    idle: s.idle,
                    waiting: Some(s.waiting),
                }
            }
            Subject::Bb8(p) => {
                let s = p.state();
                Counts {
                    size: s.connections as usize,
                    idle: s.idle_connections as usize,
                    waiting: None,
                }
            }
            Subject::Deadpool(p) => {
                let s = p.status();
                Counts {
                    size: s.size,
                    idle: s.available,
                    waiting: Some(s.waiting),
                }
            }
        }
    }
}

/// Server-side ids of the connections held right now, to catch one handed to
/// two callers at once.
#[derive(Default)]
pub struct Holders {
    held: Mutex<HashSet<i32>>,
    pub twice: AtomicUsize,
}

impl Holders {
    pub fn hold(&self, pid: i32) {
        if !self.held.lock().unwrap().insert(pid) {
            self.twice.fetch_add(1, SeqCst);
        }
    }

    pub fn release(&self, pid: i32) {
        self.held.lock().unwrap().remove(&pid);
    }
}
