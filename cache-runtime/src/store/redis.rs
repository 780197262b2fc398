//! Redis through redis-rs' `ConnectionManager`: one multiplexed connection, reconnected by
//! the manager when it breaks, with explicit connection and response timeouts.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::breaker::Breaker;
use super::{FINGERPRINT_LEN, Store};
use crate::entry;
use crate::error::{BuildError, StoreError};

/// Writes ARGV[3] under KEYS[1] for ARGV[4] ms if the key still holds what the caller read:
/// nothing (ARGV[2] = -1), or a value of length ARGV[2] starting with ARGV[1]; with ARGV[5] =
/// 1, also over another value, but never over a tombstone the caller did not see.
static WRITE_IF: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
local same
if cur then
  same = tonumber(ARGV[2]) == #cur and string.sub(cur, 1, #ARGV[1]) == ARGV[1]
else
  same = ARGV[2] == '-1'
end
if not same then
  -- ARGV[5] = 1: refuse only a tombstone written since (a write-through replaces values).
  if ARGV[5] ~= '1' or (cur and #cur == 17 and string.byte(cur, 1) == 254) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
",
    )
});

/// Replaces KEYS[i] by the tombstone ARGV[i] for ARGV[#KEYS + 1] ms; returns how many held an
/// entry (entries are at least 32 bytes, tombstones 17).
static TOMBSTONES: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local held = 0
local ttl = ARGV[#KEYS + 1]
for i, key in ipairs(KEYS) do
  local len = redis.call('STRLEN', key)
  if len > 17 then held = held + 1 end
  redis.call('SET', key, ARGV[i], 'PX', ttl)
end
return held
",
    )
});

/// Deletes KEYS[1] if it holds ARGV[1].
static DELETE_IF_EQUALS: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// Takes the lock KEYS[1] with token ARGV[1] for ARGV[2] ms if free, then returns INCR of the
/// fencing counter KEYS[2] (same hash slot: both keys carry the lock name as a hash tag).
static LOCK_FENCED: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
",
    )
});

/// Keys asked for per SCAN step, and deleted per UNLINK: small enough that neither blocks the
/// server for long, large enough that a million keys take a few thousand round trips.
const SCAN_COUNT: usize = 1000;

/// Timeouts and reconnection of a [`RedisStore`].
#[derive(Debug, Clone)]
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
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        RedisStoreConfig {
            response_timeout: Duration::from_millis(250),
            connection_timeout: Duration::from_secs(1),
            breaker_threshold: 5,
            breaker_cool_down: Duration::from_secs(2),
        }
    }
}

