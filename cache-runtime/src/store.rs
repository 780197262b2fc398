//! Where entries live: the [`Store`] seam, a bounded in-process store and Redis.

pub(crate) mod breaker;
pub(crate) mod gcra;
pub(crate) mod glob;
mod memory;
mod redis;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

pub use self::breaker::BreakerState;
pub(crate) use self::memory::Kept;
pub use self::memory::MemoryStore;
pub(crate) use self::redis::redact as redact_url;
pub(crate) use self::redis::unreachable;
pub use self::redis::{RedisStore, RedisStoreConfig};
use crate::error::StoreError;

/// The operations the cache needs from a backend. Keys are full keys (prefix included).
///
/// Every method is one round trip on a networked store; the `_many` methods pipeline. Sealed:
/// the guarantees of the call path (conditional writes, leases, tombstones, tag versions) rest
/// on each method's exact semantics, so the backends are the ones this crate implements,
/// chosen with [`CacheBuilder`](crate::CacheBuilder).
pub(crate) trait Store: Send + Sync + 'static {
    /// The entry under `key`, if any.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send;
    /// Stores `value` under `key`, expiring after `ttl`.
    fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The time `key` has left, or `None` when it is absent.
    fn ttl(&self, key: &str) -> impl Future<Output = Result<Option<Duration>, StoreError>> + Send;
    /// The entries under `keys`, in order.
    fn get_many(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<Option<Bytes>>, StoreError>> + Send;
    /// Stores every `(key, value, ttl)`.
    fn set_many(
        &self,
        items: Vec<(String, Bytes, Duration)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The entry under `key` and the values under `tag_keys`, in one round trip.
    fn read_tagged(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> impl Future<Output = Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError>> + Send;

    /// Performs `write`: stores its value only if the key still holds what a read saw, then
    /// releases its lease if it carries one (whatever the write did); returns whether it
    /// wrote. A networked store does both in one round trip where it can, so a miss costs the
    /// read, the lease and this.
    fn write_if(&self, write: WriteIf<'_>)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Replaces each of `keys` by a fresh tombstone living `ttl`; returns how many held an entry.
    fn write_tombstones(
        &self,
        keys: &[String],
        ttl: Duration,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Gives each of `tag_keys` a new random version, living `ttl`.
    fn bump_versions(
        &self,
        tag_keys: &[String],
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes each of `tag_keys` that exists live at least `ttl` from now (never shorter):
    /// a tag's version must outlive every entry that recorded it.
    fn extend_versions(
        &self,
        tag_keys: &[String],
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes every key matching the Redis glob `pattern`, in batches, except keys that
    /// start with one of `keep` (locks and fencing counters outlive every invalidation);
    /// returns how many it scanned and removed. Key names need not be UTF-8.
    fn delete_matching(
        &self,
        pattern: &str,
        keep: &[String],
    ) -> impl Future<Output = Result<Deleted, StoreError>> + Send;

    /// Stores `token` under `key` for `ttl` only if the key is absent (`SET NX PX`); returns
    /// whether it did. Leases are made of this.
    fn set_nx(
        &self,
        key: &str,
        token: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes `key` only if it holds `token` (compare-and-delete); returns whether it did.
    fn delete_if_equals(
        &self,
        key: &str,
        token: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes the lock `lock_key` with `token` for `ttl` if it is free, and then returns the
    /// next value of the counter `fence_key` (the fencing token); `None` when the lock is held.
    fn lock_fenced(
        &self,
        lock_key: &str,
        fence_key: &str,
        token: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Counts one request against the rate limit under `key` and decides it, atomically
    /// (GCRA, see [`gcra`]): of any number of concurrent callers, on any number of processes,
    /// no more than the quota pass. The key holds one number and expires when the quota is
    /// full again.
    fn rate_limit(
        &self,
        key: &str,
        quota: gcra::Quota,
    ) -> impl Future<Output = Result<gcra::Verdict, StoreError>> + Send;
}

/// A conditional write: `value` goes under `key` only if the key still holds what a read saw
/// (`observed`, `None` for absent). This is what keeps a load that started before an
/// invalidation from writing after it.
pub(crate) struct WriteIf<'a> {
    pub key: &'a str,
    pub value: Bytes,
    pub ttl: Duration,
    /// What the read saw: compared by fingerprint ([`FINGERPRINT_LEN`]).
    pub observed: Option<&'a [u8]>,
    /// Write-through: overwrite another value too, but never a tombstone written since the
    /// read (an invalidation during the write-through wins).
    pub replace_values: bool,
    /// A lease to compare-and-delete after the write, whatever the write did:
    /// `(lease key, token)`.
    pub release: Option<(&'a str, &'a [u8])>,
    /// Whether `release`'s lease should still be held (it is within its TTL): a write over an
    /// empty key then requires that the store still holds it. A lease lost early was deleted
    /// by a pattern invalidation, or lost with a restarted server, and the emptiness the read
    /// saw may have been an invalidation's.
    pub lease_held: bool,
}

/// The fingerprint a conditional write compares: an entry's header (its version, flags and
/// timestamps, unique per load) and its length, or a whole tombstone. Comparing these instead of
/// whole values keeps the check O(1) on the server.
pub(crate) const FINGERPRINT_LEN: usize = 32;

/// What follows the prefix in the key holding a tag's version: `<prefix>__cachette:tag:<tag>`.
pub(crate) const TAG_KEY_INFIX: &str = "__cachette:tag:";

/// The backend a [`Cache`](crate::Cache) was built with.
///
/// An enum rather than a trait object: the hit path pays no boxed future.
#[derive(Clone, Debug)]
pub(crate) enum AnyStore {
    Memory(MemoryStore),
    Redis(RedisStore),
    /// A store whose calls fail, stall or return garbage when a test says so.
    #[cfg(feature = "testing")]
    Faulty(crate::testing::FaultStore),
}

impl AnyStore {
    /// Whether this is the in-process store, whose reads cost no round trip.
    pub(crate) fn is_memory(&self) -> bool {
        matches!(self, AnyStore::Memory(_))
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Memory($s) => $e,
            AnyStore::Redis($s) => $e,
            #[cfg(feature = "testing")]
            AnyStore::Faulty($s) => $e,
        }
    };
}

impl Store for AnyStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        dispatch!(self, s => s.get(key).await)
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), StoreError> {
        dispatch!(self, s => s.set(key, value, ttl).await)
    }
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        dispatch!(self, s => s.ttl(key).await)
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, StoreError> {
        dispatch!(self, s => s.get_many(keys).await)
    }
    async fn set_many(&self, items: Vec<(String, Bytes, Duration)>) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_many(items).await)
    }
    async fn read_tagged(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError> {
        dispatch!(self, s => s.read_tagged(key, tag_keys).await)
    }
    async fn write_if(&self, write: WriteIf<'_>) -> Result<bool, StoreError> {
        dispatch!(self, s => s.write_if(write).await)
    }
    async fn write_tombstones(&self, keys: &[String], ttl: Duration) -> Result<u64, StoreError> {
        dispatch!(self, s => s.write_tombstones(keys, ttl).await)
    }
    async fn bump_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        dispatch!(self, s => s.bump_versions(tag_keys, ttl).await)
    }
    async fn extend_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        dispatch!(self, s => s.extend_versions(tag_keys, ttl).await)
    }
    async fn delete_matching(&self, pattern: &str, keep: &[String]) -> Result<Deleted, StoreError> {
        dispatch!(self, s => s.delete_matching(pattern, keep).await)
    }
    async fn set_nx(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        dispatch!(self, s => s.set_nx(key, token, ttl).await)
    }
    async fn delete_if_equals(&self, key: &str, token: &[u8]) -> Result<bool, StoreError> {
        dispatch!(self, s => s.delete_if_equals(key, token).await)
    }
    async fn lock_fenced(
        &self,
        lock_key: &str,
        fence_key: &str,
        token: &[u8],
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        dispatch!(self, s => s.lock_fenced(lock_key, fence_key, token, ttl).await)
    }
    async fn rate_limit(&self, key: &str, quota: gcra::Quota) -> Result<gcra::Verdict, StoreError> {
        dispatch!(self, s => s.rate_limit(key, quota).await)
    }
}

/// What a pattern deletion did: keys it matched (scanned) and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deleted {
    pub scanned: u64,
    pub removed: u64,
}

impl std::ops::AddAssign for Deleted {
    fn add_assign(&mut self, other: Deleted) {
        self.scanned += other.scanned;
        self.removed += other.removed;
    }
}

/// Whether `key` starts with one of `keep`: spared by pattern deletion.
pub(crate) fn kept(key: &[u8], keep: &[String]) -> bool {
    keep.iter().any(|k| key.starts_with(k.as_bytes()))
}

/// Whether `a` and `b` have the same fingerprint (see [`FINGERPRINT_LEN`]).
pub(crate) fn same_fingerprint(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a[..a.len().min(FINGERPRINT_LEN)] == b[..b.len().min(FINGERPRINT_LEN)]
}
