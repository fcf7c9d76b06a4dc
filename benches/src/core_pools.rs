//! The pools of `bench core`, behind one tiny surface: ours, the workload's
//! limit (a minimal barging pool), and the peers deadpool, bb8, qp and mobc,
//! each on the same do-nothing manager.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The same tiny surface over each pool under test.
pub trait BenchPool: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    /// The pool's guard.
    type Conn<'a>: Send
    where
        Self: 'a;
    fn build(size: usize) -> impl Future<Output = Self> + Send;
    /// One checkout (panics on error: a bench run has none).
    fn acquire(&self) -> impl Future<Output = Self::Conn<'_>> + Send;

    /// One get() and drop.
    fn once(&self) -> impl Future<Output = ()> + Send {
        async {
            let c = self.acquire().await;
            std::hint::black_box(&c);
        }
    }

    /// One get(), hold for `hold`, drop; returns the wait.
    fn held(&self, hold: Duration) -> impl Future<Output = Duration> + Send {
        async move {
            let t = Instant::now();
            let c = self.acquire().await;
            let waited = t.elapsed();
            tokio::time::sleep(hold).await;
            drop(c);
            waited
        }
    }
}

// ----- unipool -------------------------------------------------------------------

/// The do-nothing manager. `Noop<1>` is the same manager as another type:
/// the observed pool gets code of its own, so that adding it does not
/// change how the compiler inlines the unobserved pool's `get()` (with two
/// callers of one instance, it stops inlining it into the loop).
pub struct Noop<const VARIANT: u8 = 0>;

impl<const VARIANT: u8> pool_core::Manager for Noop<VARIANT> {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn check(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
}

#[derive(Clone)]
pub struct Ours(pub pool_core::ConnectionPool<Noop>);

impl BenchPool for Ours {
    const NAME: &'static str = "unipool";
    type Conn<'a> = pool_core::PooledConnection<'a, Noop>;
    async fn build(size: usize) -> Self {
        let pool = pool_core::ConnectionPool::builder()
            .max_size(size)
            .acquire_timeout(Duration::from_secs(60))
            .fairness_window(window_from_env())
            .build(Noop)
            .expect("valid bench config");
        Ours(pool)
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}

/// Counts every event of a pool, per kind, in striped counters (what a
/// metrics exporter does at the least).
#[derive(Default)]
pub struct Counting([pool_core::util::StripedCounter; 6]);

impl Counting {
    fn kind(event: &pool_core::Event) -> usize {
        use pool_core::Event::*;
        match event {
            Created { .. } => 0,
            CheckedOut { .. } => 1,
            CheckedIn { .. } => 2,
            Closed { .. } => 3,
            TimedOut { .. } => 4,
            _ => 5,
        }
    }
}

impl pool_core::Observer for Counting {
    fn on_event(&self, _pool: &str, event: pool_core::Event) {
        self.0[Self::kind(&event)].incr();
    }

