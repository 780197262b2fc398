//! What Redis Cluster needs beyond routing by key, which redis-rs does: multi-key scripts and
//! pipelines split by hash slot, and `SCAN` driven on every master with its own cursor (redis-rs
//! does not route `SCAN`).

use std::collections::HashMap;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};

/// The positions of `keys`, grouped by hash slot, each group in the order of `keys`.
pub(super) fn by_slot<K: AsRef<[u8]>>(keys: &[K]) -> Vec<Vec<usize>> {
    let mut groups: HashMap<Slot, Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let slot = Slot::for_key(key.as_ref());
        groups
            .entry(slot)
            .or_insert_with(|| {
                order.push(slot);
                Vec::new()
            })
            .push(i);
    }
    order
        .into_iter()
        .filter_map(|slot| groups.remove(&slot))
        .collect()
}

/// Whether two keys share a hash slot (a script may then touch both).
pub(super) fn same_slot(a: &str, b: &str) -> bool {
    Slot::for_key(a) == Slot::for_key(b)
}

/// A master's address, for commands that must go to one node (`SCAN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub host: String,
    pub port: u16,
}

impl Node {
    pub(super) fn route(&self) -> RoutingInfo {
        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: self.host.clone(),
            port: self.port,
        })
    }
}

/// The masters that serve slots, as `CLUSTER NODES` on any node reports them.
pub(super) async fn masters(conn: &mut ClusterConnection) -> redis::RedisResult<Vec<Node>> {
    let text: String = redis::cmd("CLUSTER").arg("NODES").query_async(conn).await?;
    Ok(parse_masters(&text))
}

/// Masters with slots from `CLUSTER NODES` output: `<id> <ip:port@cport[,host]> <flags>
/// <master> <ping> <pong> <epoch> <link> <slot>...`. Failed masters and masters without slots
/// hold no keys to scan.
fn parse_masters(text: &str) -> Vec<Node> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (addr, flags) = (fields.get(1)?, fields.get(2)?);
            let flags: Vec<&str> = flags.split(',').collect();
            let serving = flags.contains(&"master")
                && !flags
                    .iter()
                    .any(|f| matches!(*f, "fail" | "fail?" | "noaddr" | "handshake"))
                && fields.len() > 8;
            if !serving {
                return None;
            }
            let hostport = addr.split(['@', ',']).next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some(Node {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port: port.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keys_by_slot_in_order() {
        // `{a}x` and `{a}y` share the slot of `a` (hash tags); `b` is elsewhere.
        let keys = ["{a}x", "b", "{a}y"];
        let groups = by_slot(&keys);
        assert_eq!(groups, vec![vec![0, 2], vec![1]]);
        assert!(same_slot("{a}x", "{a}y"));
        assert!(!same_slot("a", "b"));
    }

    #[test]
    fn parses_serving_masters() {
        let text = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003,redis-3 master - 0 1426238318243 3 connected 10923-16383
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
9a1b 127.0.0.1:30007@40007 master,fail - 0 0 7 disconnected 100
c001 127.0.0.1:30008@40008 master - 0 0 8 connected
";
        let ports: Vec<u16> = parse_masters(text).iter().map(|n| n.port).collect();
        assert_eq!(ports, vec![30002, 30003, 30001]);
        assert_eq!(parse_masters(text)[0].host, "127.0.0.1");
    }
}