/// A store on one Redis server.
///
/// Building it parses the URL but does not connect: the connection is made on first use (inside
/// the caller's Tokio runtime), so a cache can be built in a `static` or before the runtime
/// starts, and a Redis that is down at startup costs only uncached calls.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    breaker: Breaker,
    config: RedisStoreConfig,
    /// The connection, made on first use and dropped when the breaker opens, so that a peer
    /// that vanished without closing the socket (or a runtime that was shut down) does not keep
    /// a dead connection forever: the next probe connects afresh.
    conn: RwLock<Option<ConnectionManager>>,
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
    /// Parses `url` (`redis://[user:password@]host[:port][/db]`); connects on first use.
    pub fn open(url: &str, config: RedisStoreConfig) -> Result<Self, BuildError> {
        let client = redis::Client::open(url).map_err(|e| BuildError::InvalidRedisUrl {
            url: redact(url),
            reason: e.to_string(),
        })?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                breaker: Breaker::new(config.breaker_threshold, config.breaker_cool_down),
                config,
                conn: RwLock::new(None),
                display: redact(url),
            }),
        })
    }

    fn conn(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(conn) = &*self.inner.conn.read().unwrap_or_else(|e| e.into_inner()) {
            return Ok(conn.clone());
        }
        let mut slot = self.inner.conn.write().unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        // Commands are bounded by `bounded` (which also covers reconnection waits); a second
        // timer per command in the manager would only add cost.
        let cfg = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(self.inner.config.connection_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(self.inner.client.clone(), cfg)?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the connection; the next command makes a new one.
    fn reset(&self) {
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
        let started = std::time::Instant::now();
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => {
                breaker.success(started.elapsed());
                Ok(v)
            }
            Ok(Err(e)) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                {
                    if breaker.failure(e.is_timeout()) {
                        self.reset();
                    }
                } else {
                    // The server answered (with an error): it is reachable.
                    breaker.success(started.elapsed());
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

    /// The breaker's view of the store.
    pub(crate) fn breaker(&self) -> &Breaker {
        &self.inner.breaker
    }

    /// Sends `PING`; for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.query::<()>(&redis::cmd("PING")).await
    }
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

    async fn delete(&self, keys: &[String]) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.query(redis::cmd("UNLINK").arg(keys)).await
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let n: u64 = self.query(redis::cmd("EXISTS").arg(key)).await?;
        Ok(n > 0)
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
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    async fn set_many(&self, items: Vec<(String, Bytes, Duration)>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (key, value, ttl) in &items {
            pipe.cmd("SET")
                .arg(key)
                .arg(value.as_ref())
                .arg("PX")
                .arg(px(*ttl))
                .ignore();
        }
        let mut conn = self.conn()?;
        self.bounded(pipe.query_async::<()>(&mut conn)).await?;
        Ok(())
    }

    async fn read_tagged(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError> {
        self.read_tagged_impl(key, tag_keys).await
    }

    async fn write_if(
        &self,
        key: &str,
        observed: Option<&[u8]>,
        value: Bytes,
        ttl: Duration,
        replace_values: bool,
    ) -> Result<bool, StoreError> {
        let (prefix, len): (&[u8], i64) = match observed {
            Some(seen) => (&seen[..seen.len().min(FINGERPRINT_LEN)], seen.len() as i64),
            None => (&[], -1),
        };
        let mut conn = self.conn()?;
        let mut inv = WRITE_IF.prepare_invoke();
        inv.key(key)
            .arg(prefix)
            .arg(len)
            .arg(value.as_ref())
            .arg(px(ttl))
            .arg(u8::from(replace_values));
        let wrote: i64 = self.bounded(inv.invoke_async(&mut conn)).await?;
        Ok(wrote == 1)
    }

    async fn write_tombstones(&self, keys: &[String], ttl: Duration) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut inv = TOMBSTONES.prepare_invoke();
        for key in keys {
            inv.key(key);
        }
        for _ in keys {
            inv.arg(entry::tombstone());
        }
        inv.arg(px(ttl));
        let mut conn = self.conn()?;
        self.bounded(inv.invoke_async(&mut conn)).await
    }

    async fn bump_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        if tag_keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for key in tag_keys {
            pipe.cmd("SET")
                .arg(key)
                .arg(&crate::random::token8()[..])
                .arg("PX")
                .arg(px(ttl))
                .ignore();
        }
        let mut conn = self.conn()?;
        self.bounded(pipe.query_async::<()>(&mut conn)).await?;
        Ok(())
    }

    async fn delete_matching(&self, pattern: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        let mut cursor = 0;
        let mut removed = 0;
        loop {
            let (next, keys) = self.scan_batch(&mut conn, cursor, pattern).await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .bounded(redis::cmd("UNLINK").arg(&keys).query_async(&mut conn))
                    .await?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
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
}

impl RedisStore {
    async fn scan_batch(
        &self,
        conn: &mut ConnectionManager,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        self.bounded(cmd.query_async(conn)).await
    }
}

impl RedisStore {
    pub(crate) async fn read_tagged_impl(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError> {
        if tag_keys.is_empty() {
            return Ok((Store::get(self, key).await?, Vec::new()));
        }
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(key).cmd("MGET").arg(tag_keys);
        let mut conn = self.conn()?;
        let first = self.bounded(pipe.query_async(&mut conn)).await;
        let (entry, tags): (Option<Vec<u8>>, Vec<Option<Vec<u8>>>) = match first {
            Err(StoreError::Redis(e)) if e.is_connection_dropped() => {
                self.bounded(pipe.query_async(&mut conn)).await?
            }
            other => other?,
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
