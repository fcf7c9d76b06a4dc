//! Bad configuration values get a typed error naming the knob, never a panic.

mod support;

use std::time::Duration;

use pool_core::{ConfigError, ConnectionPool, PoolConfig, QueueMode};
use support::TestManager;

fn knob_of(e: &ConfigError) -> &str {
    match e {
        ConfigError::InvalidValue { knob, .. } | ConfigError::Invalid { knob, .. } => knob,
        ConfigError::UnknownKnob(k) => k,
        ConfigError::NoRuntime => "",
    }
}

#[tokio::test]
async fn a_zero_max_size_names_the_knob() {
    let err = ConnectionPool::builder()
        .max_size(0)
        .build(TestManager::new())
        .unwrap_err();
    assert_eq!(knob_of(&err), "max_size");
    assert!(err.to_string().contains("max_size"));
}

#[tokio::test]
async fn min_idle_above_max_size_names_the_knob() {
    let err = ConnectionPool::builder()
        .max_size(2)
        .min_idle(3)
        .build(TestManager::new())
        .unwrap_err();
    assert_eq!(knob_of(&err), "min_idle");
    assert!(err.to_string().contains("larger than max_size"), "{err}");
}

#[test]
fn ten_parsecs_is_not_a_duration() {
    let mut c = PoolConfig::default();
    let err = c.set("acquire_timeout", "10 parsecs").unwrap_err();
    assert_eq!(knob_of(&err), "acquire_timeout");
    assert!(err.to_string().contains("10 parsecs"), "{err}");
    assert_eq!(
        c.acquire_timeout,
        Duration::from_secs(30),
        "unchanged on error"
    );
}

#[test]
fn knobs_parse_from_text_as_in_toml_and_the_environment() {
    let mut c = PoolConfig::default();
    c.set("MAX_SIZE", "20").unwrap();
    c.set("acquire_timeout", "250ms").unwrap();
    c.set("idle_timeout", "off").unwrap();
    c.set("max_lifetime", "1h 30m").unwrap();
    c.set("queue_mode", "FIFO").unwrap();
    c.set("fairness_window", "0s").unwrap();
    assert_eq!(c.max_size, 20);
    assert_eq!(c.acquire_timeout, Duration::from_millis(250));
    assert_eq!(c.idle_timeout, None);
    assert_eq!(c.max_lifetime, Some(Duration::from_secs(5400)));
    assert_eq!(c.queue_mode, QueueMode::Fifo);
    assert_eq!(c.fairness_window, Duration::ZERO);
    c.validate().unwrap();
}

#[test]
fn bad_values_name_their_knob() {
    let mut c = PoolConfig::default();
    for (knob, value) in [
        ("max_size", "-1"),
        ("max_size", "ten"),
        ("min_idle", "1.5"),
        ("connect_timeout", "5"),
        ("queue_mode", "random"),
        ("leak_threshold", "soon"),
    ] {
        let err = c.set(knob, value).unwrap_err();
        assert_eq!(knob_of(&err), knob, "{err}");
        assert!(err.to_string().contains(value), "{err}");
    }
    let err = c.set("max_sise", "3").unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKnob(ref k) if k == "max_sise"));
}

#[test]
fn rules_across_knobs_are_checked() {
    let cases: [(&str, PoolConfig); 4] = [
        (
            "reap_interval",
            PoolConfig {
                reap_interval: Duration::from_millis(10),
                ..PoolConfig::default()
            },
        ),
        (
            "acquire_timeout",
            PoolConfig {
                acquire_timeout: Duration::ZERO,
                ..PoolConfig::default()
            },
        ),
        (
            "idle_timeout",
            PoolConfig {
                idle_timeout: Some(Duration::ZERO),
                ..PoolConfig::default()
            },
        ),
        (
            "max_size",
            PoolConfig {
                max_size: pool_core::MAX_POOL_SIZE + 1,
                ..PoolConfig::default()
            },
        ),
    ];
    for (knob, c) in cases {
        let err = c.validate().unwrap_err();
        assert_eq!(knob_of(&err), knob, "{err}");
    }
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let err = ConnectionPool::builder()
        .build(TestManager::new())
        .unwrap_err();
    assert_eq!(err, ConfigError::NoRuntime);
}

/// serde reads the same text forms as `set` (one parser), numbers or strings.
#[cfg(feature = "serde")]
#[test]
fn serde_reads_knobs_through_the_text_parser() {
    use serde::de::value::{Error, MapDeserializer};
    use serde::Deserialize;

    let texts = MapDeserializer::<_, Error>::new(
        [
            ("acquire_timeout", "250ms"),
            ("idle_timeout", "off"),
            ("queue_mode", "fifo"),
        ]
        .into_iter(),
    );
    let c = PoolConfig::deserialize(texts).unwrap();
    assert_eq!(c.acquire_timeout, Duration::from_millis(250));
    assert_eq!(c.idle_timeout, None);
    assert_eq!(c.queue_mode, QueueMode::Fifo);
    assert_eq!(c.max_size, 10, "missing knobs keep their defaults");

    let numbers = MapDeserializer::<_, Error>::new([("max_size", 20u64)].into_iter());
    assert_eq!(PoolConfig::deserialize(numbers).unwrap().max_size, 20);

    let bad = MapDeserializer::<_, Error>::new([("connect_timeout", "5")].into_iter());
    let err = PoolConfig::deserialize(bad).unwrap_err().to_string();
    assert!(
        err.contains("connect_timeout") && err.contains("\"5\""),
        "{err}"
    );
    let unknown = MapDeserializer::<_, Error>::new([("max_sise", "3")].into_iter());
    let err = PoolConfig::deserialize(unknown).unwrap_err().to_string();
    assert!(err.contains("max_sise"), "{err}");
}
