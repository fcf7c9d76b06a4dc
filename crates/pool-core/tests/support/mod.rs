//! A scriptable manager for the engine's tests: every phase (connect, check,
//! reset) can succeed, fail, be slow or never answer, and the manager counts the
//! connections alive at any instant.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::Manager;

/// What one phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Ok,
    Fail,
    Slow(Duration),
    Hang,
}

impl Act {
    async fn run(self, what: &str) -> Result<(), TestError> {
        match self {
            Act::Ok => Ok(()),
            Act::Fail => Err(TestError(format!("{what} refused"))),
            Act::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Act::Hang => std::future::pending().await,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TestError(pub String);

/// Shared counters of a [`TestManager`], kept after the manager moved into a pool.
#[derive(Debug, Default)]
pub struct Counts {
    /// Connections alive right now (created and not yet dropped).
    pub live: AtomicUsize,
    /// The most connections ever alive at once.
    pub max_live: AtomicUsize,
    pub connect_calls: AtomicUsize,
    pub check_calls: AtomicUsize,
    pub reset_calls: AtomicUsize,
    pub next_id: AtomicUsize,
}

impl Counts {
    pub fn live(&self) -> usize {
        self.live.load(SeqCst)
    }
    pub fn max_live(&self) -> usize {
        self.max_live.load(SeqCst)
    }
    pub fn connects(&self) -> usize {
        self.connect_calls.load(SeqCst)
    }
    pub fn checks(&self) -> usize {
        self.check_calls.load(SeqCst)
    }
    pub fn resets(&self) -> usize {
        self.reset_calls.load(SeqCst)
    }
}

#[derive(Debug)]
pub struct Script {
    pub connect: Act,
    pub check: Act,
    pub reset: Act,
}

pub struct TestManager {
    pub counts: Arc<Counts>,
    pub script: Arc<Mutex<Script>>,
    pub broken: Arc<AtomicBool>,
    pub transient: bool,
    /// What `reset_is_cancel_safe` answers.
    pub cancel_safe_reset: bool,
}

/// A connection: its id, and a flag the test can set to make it "dirty".
#[derive(Debug)]
pub struct Conn {
    pub id: usize,
    pub dirty: bool,
    counts: Arc<Counts>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.counts.live.fetch_sub(1, SeqCst);
    }
}

impl TestManager {
    pub fn new() -> Self {
        TestManager {
            counts: Arc::default(),
            script: Arc::new(Mutex::new(Script {
                connect: Act::Ok,
                check: Act::Ok,
                reset: Act::Ok,
            })),
            broken: Arc::default(),
            transient: false,
            cancel_safe_reset: false,
        }
    }

    /// A manager whose reset a cancel cannot leave half done.
    pub fn cancel_safe_reset(mut self) -> Self {
        self.cancel_safe_reset = true;
        self
    }

    pub fn connect_with(self, a: Act) -> Self {
        self.script.lock().unwrap().connect = a;
        self
    }
    pub fn check_with(self, a: Act) -> Self {
        self.script.lock().unwrap().check = a;
        self
    }
    pub fn reset_with(self, a: Act) -> Self {
        self.script.lock().unwrap().reset = a;
        self
    }

    /// Handles to steer and observe the manager after it moved into a pool.
    pub fn handles(&self) -> (Arc<Counts>, Arc<Mutex<Script>>) {
        (self.counts.clone(), self.script.clone())
    }
}

impl Manager for TestManager {
    type Connection = Conn;
    type Error = TestError;

    async fn connect(&self) -> Result<Conn, TestError> {
        self.counts.connect_calls.fetch_add(1, SeqCst);
        let act = self.script.lock().unwrap().connect;
        act.run("connect").await?;
        let live = self.counts.live.fetch_add(1, SeqCst) + 1;
        self.counts.max_live.fetch_max(live, SeqCst);
        Ok(Conn {
            id: self.counts.next_id.fetch_add(1, SeqCst),
            dirty: false,
            counts: self.counts.clone(),
        })
    }

    async fn check(&self, _conn: &mut Conn) -> Result<(), TestError> {
        self.counts.check_calls.fetch_add(1, SeqCst);
        let act = self.script.lock().unwrap().check;
        act.run("check").await
    }

    async fn reset(&self, conn: &mut Conn) -> Result<(), TestError> {
        self.counts.reset_calls.fetch_add(1, SeqCst);
        let act = self.script.lock().unwrap().reset;
        act.run("reset").await?;
        conn.dirty = false;
        Ok(())
    }

    fn reset_is_cancel_safe(&self, _conn: &Conn) -> bool {
        self.cancel_safe_reset
    }

    fn is_broken(&self, conn: &mut Conn) -> bool {
        self.broken.load(SeqCst) || conn.dirty
    }

    fn is_transient(&self, _: &TestError) -> bool {
        self.transient
    }

    fn kind(&self) -> &'static str {
        "test"
    }
}

/// Lets every spawned task run until all are parked (on paused time this also
/// fires due timers).
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// A small deterministic generator for randomized tests (xorshift64*): the same
/// seed gives the same schedule on paused time.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
