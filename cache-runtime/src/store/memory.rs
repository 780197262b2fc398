//! The embedded default: a bounded in-process store on moka, weighed by bytes.

mod inspect;

use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use moka::ops::compute::Op;

use super::gcra::{self, Quota, Verdict};
use super::glob::glob_match;
use super::{Deleted, Store, WriteIf, kept, same_fingerprint};
use crate::entry;
use crate::error::StoreError;

/// An in-process store bounded by the total size of its keys and values.
///
/// Entries expire at their own TTL; when the byte budget is full, moka's TinyLFU policy
/// evicts the entries least likely to be used again.
///
/// ```
/// let store = cache_runtime::MemoryStore::new(64 * 1024 * 1024);
/// let cache = cache_runtime::Cache::builder().memory_store(store).build().unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: moka::sync::Cache<String, Slot>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.inner.entry_count())
            .field("weighted_bytes", &self.inner.weighted_size())
            .finish()
    }
}

#[derive(Clone)]
struct Slot {
    value: Bytes,
    expires_at: Instant,
    /// The value decoded, for values that can be cloned: set by the first hit that decodes
    /// it, so later hits clone instead of decoding. A write puts a new slot, and with it an
    /// empty one. `None` for what is not an entry (tag versions, leases, counters).
    decoded: Option<Decoded>,
}

/// A decoded value shared by the hits of one stored entry.
pub(crate) type Decoded = Arc<OnceLock<Arc<dyn Any + Send + Sync>>>;

struct PerEntryTtl;

impl moka::Expiry<String, Slot> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, slot: &Slot, now: Instant) -> Option<Duration> {
        Some(slot.expires_at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &String,
        slot: &Slot,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.expires_at.saturating_duration_since(now))
    }
}

/// What moka's bookkeeping costs per entry beyond key and value, roughly.
const ENTRY_OVERHEAD: usize = 96;

impl MemoryStore {
    /// A store holding at most `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        let inner = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Slot| {
                u32::try_from(k.len() + v.value.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        MemoryStore { inner }
    }

    /// `now + ttl`, saturating far in the future instead of overflowing.
    fn deadline(now: Instant, ttl: Duration) -> Instant {
        now.checked_add(ttl)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
    }

    /// The entry under `key`, at once: what the asynchronous `get` returns, for callers that
    /// need no future.
    pub(crate) fn read(&self, key: &str) -> Option<Bytes> {
        self.live(key).map(|s| s.value)
    }

    /// The bytes under `key`, with the slot for their decoded value.
    pub(crate) fn read_decoded(&self, key: &str) -> Option<(Bytes, Option<Decoded>)> {
        self.live(key).map(|s| (s.value, s.decoded))
    }