    /// A batch of checkouts and returns: two adds.
    fn on_events(&self, _pool: &str, batch: pool_core::EventBatch<'_>) {
        self.0[1].add(batch.checkouts() as u64);
        self.0[2].add(batch.returns() as u64);
    }
}

/// Ours with a counting observer installed.
#[derive(Clone)]
pub struct Observed(pub pool_core::ConnectionPool<Noop<1>>);

impl BenchPool for Observed {
    const NAME: &'static str = "unipool+observer";
    type Conn<'a> = pool_core::PooledConnection<'a, Noop<1>>;
    async fn build(size: usize) -> Self {
        let pool = pool_core::ConnectionPool::builder()
            .max_size(size)
            .acquire_timeout(Duration::from_secs(60))
            .fairness_window(window_from_env())
            .observer(std::sync::Arc::new(Counting::default()))
            .build(Noop::<1>)
            .expect("valid bench config");
        Observed(pool)
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}

/// Ours with the observer a registry installs for its exporters (time
/// buckets, atomic adds).
#[derive(Clone)]
pub struct RegistryObserved(pub pool_core::ConnectionPool<Noop<2>>);

impl BenchPool for RegistryObserved {
    const NAME: &'static str = "unipool+registry observer";
    type Conn<'a> = pool_core::PooledConnection<'a, Noop<2>>;
    async fn build(size: usize) -> Self {
        let pool = pool_core::ConnectionPool::builder()
            .max_size(size)
            .acquire_timeout(Duration::from_secs(60))
            .fairness_window(window_from_env())
            .observer(unipool::Registry::bench_observer())
            .build(Noop::<2>)
            .expect("valid bench config");
        RegistryObserved(pool)
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}

/// `fairness_window` for our pools: the default 1 ms, or `UNIPOOL_BENCH_WINDOW_US`
/// to compare (0 = strict FIFO hand-off).
pub fn window_from_env() -> Duration {
    std::env::var("UNIPOOL_BENCH_WINDOW_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_millis(1), Duration::from_micros)
}

// ----- deadpool ------------------------------------------------------------------

pub struct DpNoop;

impl deadpool::managed::Manager for DpNoop {
    type Type = u64;
    type Error = Infallible;
    async fn create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn recycle(
        &self,
        _: &mut u64,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

#[derive(Clone)]
pub struct Deadpool(deadpool::managed::Pool<DpNoop>);

impl BenchPool for Deadpool {
    const NAME: &'static str = "deadpool";
    type Conn<'a> = deadpool::managed::Object<DpNoop>;
    async fn build(size: usize) -> Self {
        Deadpool(
            deadpool::managed::Pool::builder(DpNoop)
                .max_size(size)
                .build()
                .expect("valid deadpool config"),
        )
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}

// ----- bb8 -----------------------------------------------------------------------

pub struct Bb8Noop;

impl bb8::ManageConnection for Bb8Noop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn is_valid(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

#[derive(Clone)]
pub struct Bb8(bb8::Pool<Bb8Noop>);

impl BenchPool for Bb8 {
    const NAME: &'static str = "bb8";
    type Conn<'a> = bb8::PooledConnection<'a, Bb8Noop>;
    async fn build(size: usize) -> Self {
        Bb8(bb8::Pool::builder()
            .max_size(size as u32)
            .connection_timeout(Duration::from_secs(60))
            .build(Bb8Noop)
            .await
            .expect("valid bb8 config"))
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}

// ----- the workload's limit --------------------------------------------------------

/// The least a pool can do for this workload: a lock-free idle queue, a count
/// of connections, and a `Notify` for the slow path. No fairness bound, no
/// timeouts, no stats: what every figure is read against.
#[derive(Clone)]
pub struct Barging(Arc<BargingInner>);

pub struct BargingInner {
    idle: crossbeam_queue::ArrayQueue<u64>,
    size: AtomicUsize,
    max: usize,
    notify: tokio::sync::Notify,
}

pub struct BargingGuard<'a> {
    pool: &'a BargingInner,
    conn: u64,
}

impl Drop for BargingGuard<'_> {
    fn drop(&mut self) {
        let _ = self.pool.idle.push(self.conn);
        self.pool.notify.notify_one();
    }
}

impl BenchPool for Barging {
    const NAME: &'static str = "limit";
    type Conn<'a> = BargingGuard<'a>;
    async fn build(size: usize) -> Self {
        Barging(Arc::new(BargingInner {
            idle: crossbeam_queue::ArrayQueue::new(size),
            size: AtomicUsize::new(0),
            max: size,
            notify: tokio::sync::Notify::new(),
        }))
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        let p = &*self.0;
        loop {
            if let Some(conn) = p.idle.pop() {
                return BargingGuard { pool: p, conn };
            }
            let s = p.size.load(Acquire);
            if s < p.max && p.size.compare_exchange(s, s + 1, AcqRel, Acquire).is_ok() {
                return BargingGuard { pool: p, conn: 0 };
            }
            let notified = p.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(conn) = p.idle.pop() {
                return BargingGuard { pool: p, conn };
            }
            notified.await;
        }
    }
}

// ----- qp ----------------------------------------------------------------------------

pub struct QpNoop;

#[qp::async_trait]
impl qp::resource::Manage for QpNoop {
    type Output = u64;
    type Error = Infallible;
    async fn try_create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
}

#[derive(Clone)]
pub struct Qp(qp::Pool<QpNoop>);

impl BenchPool for Qp {
    const NAME: &'static str = "qp";
    type Conn<'a> = qp::Pooled<'a, QpNoop>;
    async fn build(size: usize) -> Self {
        Qp(qp::Pool::new(QpNoop, size))
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.acquire().await.expect("get")
    }
}

// ----- mobc --------------------------------------------------------------------------

pub struct MobcNoop;

#[mobc::async_trait]
impl mobc::Manager for MobcNoop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn check(&self, conn: u64) -> Result<u64, Infallible> {
        Ok(conn)
    }
}

#[derive(Clone)]
pub struct Mobc(mobc::Pool<MobcNoop>);

impl BenchPool for Mobc {
    const NAME: &'static str = "mobc";
    type Conn<'a> = mobc::Connection<MobcNoop>;
    async fn build(size: usize) -> Self {
        Mobc(
            mobc::Pool::builder()
                .max_open(size as u64)
                .get_timeout(Some(Duration::from_secs(60)))
                .build(MobcNoop),
        )
    }
    async fn acquire(&self) -> Self::Conn<'_> {
        self.0.get().await.expect("get")
    }
}
