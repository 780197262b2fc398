//! Redis, one server or a Redis Cluster: one multiplexed connection (per node), reconnected
//! when it breaks, every command bounded by a timeout and passed through a circuit breaker.

mod cluster;
mod connection;
mod inspect;
mod pubsub;
mod scripts;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::try_join_all;

use self::connection::{Conn, Target};
use self::scripts::{
    DELETE_IF_EQUALS, LOCK_FENCED, RATE_LIMIT, TOMBSTONES, UNLINK_BUT_TOMBSTONES, WRITE_IF,
};
use super::breaker::Breaker;
use super::gcra::{Quota, Verdict};
use super::{Deleted, FINGERPRINT_LEN, Store, WriteIf, kept};
use crate::entry;
use crate::error::{BuildError, StoreError};

/// Keys asked for per SCAN step, and deleted per UNLINK: small enough that neither blocks the
/// server for long, large enough that a million keys take a few thousand round trips.
const SCAN_COUNT: usize = 1000;

/// Timeouts, reconnection and TLS trust of a [`RedisStore`].
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisStoreConfig {
    /// How long one command may take before it fails (`CACHE_COMMAND_TIMEOUT`, ms). Default
    /// 250 ms: far above a LAN round trip, far below what a user notices; past it the function
    /// runs uncached.
    pub response_timeout: Duration,
    /// How long connecting may take (`CACHE_CONNECTION_TIMEOUT`, ms). Default 1 s.
    pub connection_timeout: Duration,
    /// Consecutive failures that open the circuit breaker (`CACHE_CIRCUIT_BREAKER_THRESHOLD`).
    /// Default 5.
    pub breaker_threshold: u32,
    /// How long an open breaker skips the store before probing it
    /// (`CACHE_CIRCUIT_BREAKER_TIMEOUT`, ms). Default 2 s: a recovered Redis is used again
    /// within about that.
    pub breaker_cool_down: Duration,
    /// The CA certificate (PEM) that signs the server's certificate, for `rediss://` URLs
    /// (`CACHE_REDIS_TLS_CA_FILE`). `None`: the system's trusted roots.
    pub tls_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cool_down", &self.breaker_cool_down)
            .field("tls_ca", &self.tls_ca.as_ref().map(|pem| pem.len()))
            .finish()
    }
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        RedisStoreConfig {
            response_timeout: Duration::from_millis(250),
            connection_timeout: Duration::from_secs(1),
            breaker_threshold: 5,
            breaker_cool_down: Duration::from_secs(2),
            tls_ca: None,
        }
    }
}

/// A store on one Redis server or on a Redis Cluster.
///
/// Building it parses the URL but does not connect: the connection is made on first use (inside
/// the caller's Tokio runtime), so a cache can be built in a `static` or before the runtime
/// starts, and a Redis that is down at startup costs only uncached calls.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    breaker: Breaker,
    config: RedisStoreConfig,
    /// The connection, made on first use and dropped when the breaker opens, so that a peer
    /// that vanished without closing the socket (or a runtime that was shut down) does not keep
    /// a dead connection forever: the next probe connects afresh.
    conn: RwLock<Option<Conn>>,
    display: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.display)
            .field("config", &self.inner.config)
            .finish()
    }
}

/// `url` with its password, if any, replaced by `***`, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => format!("{}***{}", &url[..scheme + 3], &url[at..]),
            }
        }
        _ => url.to_owned(),
    }
}

impl RedisStore {
    /// Parses `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS with
    /// the `tls` feature); connects on first use.
    pub fn open(url: &str, config: RedisStoreConfig) -> Result<Self, BuildError> {
        let target = Target::single(url, &config)?;
        Ok(Self::with_target(target, redact(url), config))
    }

