//! Shared support of the cross-crate, real-service and fault tests: where the
//! machine's servers are, throwaway servers to kill and restart, and a TCP proxy
//! that injects faults between a pool and a real server.

pub mod http_server;
pub mod mongo_server;
pub mod pg;
pub mod pgbouncer;
pub mod proxy;
pub mod redis_cluster;
pub mod redis_server;
pub mod rng;
pub mod ws_server;
pub mod zmq_peer;

use std::sync::atomic::{AtomicUsize, Ordering};

/// A new, empty temp directory unique to this process and call.
pub fn temp_dir(what: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "unipool-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// This process's resident memory, in bytes (Linux `/proc/self/statm`; 0 if
/// it cannot be read), after glibc's allocator gave back what is free: the
/// reading is then what is in use, not what the allocator happened to keep
/// (which moved it by ±5 % from run to run).
pub fn rss() -> u64 {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: glibc's malloc_trim takes no pointer and only releases free
    // pages of the allocator's own heaps.
    unsafe { malloc_trim(0) };
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Returns from the calling test, loudly, when `cargo xtask test` found no
/// server of this kind and could not start one (it says so through
/// `UNIPOOL_SKIP_POSTGRES` / `UNIPOOL_SKIP_REDIS`; under `CI` it fails instead of
/// setting them).
#[macro_export]
macro_rules! require {
    ($what:literal) => {
        if $crate::skipped($what) {
            return;
        }
    };
}

/// Whether the suites needing `what` (`"postgres"`, `"redis"`, `"mongo"`) are to be skipped.
pub fn skipped(what: &str) -> bool {
    let var = format!("UNIPOOL_SKIP_{}", what.to_uppercase());
    let skip = std::env::var_os(&var).is_some();
    if skip {
        eprintln!("SKIPPED: no {what} server is reachable ({var} is set by cargo xtask test)");
    }
    skip
}
