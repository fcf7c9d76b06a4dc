//! # pool-mongo
//!
//! The official MongoDB driver already pools connections, per server, inside
//! each `mongodb::Client`; pooling `Client`s would be wrong, and a `Client`
//! per call (the usual mistake) opens a connection, a monitor and a TLS
//! handshake per operation. [`MongoPool`] holds **one shared client per URI**,
//! maps unipool's knobs onto the driver's options ([`MongoConfig`]), and reads
//! the driver's connection-pool (CMAP) and heartbeat events into the same
//! [`Stats`](pool_core::Stats), engine [`Event`](pool_core::Event)s and health
//! verdicts as every other unipool pool; it implements
//! [`Pool`](pool_core::Pool), so registries and exporters see it like the
//! others. See `docs/mongo.md`.
//!
//! Feature `srv` (on by default): `mongodb+srv://` URIs, through the driver's
//! DNS resolver; without it such a URI is refused by [`MongoPool::new`] with
//! an error that names the feature.
//!
//! ```no_run
//! use mongodb::bson::doc;
//! use pool_mongo::{MongoConfig, MongoPool};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = MongoPool::new("mongodb://127.0.0.1:27017/app", MongoConfig::default())?;
//! pool.prewarm().await?;
//! let db = pool.default_database().await?;
//! db.collection("events").insert_one(doc! { "kind": "started" }).await?;
//! assert!(pool.stats().reuse_rate >= 0.0);
//! # Ok(()) }
//! ```

mod clients;
mod config;
mod error;
mod pool;
mod tracker;

pub use clients::MongoClients;
pub use config::MongoConfig;
pub use error::MongoError;
pub use pool::MongoPool;

pub use mongodb;
pub use pool_core;
