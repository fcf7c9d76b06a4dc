//! The client-side cost of one request, for instruction counting: N sequential
//! GETs through pool-http or the bare shared reqwest client on a current-thread
//! runtime, against the in-process server. Compare two N under callgrind; the
//! difference divided by the difference in N is the cost of one request:
//!
//! ```text
//! cargo build --release -p unipool-benches --example http_cost
//! valgrind --tool=callgrind target/release/examples/http_cost ours 2000
//! valgrind --tool=callgrind target/release/examples/http_cost bare 2000
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pool_http::{HttpConfig, HttpPool};
use unipool_tests::http_server;

/// Counts allocations, to report them per request.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = http_server::start().await;
        let url = server.url("/ok");
        let config = HttpConfig {
            max_in_flight: 1024,
            max_in_flight_per_host: 1024,
            max_idle_per_host: 128,
            retry: pool_http::RetryPolicy {
                // HTTP_COST_ATTEMPTS=1: no copy of each request for a retry.
                max_attempts: std::env::var("HTTP_COST_ATTEMPTS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(3),
                ..Default::default()
            },
            ..HttpConfig::default()
        };
        match which.as_str() {
            "ours" => {
                let pool = HttpPool::new("cost", config).expect("pool");
                eprintln!(
                    "send future: {} bytes",
                    std::mem::size_of_val(&pool.send(pool.get(&url).expect("url")))
                );
                let before = ALLOCS.load(Relaxed);
                for _ in 0..n {
                    let r = pool.send(pool.get(&url).expect("url")).await.expect("send");
                    r.bytes().await.expect("body");
                }
                per_request(before, n);
            }
            "bare" => {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(128)
                    .connect_timeout(config.connect_timeout)
                    .timeout(config.request_timeout)
                    .pool_idle_timeout(config.pool_idle_timeout)
                    .user_agent(config.user_agent.clone())
                    .build()
                    .expect("client");
                eprintln!(
                    "send future: {} bytes",
                    std::mem::size_of_val(&client.get(&url).send())
                );
                let before = ALLOCS.load(Relaxed);
                for _ in 0..n {
                    let r = client.get(&url).send().await.expect("send");
                    r.bytes().await.expect("body");
                }
                per_request(before, n);
            }
            other => panic!("ours or bare, not {other}"),
        }
    });
}

/// Allocations per request, client and server together.
fn per_request(before: u64, n: usize) {
    let allocs = ALLOCS.load(Relaxed) - before;
    eprintln!("{:.1} allocations per request", allocs as f64 / n as f64);
}