    fn live(&self, key: &str) -> Option<Slot> {
        // No expiry check of our own: moka's `get` compares the entry's expiry (set from
        // `expires_at` by `PerEntryTtl`) with the clock reading it takes anyway, maintenance
        // pass or not. A second clock reading here cost about a tenth of an in-process hit.
        self.inner.get(key)
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.read(key))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), StoreError> {
        let expires_at = Self::deadline(Instant::now(), ttl);
        self.inner.insert(
            key.to_owned(),
            Slot {
                value,
                expires_at,
                decoded: Some(Decoded::default()),
            },
        );
        Ok(())
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        Ok(self
            .live(key)
            .map(|s| s.expires_at.saturating_duration_since(Instant::now())))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, StoreError> {
        Ok(keys.iter().map(|k| self.live(k).map(|s| s.value)).collect())
    }

    async fn set_many(&self, items: Vec<(String, Bytes, Duration)>) -> Result<(), StoreError> {
        let now = Instant::now();
        for (key, value, ttl) in items {
            self.inner.insert(
                key,
                Slot {
                    value,
                    expires_at: Self::deadline(now, ttl),
                    decoded: Some(Decoded::default()),
                },
            );
        }
        Ok(())
    }

    async fn read_tagged(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError> {
        let entry = self.live(key).map(|s| s.value);
        Ok((
            entry,
            tag_keys
                .iter()
                .map(|k| self.live(k).map(|s| s.value))
                .collect(),
        ))
    }

    async fn write_if(&self, write: WriteIf<'_>) -> Result<bool, StoreError> {
        let WriteIf {
            key,
            value,
            ttl,
            observed,
            replace_values,
            release,
            lease_held,
        } = write;
        let now = Instant::now();
        let result = self.inner.entry_by_ref(key).and_compute_with(|current| {
            let current = current
                .map(|e| e.into_value())
                .filter(|s| s.expires_at > now);
            let unchanged = match (&current, observed) {
                // A key found empty is written only under a lease still held (see the Redis
                // script): one deleted by a pattern invalidation may mean an older load.
                (None, None) => {
                    !lease_held
                        || release.is_none_or(|(lease_key, token)| {
                            self.inner
                                .get(lease_key)
                                .is_some_and(|l| l.expires_at > now && l.value[..] == token[..])
                        })
                }
                (Some(cur), Some(seen)) => same_fingerprint(&cur.value, seen),
                _ => false,
            };
            let fresh_tombstone = current
                .as_ref()
                .is_some_and(|c| entry::is_tombstone(&c.value));
            if unchanged || (replace_values && !fresh_tombstone) {
                Op::Put(Slot {
                    value,
                    expires_at: Self::deadline(now, ttl),
                    decoded: Some(Decoded::default()),
                })
            } else {
                Op::Nop
            }
        });
        if let Some((lease_key, token)) = release {
            self.delete_if_equals(lease_key, token).await?;
        }
        Ok(matches!(
            result,
            moka::ops::compute::CompResult::Inserted(_)
                | moka::ops::compute::CompResult::ReplacedWith(_)
        ))
    }

    async fn write_tombstones(&self, keys: &[String], ttl: Duration) -> Result<u64, StoreError> {
        let mut held = 0;
        let now = Instant::now();
        let expires_at = Self::deadline(now, ttl);
        for key in keys {
            // A compute, not an insert: moka serializes computes of one key, and the
            // conditional write is one, so a write that compared the old entry cannot land
            // after this tombstone.
            self.inner
                .entry_by_ref(key.as_str())
                .and_compute_with(|current| {
                    if let Some(old) = current.map(|e| e.into_value()) {
                        if old.expires_at > now && !entry::is_tombstone(&old.value) {
                            held += 1;
                        }
                    }
                    Op::Put(Slot {
                        value: Bytes::from(entry::tombstone()),
                        expires_at,
                        decoded: None,
                    })
                });
        }
        Ok(held)
    }

    async fn bump_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        let expires_at = Self::deadline(Instant::now(), ttl);
        for key in tag_keys {
            // A compute, serialized with `extend_versions` (a compute too): a lengthening
            // that read the old version cannot put it back over the new one.
            let version = Bytes::copy_from_slice(&crate::random::token8());
            self.inner.entry_by_ref(key.as_str()).and_compute_with(|_| {
                Op::Put(Slot {
                    value: version,
                    expires_at,
                    decoded: None,
                })
            });
        }
        Ok(())
    }

    async fn extend_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let expires_at = Self::deadline(now, ttl);
        for key in tag_keys {
            self.inner
                .entry_by_ref(key.as_str())
                .and_compute_with(|current| match current.map(|e| e.into_value()) {
                    Some(slot) if slot.expires_at > now && slot.expires_at < expires_at => {
                        Op::Put(Slot {
                            value: slot.value,
                            expires_at,
                            decoded: slot.decoded,
                        })
                    }
                    _ => Op::Nop,
                });
        }
        Ok(())
    }

    async fn delete_matching(&self, pattern: &str, keep: &[String]) -> Result<Deleted, StoreError> {
        let now = Instant::now();
        let mut done = Deleted::default();
        for (key, slot) in self.inner.iter() {
            if glob_match(pattern.as_bytes(), key.as_bytes()) && !kept(key.as_bytes(), keep) {
                if slot.expires_at > now {
                    done.scanned += 1;
                }
                // A compute, not an invalidate: it waits for a conditional write of the key
                // in progress (which may have seen the lease this deletion follows). A
                // tombstone stays: it is a key invalidation's, which loads in flight are
                // checked against (see the Redis store).
                let result = self
                    .inner
                    .entry_by_ref(key.as_str())
                    .and_compute_with(|current| match current {
                        Some(c) if entry::is_tombstone(&c.value().value) => Op::Nop,
                        Some(_) => Op::Remove,
                        None => Op::Nop,
                    });
                if matches!(result, moka::ops::compute::CompResult::Removed(_))
                    && slot.expires_at > now
                {
                    done.removed += 1;
                }
            }
        }
        Ok(done)
    }

    async fn set_nx(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let result = self.inner.entry_by_ref(key).and_compute_with(|current| {
            match current
                .map(|e| e.into_value())
                .filter(|s| s.expires_at > now)
            {
                Some(_) => Op::Nop,
                None => Op::Put(Slot {
                    value: Bytes::copy_from_slice(token),
                    expires_at: Self::deadline(now, ttl),
                    decoded: None,
                }),
            }
        });
        Ok(!matches!(
            result,
            moka::ops::compute::CompResult::Unchanged(_)
        ))
    }

    async fn delete_if_equals(&self, key: &str, token: &[u8]) -> Result<bool, StoreError> {
        let now = Instant::now();
        let result = self.inner.entry_by_ref(key).and_compute_with(|current| {
            match current.map(|e| e.into_value()) {
                Some(s) if s.expires_at > now && s.value.as_ref() == token => Op::Remove,
                _ => Op::Nop,
            }
        });
        Ok(matches!(result, moka::ops::compute::CompResult::Removed(_)))
    }

    async fn lock_fenced(
        &self,
        lock_key: &str,
        fence_key: &str,
        token: &[u8],
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        if !self.set_nx(lock_key, token, ttl).await? {
            return Ok(None);
        }
        let now = Instant::now();
        let mut next = 0;
        self.inner
            .entry_by_ref(fence_key)
            .and_compute_with(|current| {
                let last = current
                    .map(|e| e.into_value())
                    .and_then(|s| {
                        std::str::from_utf8(&s.value)
                            .ok()
                            .and_then(|v| v.parse::<u64>().ok())
                    })
                    .unwrap_or(0);
                next = last + 1;
                Op::Put(Slot {
                    value: Bytes::from(next.to_string()),
                    expires_at: Self::deadline(now, Duration::MAX),
                    decoded: None,
                })
            });
        Ok(Some(next))
    }

    async fn rate_limit(&self, key: &str, quota: Quota) -> Result<Verdict, StoreError> {
        // The clock of a process-wide origin: a memory store is one process's, and `Instant`
        // never goes backwards.
        static ORIGIN: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
        let now = Instant::now();
        let now_us = u64::try_from(now.saturating_duration_since(*ORIGIN).as_micros())
            .unwrap_or(u64::MAX / 2);
        let mut verdict = None;
        // A compute: moka runs the computes of one key one at a time, so concurrent callers
        // each see the TAT the previous one stored.
        self.inner.entry_by_ref(key).and_compute_with(|current| {
            let tat = current
                .map(|e| e.into_value())
                .filter(|s| s.expires_at > now)
                .and_then(|s| <[u8; 8]>::try_from(&s.value[..]).ok())
                .map(u64::from_be_bytes);
            let (v, next) = gcra::decide(quota, tat, now_us);
            verdict = Some(v);
            match next {
                Some(tat) => Op::Put(Slot {
                    value: Bytes::copy_from_slice(&tat.to_be_bytes()),
                    expires_at: Self::deadline(now, Duration::from_micros(tat - now_us)),
                    decoded: None,
                }),
                None => Op::Nop,
            }
        });
        Ok(verdict.unwrap_or(Verdict {
            allowed: false,
            remaining: 0,
            retry_after_us: quota.interval_us,
            reset_us: quota.tolerance_us,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_entries_are_never_read() {
        let store = MemoryStore::new(1 << 20);
        let ttl = Duration::from_millis(20);
        store.set("k", Bytes::from_static(b"v"), ttl).await.unwrap();
        store
            .set_many(vec![("t".to_owned(), Bytes::from_static(b"1"), ttl)])
            .await
            .unwrap();
        assert!(store.get("k").await.unwrap().is_some());
        // Past the deadline, with no maintenance pass in between (nothing else touches the
        // store), every read path sees the entries gone.
        tokio::time::sleep(ttl * 3).await;
        assert_eq!(store.get("k").await.unwrap(), None);
        assert_eq!(store.ttl("k").await.unwrap(), None);
        let (entry, versions) = store.read_tagged("k", &["t".to_owned()]).await.unwrap();
        assert_eq!((entry, versions), (None, vec![None]));
        assert_eq!(store.get_many(&["t".to_owned()]).await.unwrap(), vec![None]);
    }

    /// Regression: a pattern deleted the tombstone of a key invalidation, and a load in flight
    /// that had found the key empty before that invalidation wrote its older value.
    #[tokio::test]
    async fn patterns_keep_tombstones() {
        let store = MemoryStore::new(1 << 20);
        let ttl = Duration::from_secs(60);
        store
            .write_tombstones(&["k:1".to_owned()], ttl)
            .await
            .unwrap();
        store
            .set("k:2", Bytes::from_static(&[7; 40]), ttl)
            .await
            .unwrap();
        assert_eq!(store.delete_matching("k:*", &[]).await.unwrap().removed, 1);
        let kept = store
            .get("k:1")
            .await
            .unwrap()
            .expect("the tombstone stays");
        assert!(entry::is_tombstone(&kept));
        assert_eq!(store.get("k:2").await.unwrap(), None);
    }
}
