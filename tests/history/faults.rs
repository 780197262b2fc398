//! Faults injected while a history runs: on one server, freezes (SIGSTOP/SIGCONT), crashes
//! (SIGKILL, then a restart with nothing kept), killed connections (commands and the L1
//! backplane's subscribers) and garbage written over
//! entries; on a cluster, manual failovers, short freezes of a node, killed connections and
//! garbage.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{FUNCTIONS, ROWS};
use crate::support::rng::Rng;
use crate::support::{RedisCluster, RedisServer};

/// What is written over an entry: no entry at all.
const GARBAGE: &[u8] = b"\x01garbage that is no entry at all, 32 bytes and more";

/// Faults injected so far, by kind.
#[derive(Default)]
pub struct Injected {
    pub freezes: AtomicU64,
    pub crashes: AtomicU64,
    pub kills: AtomicU64,
    pub garbage: AtomicU64,
    pub failovers: AtomicU64,
    /// Spells of delayed replies, in every process (on one server).
    pub spells: AtomicU64,
}

impl Injected {
    pub fn total(&self) -> u64 {
        [
            &self.freezes,
            &self.crashes,
            &self.kills,
            &self.garbage,
            &self.failovers,
            &self.spells,
        ]
        .iter()
        .map(|c| c.load(SeqCst))
        .sum()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} freezes, {} crashes and restarts, {} connection kills, {} garbage writes, \
             {} failovers, {} spells of delayed replies",
            self.freezes.load(SeqCst),
            self.crashes.load(SeqCst),
            self.kills.load(SeqCst),
            self.garbage.load(SeqCst),
            self.failovers.load(SeqCst),
            self.spells.load(SeqCst)
        )
    }
}

/// A random entry's key on the server, prefix included.
fn some_key(rng: &mut Rng, prefix: &str) -> String {
    let f = &FUNCTIONS[rng.below(FUNCTIONS.len() as u64) as usize];
    format!("{prefix}{}", f.key(rng.below(ROWS)))
}

/// Kills the clients of `kind`: `normal` (commands; on a cluster, the RESP3 subscribers of
/// the L1 backplane too) or `pubsub` (the RESP2 subscribers of the backplane on one server).
fn kill_clients(url: &str, kind: &str) -> redis::RedisResult<i64> {
    let mut admin = redis::Client::open(url)?.get_connection()?;
    redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", kind, "SKIPME", "yes"])
        .query::<i64>(&mut admin)
}

fn client_kind(rng: &mut Rng) -> &'static str {
    if rng.below(2) == 0 {
        "normal"
    } else {
        "pubsub"
    }
}

/// Until `until`: faults on one server, one every 100 to 400 ms.
pub async fn on_server(
    server: Arc<Mutex<RedisServer>>,
    prefix: &'static str,
    injected: Arc<Injected>,
    mut rng: Rng,
    until: Instant,
) {
    let url = server.lock().unwrap().url();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(300))).await;
        match rng.below(8) {
            0..=2 => {
                injected.freezes.fetch_add(1, SeqCst);
                server.lock().unwrap().pause();
                tokio::time::sleep(Duration::from_millis(20 + rng.below(300))).await;
                server.lock().unwrap().resume();
            }
            3 | 4 => {
                injected.kills.fetch_add(1, SeqCst);
                let (url, kind) = (url.clone(), client_kind(&mut rng));
                let _ = tokio::task::spawn_blocking(move || kill_clients(&url, kind)).await;
            }
            5 | 6 => {
                injected.garbage.fetch_add(1, SeqCst);
                let (url, key) = (url.clone(), some_key(&mut rng, prefix));
                let _ = tokio::task::spawn_blocking(move || {
                    let mut admin = redis::Client::open(url)?.get_connection()?;
                    redis::cmd("SET")
                        .arg(key)
                        .arg(GARBAGE)
                        .query::<()>(&mut admin)
                })
                .await;
            }
            _ => {
                injected.crashes.fetch_add(1, SeqCst);
                let server = server.clone();
                tokio::task::spawn_blocking(move || server.lock().unwrap().restart())
                    .await
                    .expect("restart the server");
            }
        }
    }
}

/// Until `until`: faults on a cluster of masters with one replica each, one every 100 to
/// 400 ms. A failover is a manual `CLUSTER FAILOVER` (the replica takes over once it has
/// every write); a freeze stays under the node timeout, so it never causes one.
pub async fn on_cluster(
    cluster: Arc<RedisCluster>,
    prefix: &'static str,
    injected: Arc<Injected>,
    mut rng: Rng,
    until: Instant,
) {
    let shards = cluster.masters().len();
    // Which node of each shard is its replica now.
    let mut replica: Vec<usize> = (0..shards).map(|m| shards + m).collect();
    let mut master: Vec<usize> = (0..shards).collect();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(300))).await;
        match rng.below(8) {
            0 | 1 => {
                let shard = rng.below(shards as u64) as usize;
                let (cluster2, node) = (cluster.clone(), replica[shard]);
                let promoted =
                    tokio::task::spawn_blocking(move || failover(&cluster2.nodes()[node]))
                        .await
                        .expect("failover task");
                if promoted {
                    injected.failovers.fetch_add(1, SeqCst);
                    std::mem::swap(&mut replica[shard], &mut master[shard]);
                }
            }
            2 | 3 => {
                injected.freezes.fetch_add(1, SeqCst);
                let node = rng.below(cluster.nodes().len() as u64) as usize;
                cluster.nodes()[node].pause();
                tokio::time::sleep(Duration::from_millis(20 + rng.below(300))).await;
                cluster.nodes()[node].resume();
            }
            4 | 5 => {
                injected.kills.fetch_add(1, SeqCst);
                let url = cluster.nodes()[master[rng.below(shards as u64) as usize]].url();
                let kind = client_kind(&mut rng);
                let _ = tokio::task::spawn_blocking(move || kill_clients(&url, kind)).await;
            }
            _ => {
                injected.garbage.fetch_add(1, SeqCst);
                let (cluster2, key) = (cluster.clone(), some_key(&mut rng, prefix));
                let _ = tokio::task::spawn_blocking(move || {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(GARBAGE)
                        .query::<()>(&mut cluster2.conn())
                })
                .await;
            }
        }
    }
}

/// Asks `replica` to take over from its master and waits until it has (at most 10 s). A
/// manual failover gives up when the replica has not caught up in time (after a freeze, say):
/// then nothing changed, and `false` is returned.
fn failover(replica: &RedisServer) -> bool {
    let mut conn = replica.conn();
    let asked: redis::RedisResult<()> = redis::cmd("CLUSTER").arg("FAILOVER").query(&mut conn);
    if asked.is_err() {
        return false;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let role: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut conn)
            .unwrap_or_default();
        if role.contains("role:master") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
