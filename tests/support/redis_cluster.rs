//! A hermetic Redis Cluster for integration tests: `redis-server` processes with
//! `--cluster-enabled yes` on free loopback ports, joined with `CLUSTER MEET`, the 16384 slots
//! split evenly between the masters, each master with its replicas. Killed and cleaned up on
//! drop, like [`RedisServer`].

use std::thread::sleep;
use std::time::{Duration, Instant};

use super::RedisServer;

/// How long the nodes may take to agree on the cluster.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// A running cluster.
pub struct RedisCluster {
    /// The masters first, then the replicas (replica `r` of master `m` at
    /// `masters + m * replicas + r`).
    nodes: Vec<RedisServer>,
    masters: usize,
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each and waits until every node
    /// reports `cluster_state:ok` and every replica is in sync.
    ///
    /// # Panics
    ///
    /// When a server does not start or the cluster does not form within 30 s.
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        assert!(masters > 0, "a cluster needs a master");
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            // Fast failure detection, so that failover tests finish quickly.
            "--cluster-node-timeout",
            "2000",
            "--cluster-require-full-coverage",
            "yes",
        ];
        // Each node's cluster bus listens on its port + 10000, so ports must stay below 55536:
        // Linux gives `bind(0)` with SO_REUSEADDR (as std's listeners set it) ports from the
        // lower half of the ephemeral range (32768–46883 by default).
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| RedisServer::start_with(&args))
            .collect();
        let cluster = RedisCluster { nodes, masters };
        cluster.form(replicas);
        cluster
    }

    fn form(&self, replicas: usize) {
        let mut first = self.nodes[0].conn();
        for node in &self.nodes[1..] {
            let _: () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(node.port())
                .query(&mut first)
                .expect("CLUSTER MEET");
        }
        let per = 16384 / self.masters;
        for (i, master) in self.nodes[..self.masters].iter().enumerate() {
            let start = i * per;
            let end = if i + 1 == self.masters {
                16383
            } else {
                start + per - 1
            };
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(start)
                .arg(end)
                .query(&mut master.conn())
                .expect("CLUSTER ADDSLOTSRANGE");
        }
        self.wait("every node knows every other", |node| {
            let text: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut node.conn())
                .ok()?;
            let known = text.lines().filter(|l| !l.contains("handshake")).count();
            (known == self.nodes.len()).then_some(())
        });
        for m in 0..self.masters {
            let id = self.id(&self.nodes[m]);
            for r in 0..replicas {
                let replica = &self.nodes[self.masters + m * replicas + r];
                let _: () = redis::cmd("CLUSTER")
                    .arg("REPLICATE")
                    .arg(&id)
                    .query(&mut replica.conn())
                    .expect("CLUSTER REPLICATE");
            }
        }
        self.wait("cluster_state:ok and replicas in sync", |node| {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut node.conn())
                .ok()?;
            if !info.contains("cluster_state:ok") {
                return None;
            }
            let repl: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut node.conn())
                .ok()?;
            let in_sync = repl.contains("role:master") || repl.contains("master_link_status:up");
            in_sync.then_some(())
        });
    }

    /// Polls `check` on every node until all pass.
    fn wait(&self, what: &str, check: impl Fn(&RedisServer) -> Option<()>) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        while !self.nodes.iter().all(|n| check(n).is_some()) {
            assert!(
                Instant::now() < deadline,
                "the test cluster did not reach: {what}"
            );
            sleep(Duration::from_millis(50));
        }
    }

    fn id(&self, node: &RedisServer) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut node.conn())
            .expect("CLUSTER MYID")
    }

    /// `redis://127.0.0.1:<port>` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Every node, masters first.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes that were started as masters (after a failover, a replica may serve instead).
    pub fn masters(&self) -> &[RedisServer] {
        &self.nodes[..self.masters]
    }

    /// A synchronous cluster connection, for assertions on what the cache wrote.
    pub fn conn(&self) -> redis::cluster::ClusterConnection {
        redis::cluster::ClusterClient::new(self.urls())
            .expect("the test cluster's URLs are valid")
            .get_connection()
            .expect("connect to the test cluster")
    }

    /// Every key on every master that matches `pattern` (SCAN per master).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for node in &self.nodes {
            let mut conn = node.conn();
            let role: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut conn)
                .expect("INFO replication");
            if !role.contains("role:master") {
                continue;
            }
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .query(&mut conn)
                    .expect("SCAN");
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        keys.sort();
        keys
    }

    /// How many masters hold at least one key matching `pattern`.
    pub fn masters_holding(&self, pattern: &str) -> usize {
        self.masters()
            .iter()
            .filter(|node| {
                let (_, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(0)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(100_000)
                    .query(&mut node.conn())
                    .expect("SCAN");
                !batch.is_empty()
            })
            .count()
    }
}
