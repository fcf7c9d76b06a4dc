//! The fleet budget: a service runs as `replicas` processes, each with the
//! same pools; per server, replicas × the connections one replica's pools may
//! open, against what the server allows (PostgreSQL: `max_connections` −
//! `superuser_reserved_connections`; Redis: `maxclients`; or a configured
//! `server_limit`). Read at `prewarm`; an excess is reported there, in health
//! and as a metric.

use std::fmt;

use super::kind::Kind;

/// Where one pool connects and how many connections one replica may open
/// there; set at build for the kinds the budget covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    /// `host:port`.
    pub(crate) server: String,
    /// Connections one replica's pool may hold (Redis: the shared lane and
    /// the exclusive one).
    pub(crate) connections: usize,
    /// `server_limit`, when configured.
    pub(crate) limit: Option<usize>,
}

/// What a server allows, and where that figure comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Allowed {
    /// Connections the fleet may open.
    pub connections: usize,
    /// How it was found: `max_connections 100 − superuser_reserved_connections
    /// 3`, `maxclients 10000`, `server_limit (configured)`.
    pub source: String,
}

/// The budget of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerBudget {
    /// `host:port`.
    pub server: String,
    /// The protocol.
    pub kind: Kind,
    /// Processes of the service (`replicas`, `UNIPOOL_REPLICAS`; default 1).
    pub replicas: usize,
    /// Per replica: each pool that targets this server and its connections.
    pub pools: Vec<(String, usize)>,
    /// What the server allows, or why that could not be read.
    pub allowed: Result<Allowed, String>,
}

impl ServerBudget {
    /// Connections one replica may open here.
    pub fn per_replica(&self) -> usize {
        self.pools.iter().map(|(_, n)| n).sum()
    }

    /// Connections the fleet may open here: replicas × per replica.
    pub fn planned(&self) -> usize {
        self.replicas.saturating_mul(self.per_replica())
    }

    /// How many more the fleet may open than the server allows, if any.
    pub fn excess(&self) -> Option<usize> {
        let allowed = self.allowed.as_ref().ok()?.connections;
        self.planned().checked_sub(allowed).filter(|e| *e > 0)
    }
}

impl fmt::Display for ServerBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pools: Vec<String> = self
            .pools
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        write!(
            f,
            "{} ({}): {} replicas × {} connections ({}) = {}",
            self.server,
            self.kind,
            self.replicas,
            self.per_replica(),
            pools.join(", "),
            self.planned()
        )?;
        match &self.allowed {
            Ok(a) if self.excess().is_some() => write!(
                f,
                " > {} allowed ({}): {} over",
                a.connections,
                a.source,
                self.planned() - a.connections
            ),
            Ok(a) => write!(f, " ≤ {} allowed ({})", a.connections, a.source),
            Err(e) => write!(f, "; the server's limit is unknown ({e})"),
        }
    }
}

/// The `host:port` of a URL, with the kind's default port.
pub(crate) fn server_of(url: &str, default_port: u16) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str().filter(|h| !h.is_empty())?;
    Some(format!("{host}:{}", u.port().unwrap_or(default_port)))
}

/// The groups of slots by (kind, server), in first-seen order.
pub(crate) fn group(
    slots: Vec<(String, Kind, Slot)>,
    replicas: usize,
) -> Vec<(ServerBudget, Option<usize>)> {
    let mut out: Vec<(ServerBudget, Option<usize>)> = Vec::new();
    for (name, kind, slot) in slots {
        match out
            .iter_mut()
            .find(|(b, _)| b.kind == kind && b.server == slot.server)
        {
            Some((b, limit)) => {
                b.pools.push((name, slot.connections));
                *limit = limit.or(slot.limit);
            }
            None => out.push((
                ServerBudget {
                    server: slot.server,
                    kind,
                    replicas,
                    pools: vec![(name, slot.connections)],
                    allowed: Err("not read yet (prewarm reads it)".into()),
                },
                slot.limit,
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(replicas: usize, allowed: usize) -> ServerBudget {
        ServerBudget {
            server: "db:5432".into(),
            kind: Kind::Postgres,
            replicas,
            pools: vec![("main".into(), 10), ("jobs".into(), 5)],
            allowed: Ok(Allowed {
                connections: allowed,
                source: "max_connections 100 − superuser_reserved_connections 3".into(),
            }),
        }
    }

    #[test]
    fn the_arithmetic_and_its_message() {
        let over = budget(20, 97);
        assert_eq!(
            (over.per_replica(), over.planned(), over.excess()),
            (15, 300, Some(203))
        );
        assert_eq!(
            over.to_string(),
            "db:5432 (postgres): 20 replicas × 15 connections (main 10, jobs 5) = 300 > 97 allowed \
             (max_connections 100 − superuser_reserved_connections 3): 203 over"
        );
        let within = budget(6, 97);
        assert_eq!(within.excess(), None);
        assert!(within.to_string().ends_with(
            "= 90 ≤ 97 allowed (max_connections 100 − superuser_reserved_connections 3)"
        ));
        assert_eq!(
            server_of("postgres://u:p@db/app", 5432).as_deref(),
            Some("db:5432")
        );
        assert_eq!(
            server_of("redis://cache:6380/0", 6379).as_deref(),
            Some("cache:6380")
        );
    }
}
