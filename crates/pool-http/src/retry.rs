//! What is retried, and how long to wait.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, Request, Response, StatusCode, Url, Version};

use crate::config::RetryPolicy;

/// Safe to send twice by the method's own semantics (RFC 9110 §9.2.2).
pub(crate) fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The server asked to come back later.
pub(crate) fn retry_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::SERVICE_UNAVAILABLE
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = humantime::parse_rfc3339_weak(v)
        .ok()
        .or_else(|| httpdate(v))?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
fn httpdate(v: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == parts[2])? + 1;
    let text = format!("{}-{month:02}-{:0>2}T{}Z", parts[3], parts[1], parts[4]);
    humantime::parse_rfc3339(&text).ok()
}

/// The connection broke under the request (reset, closed before the response:
/// the keep-alive race of hyper #2136). Safe to retry for idempotent requests.
pub(crate) fn connection_lost(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        let text = s.to_string();
        if text.contains("connection closed before message completed")
            || text.contains("connection reset")
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Exponential backoff with full jitter: uniform in [0, min(cap, base·2^n)].
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    pool_core::util::backoff(policy.base_backoff, attempt, policy.max_backoff)
}

/// What a retry needs to send a request again, kept before the first attempt.
///
/// A request without a body keeps its parts but not its URL: the response or the
/// error of the failed attempt carries the URL back, so the common request (no
/// body, no headers of its own) allocates nothing unless it is retried. A body
/// that can be replayed means a whole copy (`Request::try_clone`).
pub(crate) enum Spare {
    Parts {
        method: Method,
        headers: HeaderMap,
        version: Version,
        timeout: Option<Duration>,
    },
    Copy(Request),
}

impl Spare {
    /// `None` when the body is a stream: such a request is never retried.
    pub(crate) fn of(req: &Request) -> Option<Spare> {
        if req.body().is_some() {
            return req.try_clone().map(Spare::Copy);
        }
        Some(Spare::Parts {
            method: req.method().clone(),
            headers: req.headers().clone(),
            version: req.version(),
            timeout: req.timeout().copied(),
        })
    }

    /// The request to send again, to `url` (the failed attempt's, after any
    /// redirect); `None` when the URL did not come back.
    pub(crate) fn rebuild(self, url: Option<&Url>) -> Option<Request> {
        match self {
            Spare::Copy(req) => Some(req),
            Spare::Parts {
                method,
                headers,
                version,
                timeout,
            } => {
                let mut req = Request::new(method, url?.clone());
                *req.headers_mut() = headers;
                *req.version_mut() = version;
                if timeout.is_some() {
                    *req.timeout_mut() = timeout;
                }
                Some(req)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bodiless_request_is_rebuilt_with_its_parts_at_the_url_given_back() {
        let url = Url::parse("http://127.0.0.1:1/a").unwrap();
        let mut req = Request::new(Method::DELETE, url.clone());
        req.headers_mut()
            .insert("idempotency-key", "k1".parse().unwrap());
        *req.timeout_mut() = Some(Duration::from_secs(3));
        let again = Spare::of(&req).unwrap().rebuild(Some(&url)).unwrap();
        assert_eq!(again.method(), Method::DELETE);
        assert_eq!(again.url(), &url);
        assert_eq!(again.headers()["idempotency-key"], "k1");
        assert_eq!(again.timeout(), Some(&Duration::from_secs(3)));
        assert!(Spare::of(&req).unwrap().rebuild(None).is_none());
    }

    #[test]
    fn a_replayable_body_is_copied_whole() {
        let url = Url::parse("http://127.0.0.1:1/a").unwrap();
        let mut req = Request::new(Method::PUT, url);
        *req.body_mut() = Some(reqwest::Body::from("payload"));
        let again = Spare::of(&req).unwrap().rebuild(None).unwrap();
        assert_eq!(
            again.body().and_then(|b| b.as_bytes()),
            Some(&b"payload"[..])
        );
    }
}
