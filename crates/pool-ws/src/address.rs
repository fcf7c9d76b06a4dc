//! Which text is a WebSocket URL: the one check, made when a URL's sub-pool
//! is created (and by `WsPool::endpoint` / `subscribe` up front).

use crate::error::WsError;

/// `url` parsed, or why it cannot be a WebSocket URL.
pub(crate) fn parse(url: &str) -> Result<url::Url, WsError> {
    let shown = || {
        if url.contains('@') {
            pool_core::util::redact_url(url)
        } else {
            format!("{url:?}")
        }
    };
    let parsed = url::Url::parse(url).map_err(|e| WsError::InvalidUrl {
        url: shown(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(WsError::InvalidUrl {
            url: shown(),
            reason: format!("the scheme must be ws or wss, not `{}`", parsed.scheme()),
        });
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(WsError::InvalidUrl {
            url: shown(),
            reason: "no host".into(),
        });
    }
    Ok(parsed)
}
