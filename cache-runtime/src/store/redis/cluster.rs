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

/// The masters that serve the 16384 slots, from `CLUSTER SLOTS`: the endpoints redis-rs
/// itself connects to (so routing by address finds its connections, hostnames included).
///
/// An error unless the masters listed cover every slot: a slot that no master serves now (a
/// failed master whose replica is not promoted yet) may still hold keys, and a pattern
/// invalidation that skipped them must fail, so that it is queued and applied again, rather
/// than report success.
pub(super) async fn masters(conn: &mut ClusterConnection) -> redis::RedisResult<Vec<Node>> {
    let reply: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    parse_slots(&reply).map_err(|why| {
        redis::RedisError::from((
            redis::ErrorKind::Client,
            "the cluster's slot map is incomplete; pattern invalidation needs every master",
            why,
        ))
    })
}

/// Masters, without duplicates, from a `CLUSTER SLOTS` reply: `[[start, end, [host, port,
/// id, ..], replicas..], ..]`.
fn parse_slots(reply: &redis::Value) -> Result<Vec<Node>, String> {
    use redis::Value;
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let Value::Array(ranges) = reply else {
        return Err(format!("unexpected CLUSTER SLOTS reply: {reply:?}"));
    };
    let mut covered = vec![false; 16384];
    let mut masters: Vec<Node> = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            return Err("a CLUSTER SLOTS entry is not an array".into());
        };
        let (Some(start), Some(end), Some(Value::Array(master))) = (
            fields.first().and_then(int),
            fields.get(1).and_then(int),
            fields.get(2),
        ) else {
            return Err("a CLUSTER SLOTS entry lacks its range or its master".into());
        };
        let host = master.first().and_then(text).unwrap_or_default();
        let port = master
            .get(1)
            .and_then(int)
            .and_then(|p| u16::try_from(p).ok());
        let (Some(port), false) = (port, host.is_empty() || host == "?") else {
            return Err(format!(
                "slots {start}-{end} have no reachable master address"
            ));
        };
        for slot in start.max(0)..=end.min(16383) {
            covered[slot as usize] = true;
        }
        let node = Node { host, port };
        if !masters.contains(&node) {
            masters.push(node);
        }
    }
    match covered.iter().position(|c| !c) {
        Some(slot) => Err(format!("slot {slot} has no master")),
        None => Ok(masters),
    }
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
    fn reads_masters_and_checks_coverage() {
        use redis::Value;
        let entry = |start: i64, end: i64, host: &str, port: i64| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                Value::Array(vec![
                    Value::BulkString(host.as_bytes().to_vec()),
                    Value::Int(port),
                    Value::BulkString(b"id".to_vec()),
                ]),
                Value::Array(vec![
                    Value::BulkString(b"10.0.0.9".to_vec()),
                    Value::Int(7009),
                ]),
            ])
        };
        let full = Value::Array(vec![
            entry(0, 5460, "redis-1.example", 7000),
            entry(5461, 10922, "10.0.0.2", 7001),
            entry(10923, 16383, "10.0.0.3", 7002),
            entry(100, 200, "redis-1.example", 7000),
        ]);
        let masters = parse_slots(&full).unwrap();
        let addrs: Vec<(String, u16)> = masters.into_iter().map(|n| (n.host, n.port)).collect();
        assert_eq!(
            addrs,
            vec![
                ("redis-1.example".to_string(), 7000),
                ("10.0.0.2".to_string(), 7001),
                ("10.0.0.3".to_string(), 7002)
            ]
        );
        // A range without a master (a failed master not yet replaced) is an error.
        let gap = Value::Array(vec![
            entry(0, 5460, "10.0.0.1", 7000),
            entry(10923, 16383, "10.0.0.3", 7002),
        ]);
        assert!(parse_slots(&gap).unwrap_err().contains("slot 5461"));
        let unknown = Value::Array(vec![entry(0, 16383, "?", 7000)]);
        assert!(parse_slots(&unknown).is_err());
    }
}
