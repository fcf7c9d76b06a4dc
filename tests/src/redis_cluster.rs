//! A throwaway Redis Cluster for tests and the scale bench: `redis-server
//! --cluster-enabled yes` children on free ports, joined with `redis-cli
//! --cluster create`, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node of the cluster.
#[derive(Debug)]
pub struct Node {
    pub port: u16,
    child: Option<Child>,
}

/// A local cluster of `primaries` primaries, each with `replicas` replicas.
#[derive(Debug)]
pub struct ThrowawayCluster {
    pub nodes: Vec<Node>,
    dir: PathBuf,
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl ThrowawayCluster {
    /// Starts the nodes and joins them; returns once every node says
    /// `cluster_state:ok` and sees every primary and replica.
    /// `node_timeout` is how long a primary may be silent before its
    /// replica takes over.
    pub fn start(primaries: usize, replicas: usize, node_timeout: Duration) -> ThrowawayCluster {
        let dir = crate::temp_dir("redis-cluster");
        let count = primaries * (1 + replicas);
        // Every port held at once while choosing, so that no two are the
        // same. The cluster bus defaults to port + 10000, which may be taken
        // or past 65535: each node gets a free bus port of its own.
        let held: Vec<std::net::TcpListener> = (0..2 * count)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().expect("bound").port())
            .collect();
        drop(held);
        let mut nodes = Vec::new();
        for pair in ports.chunks(2) {
            let (port, bus) = (pair[0], pair[1]);
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args([
                    "--cluster-node-timeout",
                    &node_timeout.as_millis().to_string(),
                ])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed");
            nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        let cluster = ThrowawayCluster { nodes, dir };
        for n in &cluster.nodes {
            cluster.wait_for(
                || std::net::TcpStream::connect(("127.0.0.1", n.port)).is_ok(),
                "a node to listen",
            );
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli is installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let total = cluster.nodes.len();
        for n in &cluster.nodes {
            let mut last = String::new();
            cluster.wait_for(
                || {
                    last = cli(n.port, &["CLUSTER", "INFO"]);
                    last.contains("cluster_state:ok")
                        && last.contains(&format!("cluster_known_nodes:{total}"))
                },
                &format!(
                    "node {} to see a complete cluster (redis-cli --cluster create said: {})",
                    n.port,
                    String::from_utf8_lossy(&out.stdout)
                ),
            );
        }
        // Replicas only take over once they have synced.
        for n in &cluster.nodes {
            cluster.wait_for(
                || {
                    let info = cli(n.port, &["INFO", "replication"]);
                    info.contains("role:master") || info.contains("master_link_status:up")
                },
                "replicas to sync",
            );
        }
        cluster
    }

    fn wait_for(&self, mut ok: impl FnMut() -> bool, what: &str) {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "redis cluster: timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The port of the primary that serves `key` (`CLUSTER KEYSLOT`, then
    /// `CLUSTER SLOTS`, asked of a live node).
    pub fn primary_of(&self, key: &str) -> u16 {
        let live = self
            .nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a live node");
        let slot: u16 = cli(live.port, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("a slot");
        // redis-cli prints a reply's leaves one per line: first, last, then
        // the primary's host, port and id, then each replica's.
        let slots = cli(live.port, &["CLUSTER", "SLOTS"]);
        let lines: Vec<&str> = slots.lines().collect();
        let mut i = 0;
        while i + 3 < lines.len() {
            let (first, last) = (lines[i].parse::<u16>(), lines[i + 1].parse::<u16>());
            if let (Ok(first), Ok(last)) = (first, last) {
                if first <= slot && slot <= last {
                    return lines[i + 3].parse().expect("a port");
                }
            }
            i += 1;
        }
        panic!("no primary for slot {slot} in:\n{slots}")
    }

    /// Kills the node on `port` (no goodbye), as a crash would.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut c) = node.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits until a live node reports `cluster_state:ok` with `port` no
    /// longer a primary (its replica took over).
    pub fn wait_for_failover(&self, port: u16) {
        let live: Vec<u16> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect();
        self.wait_for(
            || {
                live.iter().all(|p| {
                    cli(*p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
                        && !cli(*p, &["CLUSTER", "NODES"]).lines().any(|l| {
                            l.contains(&format!(":{port}@"))
                                && l.contains("master")
                                && !l.contains("fail")
                        })
                })
            },
            "the failover",
        );
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
