//! Redacting credentials from connection URLs before they reach a log, an
//! error, a `Debug` output or a health report. The one implementation every
//! protocol crate uses.

/// Query parameters whose value is a secret (matched case-insensitively):
/// libpq's `password` and `sslpassword`, redis-rs's `pass` and `password`,
/// and the usual token names.
const SECRET_PARAMS: &[&str] = &[
    "password",
    "sslpassword",
    "pass",
    "passwd",
    "pwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "access_token",
];

/// `url` with every secret replaced by `***`: the password of the userinfo
/// (`postgres://u:***@h/db`, percent-encoded or not) and the value of each
/// secret query parameter (`?password=***`). A text that does not parse as a
/// URL is replaced whole, since it may hold a secret anywhere.
///
/// ```
/// use pool_core::util::redact_url;
/// assert_eq!(redact_url("rediss://:s3cret@cache:6380/0"), "rediss://:***@cache:6380/0");
/// assert!(!redact_url("postgres://h/db?sslpassword=s3cret").contains("s3cret"));
/// ```
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "<unparsable url>".to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
                let v = if secret { "***".into() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// At most the first 64 characters of a value a user gave, then its length:
/// an error about a megabyte-long value stays readable.
pub fn clip(value: &str) -> std::borrow::Cow<'_, str> {
    const SHOWN: usize = 64;
    match value.char_indices().nth(SHOWN) {
        None => value.into(),
        Some((end, _)) => format!("{}… ({} bytes)", &value[..end], value.len()).into(),
    }
}

/// [`redact_url`] for URLs that parse; for text
/// that does not, the part that could be a password (between `:` and `@` after
/// the scheme) and the query are masked, so that the rest can still be shown.
///
/// ```
/// use pool_core::util::redact_any_url;
/// let shown = redact_any_url("mongodb://app:s3cret@h1:27017,h2:27017/db?replicaSet=rs");
/// assert_eq!(shown, "mongodb://app:***@h1:27017,h2:27017/db?***");
/// ```
pub fn redact_any_url(text: &str) -> String {
    if url::Url::parse(text).is_ok() {
        return redact_url(text);
    }
    let (scheme, rest) = match text.find("://") {
        Some(i) => text.split_at(i + 3),
        None => ("", text),
    };
    let mut rest = rest.to_string();
    if let Some(at) = rest.rfind('@') {
        if let Some(colon) = rest[..at].find(':') {
            rest.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(q) = rest.find('?') {
        rest.replace_range(q + 1.., "***");
    }
    format!("{scheme}{rest}")
}

#[cfg(test)]
mod tests {
    use super::{redact_any_url, redact_url};

    #[test]
    fn every_form_of_secret_is_hidden() {
        let cases = [
            (
                "postgres://me:s3cret@db:5432/app?sslmode=require",
                "postgres://me:***@db:5432/app?sslmode=require",
            ),
            (
                "postgres://h/db?password=s3cret",
                "postgres://h/db?password=***",
            ),
            (
                "postgres://h/db?sslpassword=s3cret&user=me",
                "postgres://h/db?sslpassword=***&user=me",
            ),
            (
                "rediss://:s3cret@cache:6380/0",
                "rediss://:***@cache:6380/0",
            ),
            ("redis://user:s3cret@cache/1", "redis://user:***@cache/1"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=s3cret",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
            (
                "postgres://me:s%33cr%40t@db/app",
                "postgres://me:***@db/app",
            ),
            (
                "https://api.example/v1?token=s3cret",
                "https://api.example/v1?token=***",
            ),
            ("postgres://me@db/app", "postgres://me@db/app"),
        ];
        for (input, want) in cases {
            let got = redact_url(input);
            assert_eq!(got, want, "{input}");
            assert!(!got.contains("s3cret") && !got.contains("s%33cr"), "{got}");
        }
        assert_eq!(redact_url("not a url s3cret"), "<unparsable url>");
    }

    #[test]
    fn unparsable_urls_lose_their_password_and_query() {
        for (text, want) in [
            ("postgres://u:s3cret@[bad/db", "postgres://u:***@[bad/db"),
            (
                "redis://:s3cret@host:notaport",
                "redis://:***@host:notaport",
            ),
            ("http://h:99999/x?token=s3cret", "http://h:99999/x?***"),
            ("no scheme u:s3cret@h", "no scheme u:***@h"),
        ] {
            assert_eq!(redact_any_url(text), want);
        }
        assert_eq!(
            redact_any_url("postgres://u:s3cret@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
