//! The one table of the pool's knobs. Everything else is generated from it:
//! the `PoolConfig` fields with their docs and defaults, `PoolConfig::set`
//! (the text form of TOML and environment variables), serde, the `Builder`
//! setters, and the list a test checks `docs/configuration.md` against.
//!
//! Each row: doc comment, `name: type = "default as text", "text form"`. The
//! default is written once, as text, and parsed by the same code as a user's
//! value (a unit test parses every default).

/// Calls `$then!` with every row of the table.
macro_rules! knob_table {
    ($then:ident) => {
        $then! {
            /// Connections alive at once: idle + in use + being opened.
            max_size: usize = "10", "integer ≥ 1, ≤ 65 536";
            /// Idle connections the reaper keeps open and never closes below.
            min_idle: usize = "0", "integer ≤ `max_size`";
            /// The largest `max_size` that `set_max_size` may set at run time:
            /// slots are allocated up front for it. `0` = `max_size` (the pool
            /// can shrink and grow back, not beyond).
            grow_limit: usize = "0", "`0`, or integer ≥ `max_size`, ≤ 65 536";
            /// Longest a `get()` waits, everything included (queueing,
            /// connecting, check, reset).
            acquire_timeout: std::time::Duration = "30s", "duration > 0";
            /// Longest one connect attempt; `check` and `reset` run under the
            /// same bound.
            connect_timeout: std::time::Duration = "10s", "duration > 0";
            /// Idle longer than this → closed by the reaper (never below
            /// `min_idle`). `None` (`off`) = never.
            idle_timeout: Option<std::time::Duration> = "10m", "duration or `off`";
            /// Older than this → closed when idle or on return. Each connection
            /// gets up to −10 % jitter so connections opened together do not
            /// expire together. `None` (`off`) = never.
            max_lifetime: Option<std::time::Duration> = "30m", "duration or `off`";
            /// Idle and unprobed longer than this → probed with
            /// `Manager::check` by the reaper. `None` (`off`) = never.
            keepalive_interval: Option<std::time::Duration> = "2m", "duration or `off`";
            /// On checkout, `Manager::check` runs only if the connection was
            /// idle longer than this (`0s`: always), measured on the pool's
            /// coarse clock, refreshed every quarter of this (10–250 ms).
            validate_after: std::time::Duration = "500ms", "duration";
            /// Period of the reaper; at least 100 ms.
            reap_interval: std::time::Duration = "30s", "duration ≥ 100ms";
            /// Held longer than this → a warning naming where it was acquired.
            /// `None` (`off`) = no warning.
            leak_threshold: Option<std::time::Duration> = "off", "duration or `off`";
            /// Which idle connection is reused first.
            queue_mode: $crate::QueueMode = "lifo", "`lifo` / `fifo`";
            /// Longest a parked waiter can be overtaken by a running task; past
            /// it, returned connections are handed to the oldest waiter. `0s` =
            /// strict FIFO hand-off.
            fairness_window: std::time::Duration = "1ms", "duration";
            /// Extra connect attempts after a transient failure (refused,
            /// reset, connect timeout), inside the acquire deadline. `0` = fail
            /// fast.
            connect_retries: u32 = "0", "integer";
            /// First backoff between connect retries; doubles per attempt (cap
            /// 10 s), full jitter.
            retry_backoff: std::time::Duration = "100ms", "duration";
            /// Connects failed in a row (retries included) that open the
            /// circuit breaker: while open, a `get()` that finds no idle
            /// connection fails at once with `CircuitOpen`. `0` = no breaker.
            breaker_threshold: u32 = "0", "integer";
            /// How long the breaker stays open before one probe connect is let
            /// through (its success closes it, its failure opens it again).
            breaker_open: std::time::Duration = "5s", "duration > 0";
        }
    };
}

pub(crate) use knob_table;
