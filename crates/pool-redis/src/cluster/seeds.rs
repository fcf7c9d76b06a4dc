//! `redis+cluster://[user:password@]host:port,host:port[/0]`: the seed nodes
//! of a cluster and the credentials every node shares.

use crate::error::RedisPoolError;

/// A parsed cluster URL.
#[derive(Clone)]
pub(crate) struct ClusterUrl {
    pub(crate) seeds: Vec<(String, u16)>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    /// The URL with its password redacted.
    pub(crate) display: String,
}

impl ClusterUrl {
    /// Parses `url`; errors name what is wrong, never the password.
    pub(crate) fn parse(url: &str) -> Result<Self, RedisPoolError> {
        let display = pool_core::util::redact_any_url(url);
        let bad = |why: &str| RedisPoolError::Config(format!("{display}: {why}"));
        let rest = if let Some(rest) = url.strip_prefix("redis+cluster://") {
            rest
        } else if url.starts_with("rediss+cluster://") {
            return Err(bad(
                "TLS to a cluster (rediss+cluster://) is not supported yet",
            ));
        } else {
            return Err(bad("scheme must be redis+cluster://"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = path.split('?').next().unwrap_or("");
        if !matches!(path, "" | "0") {
            return Err(bad("a cluster has database 0 only"));
        }
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (
                    Some(decode(user)).filter(|s| !s.is_empty()),
                    Some(decode(pw)),
                ),
                None => (Some(decode(u)).filter(|s| !s.is_empty()), None),
            },
        };
        let mut seeds = Vec::new();
        for host in hosts.split(',') {
            let host = host.trim();
            if host.is_empty() {
                return Err(bad("an empty seed node"));
            }
            let (name, port) = match host.rsplit_once(':') {
                Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
                    let port = port
                        .parse::<u16>()
                        .map_err(|_| bad(&format!("invalid port {port:?} of seed node {name}")))?;
                    (name, port)
                }
                _ => (host, 6379),
            };
            if name.is_empty() {
                return Err(bad("a seed node without a host"));
            }
            seeds.push((name.trim_matches(['[', ']']).to_string(), port));
        }
        Ok(ClusterUrl {
            seeds,
            username,
            password,
            display,
        })
    }

    /// A `redis://` URL to one node, with the shared credentials.
    pub(crate) fn node_url(&self, host: &str, port: u16) -> String {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        match (&self.username, &self.password) {
            (None, None) => format!("redis://{host}:{port}"),
            (user, pw) => format!(
                "redis://{}:{}@{host}:{port}",
                user.as_deref().map(enc).unwrap_or_default(),
                pw.as_deref().map(enc).unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_credentials_and_errors() {
        let u = ClusterUrl::parse("redis+cluster://app:p%40ss@a:7000,b:7001,c/").unwrap();
        assert_eq!(
            u.seeds,
            vec![("a".into(), 7000), ("b".into(), 7001), ("c".into(), 6379)]
        );
        assert_eq!(u.username.as_deref(), Some("app"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert!(!u.display.contains("p%40ss") && !u.display.contains("p@ss"));
        assert_eq!(u.node_url("b", 7001), "redis://app:p%40ss@b:7001");
        let u = ClusterUrl::parse("redis+cluster://[::1]:7000").unwrap();
        assert_eq!(u.seeds, vec![("::1".into(), 7000)]);
        assert_eq!(u.node_url("::1", 7000), "redis://[::1]:7000");
        for (url, want) in [
            ("redis+cluster://:secret@a:x", "invalid port \"x\""),
            ("redis+cluster://a,,b", "an empty seed node"),
            ("redis+cluster://a/3", "database 0 only"),
            ("redis://a", "scheme must be"),
            ("rediss+cluster://a", "not supported yet"),
        ] {
            let e = ClusterUrl::parse(url).err().unwrap().to_string();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
