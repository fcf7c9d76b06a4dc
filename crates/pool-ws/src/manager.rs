//! `WsManager`: opens, checks and resets the WebSockets of one URL.

use std::sync::Arc;

use pool_core::Manager;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use tokio_tungstenite::Connector;

use crate::closing::Closing;
use crate::config::WsConfig;
use crate::conn::WsConnection;
use crate::error::WsError;
use crate::stats::Counters;
use crate::tracked::Tracked;

/// What every URL's manager shares: the configuration, TLS, counters.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: WsConfig,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) counters: Arc<Counters>,
    /// Graceful closes still running (see `closing.rs`).
    pub(crate) closing: Arc<Closing>,
}

/// Opens WebSockets to one URL.
#[derive(Debug, Clone)]
pub struct WsManager {
    /// Checked by `WsPool::get` before the sub-pool was made; the error is
    /// kept rather than trusted away.
    url: Result<url::Url, String>,
    shown: Arc<str>,
    shared: Arc<Shared>,
}

impl WsManager {
    pub(crate) fn new(url: &str, shared: Arc<Shared>) -> Self {
        let shown: Arc<str> = pool_core::util::redact_url(url).into();
        let url = crate::address::parse(url).map_err(|e| e.to_string());
        WsManager { url, shown, shared }
    }

    fn request(
        &self,
    ) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, WsError> {
        let bad = |reason: String| WsError::InvalidUrl {
            url: self.shown.to_string(),
            reason,
        };
        let url = self.url.as_ref().map_err(|e| bad(e.clone()))?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| bad(e.to_string()))?;
        let headers = request.headers_mut();
        for (name, value) in &self.shared.config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad(format!("bad header name {name:?}")))?;
            // The value may be a secret: not shown.
            let value = HeaderValue::from_str(value)
                .map_err(|_| bad(format!("bad value for header {name}")))?;
            headers.append(name, value);
        }
        if !self.shared.config.subprotocols.is_empty() {
            let list = self.shared.config.subprotocols.join(", ");
            let value = HeaderValue::from_str(&list)
                .map_err(|_| bad(format!("bad subprotocol list {list:?}")))?;
            headers.insert("sec-websocket-protocol", value);
        }
        Ok(request)
    }

    /// The TCP connection, Nagle off (as tokio-tungstenite's own connect
    /// does; our messages are small and latency-bound).
    async fn tcp(&self) -> std::io::Result<TcpStream> {
        let unsupported = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "no host");
        let url = self.url.as_ref().map_err(|_| unsupported())?;
        let port = url.port_or_known_default().ok_or_else(unsupported)?;
        let tcp = match url.host().ok_or_else(unsupported)? {
            url::Host::Domain(name) => TcpStream::connect((name, port)).await?,
            url::Host::Ipv4(ip) => TcpStream::connect((ip, port)).await?,
            url::Host::Ipv6(ip) => TcpStream::connect((ip, port)).await?,
        };
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }
}

impl Manager for WsManager {
    type Connection = WsConnection;
    type Error = WsError;

    /// Waits first for graceful closes in flight (at most `close_timeout`),
    /// so the peer never counts more sockets than the limits allow.
    async fn connect(&self) -> Result<WsConnection, WsError> {
        let request = self.request()?;
        let config = &self.shared.config;
        self.shared.closing.settled(config.close_timeout).await;
        let tls = self.url.as_ref().is_ok_and(|u| u.scheme() == "wss");
        let connector = match &self.shared.tls {
            Some(config) if tls => Connector::Rustls(config.clone()),
            _ => Connector::Plain,
        };
        let failed = |e| WsError::from_tungstenite(&self.shown, e);
        let tcp = self
            .tcp()
            .await
            .map_err(|e| failed(tungstenite::Error::Io(e)))?;
        let (stream, _response) = tokio_tungstenite::client_async_tls_with_config(
            request,
            Tracked::new(tcp, tls),
            Some(self.shared.config.tungstenite()),
            Some(connector),
        )
        .await
        .map_err(failed)?;
        Ok(WsConnection::new(
            stream,
            self.shown.clone(),
            self.shared.counters.clone(),
            self.shared.closing.clone(),
            config.close_timeout,
        ))
    }

    /// A ping and its pong within `ping_timeout`.
    async fn check(&self, conn: &mut WsConnection) -> Result<(), WsError> {
        conn.ping(self.shared.config.ping_timeout).await.map(drop)
    }

    /// What arrived while idle is dropped (never given to the next holder); a
    /// Close that arrived makes the connection unusable.
    async fn reset(&self, conn: &mut WsConnection) -> Result<(), WsError> {
        conn.drain().await
    }

    fn is_broken(&self, conn: &mut WsConnection) -> bool {
        conn.retired || !conn.is_open()
    }

    fn is_transient(&self, error: &WsError) -> bool {
        error.is_transient()
    }

    fn kind(&self) -> &'static str {
        "ws"
    }
}
