//! Looking at the keyspace without reading a value: key names, TTLs and sizes for the admin
//! listing, and the server's memory use from `INFO`.

use super::connection::Conn;
use super::{RedisStore, SCAN_COUNT, cluster};
use crate::cache::inspect::{KeyInfo, KeyListing, StoreMemory};
use crate::error::StoreError;

impl RedisStore {
    /// Up to `limit` keys matching `pattern` (SCAN, on every master of a cluster), each with
    /// its TTL and `MEMORY USAGE`; never a value.
    pub(crate) async fn list_keys(
        &self,
        pattern: &str,
        limit: usize,
    ) -> Result<KeyListing, StoreError> {
        let mut conn = self.conn()?;
        let mut listing = KeyListing::default();
        let nodes = match &mut conn {
            Conn::Cluster(c) => Some(self.bounded(cluster::masters(c)).await?),
            Conn::Single(_) => None,
        };
        let nodes: Vec<Option<&cluster::Node>> = match &nodes {
            Some(masters) => masters.iter().map(Some).collect(),
            None => vec![None],
        };
        for node in nodes {
            let mut cursor = 0u64;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT);
                let (next, keys): (u64, Vec<Vec<u8>>) = match (node, &mut conn) {
                    (Some(node), Conn::Cluster(c)) => {
                        let value = self.bounded(c.route_command(cmd, node.route())).await?;
                        redis::from_redis_value(value).map_err(redis::RedisError::from)?
                    }
                    _ => self.bounded(cmd.query_async(&mut conn)).await?,
                };
                for key in keys {
                    if listing.keys.len() >= limit {
                        listing.truncated = true;
                        return Ok(listing);
                    }
                    // One key at a time: on a cluster each goes to its own slot's master.
                    let mut pipe = redis::pipe();
                    pipe.cmd("PTTL").arg(&key);
                    pipe.cmd("MEMORY")
                        .arg("USAGE")
                        .arg(&key)
                        .arg("SAMPLES")
                        .arg(0);
                    let (pttl, bytes): (i64, Option<u64>) =
                        self.bounded(pipe.query_async(&mut conn)).await?;
                    if pttl == -2 {
                        continue; // gone between the SCAN and now
                    }
                    listing.keys.push(KeyInfo {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        ttl_ms: u64::try_from(pttl).ok(),
                        bytes: bytes.unwrap_or(0),
                    });
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(listing)
    }

    /// `used_memory` and `maxmemory` from `INFO memory`, added up over a cluster's masters.
    pub(crate) async fn memory(&self) -> Result<StoreMemory, StoreError> {
        let mut conn = self.conn()?;
        let mut total = StoreMemory::default();
        let replies: Vec<String> = match &mut conn {
            Conn::Cluster(c) => {
                let masters = self.bounded(cluster::masters(c)).await?;
                let mut replies = Vec::with_capacity(masters.len());
                for node in &masters {
                    let mut cmd = redis::cmd("INFO");
                    cmd.arg("memory");
                    let value = self.bounded(c.route_command(cmd, node.route())).await?;
                    replies.push(redis::from_redis_value(value).map_err(redis::RedisError::from)?);
                }
                replies
            }
            Conn::Single(_) => {
                vec![
                    self.bounded(redis::cmd("INFO").arg("memory").query_async(&mut conn))
                        .await?,
                ]
            }
        };
        for reply in replies {
            let info = parse_info(&reply);
            total.used_bytes += info.used_bytes;
            total.max_bytes += info.max_bytes;
        }
        Ok(total)
    }
}

/// `used_memory:` and `maxmemory:` of one `INFO memory` reply (0 where absent).
fn parse_info(reply: &str) -> StoreMemory {
    let mut m = StoreMemory::default();
    for line in reply.lines() {
        let Some((name, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.parse().unwrap_or(0);
        match name {
            "used_memory" => m.used_bytes = value,
            "maxmemory" => m.max_bytes = value,
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_used_and_max_memory() {
        let m = parse_info(
            "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:0\r\n",
        );
        assert_eq!(m.used_bytes, 1_048_576);
        assert_eq!(m.max_bytes, 0);
    }
}
