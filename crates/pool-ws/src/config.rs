//! `WsConfig`: limits, handshake, liveness and memory of a WebSocket pool.

use std::time::Duration;

use pool_core::PoolConfig;

/// Configuration of a [`WsPool`](crate::WsPool). Every field states its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// The engine's knobs, per URL. Defaults differ from the engine's where a
    /// WebSocket needs it: `max_size` 5 per URL, `keepalive_interval` 30 s
    /// (idle connections are pinged that often), `validate_after` 10 s (a
    /// lease of a connection idle longer is pinged first), `connect_retries` 3
    /// (transient failures only, within `acquire_timeout`).
    pub pool: PoolConfig,
    /// Connections over all URLs. Default 50.
    pub max_total: usize,
    /// Told of every sub-pool's events (pool-core's `Observer`; the
    /// sub-pools are named `name[key]`). Default none.
    pub observer: Option<pool_core::SharedObserver>,
    /// Extra handshake headers (authorization, cookies, …). Default none.
    pub headers: Vec<(String, String)>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`. Default none.
    pub subprotocols: Vec<String>,
    /// Longest wait for the pong of a ping. Default 10 s.
    pub ping_timeout: Duration,
    /// Longest wait for the peer's Close frame when a connection is closed.
    /// Default 1 s.
    pub close_timeout: Duration,
    /// Longest `send_recv` waits for the reply. Default 30 s.
    pub request_timeout: Duration,
    /// Read buffer per connection. Default 4 KiB (tungstenite's is 128 KiB,
    /// eagerly allocated for every connection); messages larger than it are
    /// read in several chunks.
    pub read_buffer_size: usize,
    /// Largest incoming message. Default 64 MiB.
    pub max_message_size: Option<usize>,
    /// Largest incoming frame. Default 16 MiB.
    pub max_frame_size: Option<usize>,
    /// Extra trusted root certificates (PEM) for `wss://`, on top of the
    /// webpki roots (a private CA, a self-signed test server). Default none.
    pub root_certificates_pem: Vec<Vec<u8>>,
}

impl Default for WsConfig {
    fn default() -> Self {
        let pool = PoolConfig {
            max_size: 5,
            keepalive_interval: Some(Duration::from_secs(30)),
            validate_after: Duration::from_secs(10),
            connect_retries: 3,
            ..PoolConfig::default()
        };
        WsConfig {
            pool,
            max_total: 50,
            observer: None,
            headers: Vec::new(),
            subprotocols: Vec::new(),
            ping_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            read_buffer_size: 4 * 1024,
            max_message_size: Some(64 << 20),
            max_frame_size: Some(16 << 20),
            root_certificates_pem: Vec::new(),
        }
    }
}

impl WsConfig {
    /// tungstenite's configuration: small buffers, the size limits.
    pub(crate) fn tungstenite(&self) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size.max(256))
            // Written through at once: no buffer of its own kept per connection.
            .write_buffer_size(0)
            .max_message_size(self.max_message_size)
            .max_frame_size(self.max_frame_size)
    }
}
