//! Any `bb8::ManageConnection` runs on the engine through `Bb8Manager`.
#![cfg(feature = "bb8")]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use pool_core::{Bb8Manager, ConnectionPool};

struct Counter {
    made: Arc<AtomicUsize>,
    validated: Arc<AtomicUsize>,
}

impl bb8::ManageConnection for Counter {
    type Connection = usize;
    type Error = Infallible;
    async fn connect(&self) -> Result<usize, Infallible> {
        Ok(self.made.fetch_add(1, SeqCst))
    }
    async fn is_valid(&self, _: &mut usize) -> Result<(), Infallible> {
        self.validated.fetch_add(1, SeqCst);
        Ok(())
    }
    fn has_broken(&self, conn: &mut usize) -> bool {
        *conn == 0
    }
}

#[tokio::test(start_paused = true)]
async fn a_bb8_manager_runs_unchanged() {
    let made = Arc::new(AtomicUsize::new(0));
    let validated = Arc::new(AtomicUsize::new(0));
    let pool = ConnectionPool::builder()
        .max_size(2)
        .validate_after(Duration::ZERO)
        .build(Bb8Manager(Counter {
            made: made.clone(),
            validated: validated.clone(),
        }))
        .unwrap();
    // Connection 0 is "broken" by has_broken and must not come back.
    assert_eq!(*pool.get().await.unwrap(), 0);
    assert_eq!(*pool.get().await.unwrap(), 1);
    assert_eq!(*pool.get().await.unwrap(), 1);
    assert_eq!(made.load(SeqCst), 2);
    assert_eq!(validated.load(SeqCst), 1, "is_valid ran on reuse");
    assert_eq!(pool.stats().closed_broken, 1);
}