    /// A store on the Redis Cluster that `nodes` (URLs of some of its nodes, all `redis://` or
    /// all `rediss://`) belong to; the other nodes are discovered. Connects on first use.
    ///
    /// Every operation works on a cluster: multi-key writes are split by hash slot, pattern
    /// invalidation scans every master. Reads go to masters only: a replica may lag behind an
    /// invalidation, and serving what was invalidated is what this cache must never do.
    pub fn open_cluster<S: AsRef<str>>(
        nodes: &[S],
        config: RedisStoreConfig,
    ) -> Result<Self, BuildError> {
        let nodes: Vec<String> = nodes.iter().map(|n| n.as_ref().trim().to_owned()).collect();
        let target = Target::cluster(&nodes, &config)?;
        let shown = nodes
            .iter()
            .map(|n| redact(n))
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self::with_target(
            target,
            format!("cluster {shown}"),
            config,
        ))
    }

    fn with_target(target: Target, display: String, config: RedisStoreConfig) -> Self {
        RedisStore {
            inner: Arc::new(Inner {
                target,
                breaker: Breaker::new(config.breaker_threshold, config.breaker_cool_down),
                config,
                conn: RwLock::new(None),
                display,
            }),
        }
    }

    /// Whether this store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster(..))
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        if let Some(conn) = &*self.inner.conn.read().unwrap_or_else(|e| e.into_inner()) {
            return Ok(conn.clone());
        }
        let mut slot = self.inner.conn.write().unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let conn = self.inner.target.connect_lazily(&self.inner.config)?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets a single server's connection; the next command makes a new one. A cluster
    /// connection is kept: redis-rs repairs its node connections and slot map itself, and
    /// building one afresh waits for every node, which one unreachable node would stall.
    fn reset(&self) {
        if self.is_cluster() {
            return;
        }
        *self.inner.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        self.bounded(cmd.query_async(&mut conn)).await
    }

    /// One round trip, through the circuit breaker and bounded by the command timeout. The
    /// connection manager's own timeout covers a command on a live connection, not its waits
    /// while reconnecting; this covers both.
    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let breaker = &self.inner.breaker;
        if !breaker.allow() {
            return Err(StoreError::CircuitOpen);
        }
        let limit = self.inner.config.response_timeout;
        // One clock reading per command: the deadline is derived from it, and the breaker
        // reads the clock again only for the commands whose latency it samples.
        let started = tokio::time::Instant::now();
        match tokio::time::timeout_at(started + limit, fut).await {
            Ok(Ok(v)) => {
                breaker.success(started.into_std());
                Ok(v)
            }
            Ok(Err(e)) => {
                if unreachable(&e) {
                    if breaker.failure(e.is_timeout()) {
                        self.reset();
                    }
                } else {
                    // The server answered (with an error): it is reachable.
                    breaker.success(started.into_std());
                }
                Err(e.into())
            }
            Err(_) => {
                if breaker.failure(true) {
                    self.reset();
                }
                Err(StoreError::Timeout(limit))
            }
        }
    }

    /// How long one command may take.
    pub(crate) fn command_timeout(&self) -> Duration {
        self.inner.config.response_timeout
    }

    /// The breaker's view of the store.
    pub(crate) fn breaker(&self) -> &Breaker {
        &self.inner.breaker
    }

    /// Sends `PING`; for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.query::<()>(&redis::cmd("PING")).await
    }
}

/// Whether `e` says the server could not be reached (as opposed to an answer that is an
/// error): what the breaker counts as a failure.
/// Whether `e` says the server could not be reached (rather than that it answered).
pub(crate) fn unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// An `MGET` reply with another number of values than keys asked: a broken server or proxy,
/// whose reply cannot be paired with the keys.
fn mget_miscounted() -> StoreError {
    StoreError::Redis(redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "MGET answered with another number of values than keys asked",
    )))
}

/// A TTL as Redis' PX: at least 1 ms, at most what Redis accepts.
fn px(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, i64::MAX as u64 / 2)
}

impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        // A read is safe to send again: the connection manager reconnects after a dropped
        // connection but fails the command that was in flight.
        let value: Option<Vec<u8>> = match self.query(&cmd).await {
            Err(StoreError::Redis(e)) if e.is_connection_dropped() => self.query(&cmd).await?,
            other => other?,
        };
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), StoreError> {
        self.query(
            redis::cmd("SET")
                .arg(key)
                .arg(value.as_ref())
                .arg("PX")
                .arg(px(ttl)),
        )
        .await
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let ms: i64 = self.query(redis::cmd("PTTL").arg(key)).await?;
        Ok(match ms {
            -2 => None,
            // A key without expiry was not written by the cache; report it as never expiring.
            -1 => Some(Duration::MAX),
            ms => Some(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self.query(redis::cmd("MGET").arg(keys)).await?;
        if values.len() != keys.len() {
            return Err(mget_miscounted());
        }
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    async fn set_many(&self, items: Vec<(String, Bytes, Duration)>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let set = |pipe: &mut redis::Pipeline, (key, value, ttl): &(String, Bytes, Duration)| {
            pipe.cmd("SET")
                .arg(key)
                .arg(value.as_ref())
                .arg("PX")
                .arg(px(*ttl))
                .ignore();
        };
        let keys: Vec<&str> = items.iter().map(|(k, _, _)| k.as_str()).collect();
        let groups = self.groups(&keys);
        try_join_all(groups.iter().map(|group| {
            let mut pipe = redis::pipe();
            for &i in group {
                set(&mut pipe, &items[i]);
            }
            self.pipeline::<()>(pipe)
        }))
        .await?;
        Ok(())
    }

    async fn read_tagged(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError> {
        self.read_tagged_impl(key, tag_keys).await
    }

    async fn write_if(&self, write: WriteIf<'_>) -> Result<bool, StoreError> {
        let Some((lease_key, token)) = write.release else {
            return self.write_if_script(&write, false).await;
        };
        // One script touches both keys only when they share a slot (a lease key carries its
        // entry's key as a hash tag; a key with braces of its own may land elsewhere).
        if !self.is_cluster() || cluster::same_slot(write.key, lease_key) {
            let wrote = self.write_if_script(&write, true).await;
            // The server refused the script itself (not the connection): the lease may still
            // be held; release it on its own rather than make other processes wait it out.
            if let Err(StoreError::Redis(e)) = &wrote {
                if !unreachable(e) {
                    let _ = self.delete_if_equals(lease_key, token).await;
                }
            }
            return wrote;
        }
        let wrote = self.write_if_script(&write, false).await;
        let _ = self.delete_if_equals(lease_key, token).await;
        wrote
    }

    async fn write_tombstones(&self, keys: &[String], ttl: Duration) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let held = try_join_all(self.groups(keys).iter().map(|group| async move {
            let mut inv = TOMBSTONES.prepare_invoke();
            for &i in group {
                inv.key(&keys[i]);
            }
            for _ in group {
                inv.arg(entry::tombstone());
            }
            inv.arg(px(ttl));
            let mut conn = self.conn()?;
            self.bounded(inv.invoke_async::<u64>(&mut conn)).await
        }))
        .await?;
        Ok(held.into_iter().sum())
    }

    async fn bump_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        if tag_keys.is_empty() {
            return Ok(());
        }
        try_join_all(self.groups(tag_keys).iter().map(|group| {
            let mut pipe = redis::pipe();
            for &i in group {
                pipe.cmd("SET")
                    .arg(&tag_keys[i])
                    .arg(&crate::random::token8()[..])
                    .arg("PX")
                    .arg(px(ttl))
                    .ignore();
            }
            self.pipeline::<()>(pipe)
        }))
        .await?;
        Ok(())
    }

    async fn extend_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        if tag_keys.is_empty() {
            return Ok(());
        }
        try_join_all(self.groups(tag_keys).iter().map(|group| {
            let mut pipe = redis::pipe();
            for &i in group {
                // GT: only ever lengthens; a missing key is left missing (Redis 7).
                pipe.cmd("PEXPIRE")
                    .arg(&tag_keys[i])
                    .arg(px(ttl))
                    .arg("GT")
                    .ignore();
            }
            self.pipeline::<()>(pipe)
        }))
        .await?;
        Ok(())
    }

    async fn delete_matching(&self, pattern: &str, keep: &[String]) -> Result<Deleted, StoreError> {
        let mut conn = self.conn()?;
        let Conn::Cluster(cluster) = &mut conn else {
            return self.delete_scanned(&mut conn, None, pattern, keep).await;
        };
        // Every master holds its own part of the keyspace and its own cursor.
        let masters = self.bounded(cluster::masters(cluster)).await?;
        let mut done = Deleted::default();
        for node in &masters {
            done += self
                .delete_scanned(&mut conn, Some(node), pattern, keep)
                .await?;
        }
        Ok(done)
    }

    async fn set_nx(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(token).arg("NX").arg("PX").arg(px(ttl));
        let set: Option<String> = self.query(&cmd).await?;
        Ok(set.is_some())
    }

    async fn delete_if_equals(&self, key: &str, token: &[u8]) -> Result<bool, StoreError> {
        let mut inv = DELETE_IF_EQUALS.prepare_invoke();
        inv.key(key).arg(token);
        let mut conn = self.conn()?;
        let n: i64 = self.bounded(inv.invoke_async(&mut conn)).await?;
        Ok(n == 1)
    }

    async fn lock_fenced(
        &self,
        lock_key: &str,
        fence_key: &str,
        token: &[u8],
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let mut inv = LOCK_FENCED.prepare_invoke();
        inv.key(lock_key).key(fence_key).arg(token).arg(px(ttl));
        let mut conn = self.conn()?;
        self.bounded(inv.invoke_async(&mut conn)).await
    }

    async fn rate_limit(&self, key: &str, quota: Quota) -> Result<Verdict, StoreError> {
        let mut inv = RATE_LIMIT.prepare_invoke();
        inv.key(key).arg(quota.interval_us).arg(quota.tolerance_us);
        let mut conn = self.conn()?;
        // Not sent again after a dropped connection: the first may have counted.
        let (allowed, remaining, retry_after_us, reset_us): (u8, u64, u64, u64) =
            self.bounded(inv.invoke_async(&mut conn)).await?;
        Ok(Verdict {
            allowed: allowed == 1,
            remaining,
            retry_after_us,
            reset_us,
        })
    }
}

impl RedisStore {
    /// The conditional write of [`WRITE_IF`]; with `release`, the lease is released in the
    /// same script.
    async fn write_if_script(&self, w: &WriteIf<'_>, release: bool) -> Result<bool, StoreError> {
        let (prefix, len): (&[u8], i64) = match w.observed {
            Some(seen) => (&seen[..seen.len().min(FINGERPRINT_LEN)], seen.len() as i64),
            None => (&[], -1),
        };
        let mut inv = WRITE_IF.prepare_invoke();
        inv.key(w.key)
            .arg(prefix)
            .arg(len)
            .arg(w.value.as_ref())
            .arg(px(w.ttl))
            .arg(u8::from(w.replace_values));
        if let (true, Some((lease_key, token))) = (release, w.release) {
            inv.key(lease_key).arg(token).arg(u8::from(w.lease_held));
        }
        let mut conn = self.conn()?;
        let wrote: i64 = self.bounded(inv.invoke_async(&mut conn)).await?;
        Ok(wrote == 1)
    }

    /// The positions of `keys` grouped so that each group may go in one script or pipeline:
    /// by hash slot on a cluster, all together on one server.
    fn groups<K: AsRef<[u8]>>(&self, keys: &[K]) -> Vec<Vec<usize>> {
        if self.is_cluster() {
            cluster::by_slot(keys)
        } else {
            vec![(0..keys.len()).collect()]
        }
    }

    /// Sends `pipe` (whose commands share one slot on a cluster) in one round trip.
    async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        self.bounded(pipe.query_async(&mut conn)).await
    }

    /// SCANs the keyspace of one server (or of `node`, a cluster master) for `pattern` and
    /// UNLINKs what it finds, batch by batch; returns how many keys went.
    async fn delete_scanned(
        &self,
        conn: &mut Conn,
        node: Option<&cluster::Node>,
        pattern: &str,
        keep: &[String],
    ) -> Result<Deleted, StoreError> {
        let mut cursor = 0u64;
        let mut done = Deleted::default();
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            // Key names as bytes: a name that is not UTF-8 is deleted like any other.
            let (next, mut keys): (u64, Vec<Vec<u8>>) = match (node, &mut *conn) {
                (Some(node), Conn::Cluster(c)) => {
                    let value = self.bounded(c.route_command(cmd, node.route())).await?;
                    redis::from_redis_value(value).map_err(redis::RedisError::from)?
                }
                _ => self.bounded(cmd.query_async(conn)).await?,
            };
            keys.retain(|k| !kept(k, keep));
            done.scanned += keys.len() as u64;
            // One script per hash slot (all at once on one server).
            let counts = try_join_all(self.groups(&keys).iter().map(|group| {
                let mut inv = UNLINK_BUT_TOMBSTONES.prepare_invoke();
                for &i in group {
                    inv.key(&keys[i]);
                }
                let mut conn = conn.clone();
                async move { self.bounded(inv.invoke_async::<u64>(&mut conn)).await }
            }))
            .await?;
            done.removed += counts.iter().sum::<u64>();
            if next == 0 {
                return Ok(done);
            }
            cursor = next;
        }
    }

    pub(crate) async fn read_tagged_impl(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError> {
        if tag_keys.is_empty() {
            return Ok((Store::get(self, key).await?, Vec::new()));
        }
        let (entry, tags): (Option<Vec<u8>>, Vec<Option<Vec<u8>>>) = if self.is_cluster() {
            // The entry and its tags' versions live in different slots: two commands sent
            // together, still one round trip of waiting.
            // One pass through the breaker and the timeout for the pair: it is one read.
            let mut get = redis::cmd("GET");
            get.arg(key);
            let mut mget = redis::cmd("MGET");
            mget.arg(tag_keys);
            let mut entry_conn = self.conn()?;
            let mut tags_conn = entry_conn.clone();
            // Boxed: two commands' futures side by side would double every read's future.
            let (entry, tags): (_, Vec<_>) = Box::pin(self.bounded(async {
                let (entry, tags) = tokio::join!(
                    get.query_async(&mut entry_conn),
                    mget.query_async(&mut tags_conn)
                );
                Ok((entry?, tags?))
            }))
            .await?;
            if tags.len() != tag_keys.len() {
                return Err(mget_miscounted());
            }
            (entry, tags)
        } else {
            // One command: the entry and its tags' versions in one MGET costs the server
            // about what a GET does, where a GET and an MGET sent together cost two.
            let mut mget = redis::cmd("MGET");
            mget.arg(key).arg(tag_keys);
            let mut conn = self.conn()?;
            let first = self.bounded(mget.query_async(&mut conn)).await;
            let mut values: Vec<Option<Vec<u8>>> = match first {
                // A read is safe to send again after the manager reconnected.
                Err(StoreError::Redis(e)) if e.is_connection_dropped() => {
                    self.bounded(mget.query_async(&mut conn)).await?
                }
                other => other?,
            };
            if values.len() != tag_keys.len() + 1 {
                return Err(mget_miscounted());
            }
            let entry = values.remove(0);
            (entry, values)
        };
        Ok((
            entry.map(Bytes::from),
            tags.into_iter().map(|t| t.map(Bytes::from)).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("redis://u:secret@h:1/0"),
            "redis://u:***@h:1/0"
        );
        assert_eq!(super::redact("redis://secret@h"), "redis://***@h");
        assert_eq!(super::redact("redis://h:6379"), "redis://h:6379");
    }
}
