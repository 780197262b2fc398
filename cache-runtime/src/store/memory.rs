//! The embedded default: a bounded in-process store on `quick_cache`, weighed by bytes.

mod inspect;

use std::any::Any;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::gcra::{self, Quota, Verdict};
use super::glob::glob_match;
use super::{Deleted, Store, WriteIf, kept, same_fingerprint};
use crate::clock::{millis, now_ms, now_ms_for};
use crate::entry;
use crate::error::StoreError;

/// An in-process store bounded by the total size of its keys and values.
///
/// Entries expire at their own TTL: a read never sees an expired entry, and the first miss or
/// write a second after the last sweep removes the expired ones.
/// When the byte budget is full, `quick_cache`'s S3-FIFO policy evicts the entries least
/// likely to be used again.
///
/// ```
/// let store = cache_runtime::MemoryStore::new(64 * 1024 * 1024);
/// let cache = cache_runtime::Cache::builder().memory_store(store).build().unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Slots,
    /// The writes of one key run one at a time, under its stripe's lock: each reads the slot,
    /// decides and writes before the next one reads (what a Redis script does).
    stripes: Box<[Mutex<()>]>,
    hasher: RandomState,
    /// When (unix ms) the next sweep of expired entries is due.
    next_sweep_ms: AtomicU64,
    sweep_every_ms: u64,
    max_bytes: u64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.inner.slots.len())
            .field("weighted_bytes", &self.inner.slots.weight())
            .finish()
    }
}

#[derive(Clone)]
struct Slot {
    value: Bytes,
    /// Unix ms; the slot is gone from this instant on.
    expires_ms: u64,
    /// The value decoded, for values that can be cloned: set by the first hit that decodes
    /// it, so later hits clone instead of decoding. A write puts a new slot, and with it an
    /// empty one. `None` for what is not an entry (tombstones, tag versions, leases,
    /// counters): those but tag versions are never evicted (see [`Pin`]).
    decoded: Option<Decoded>,
}

/// Keeps out of eviction the slots that guarantees rest on: a tombstone that a load in flight
/// must lose to, a lease, a fencing counter that must only grow, a rate limit's state. Their
/// own deadlines bound them; the byte budget evicts entries and tag versions. A tombstone
/// evicted to make room would let a load begun before its invalidation write its value after
/// the invalidation returned; an evicted tag version only makes its entries misses (a tag gets
/// a new version before any entry records it), and a store with a tag per id would otherwise
/// keep every version past its budget.
#[derive(Clone, Default)]
struct Pin;

impl quick_cache::Lifecycle<String, Slot> for Pin {
    type RequestState = ();

    fn is_pinned(&self, key: &String, slot: &Slot) -> bool {
        slot.decoded.is_none() && !key.contains(super::TAG_KEY_INFIX)
    }

    fn on_evict(&self, _state: &mut (), _key: String, _slot: Slot) {}
}

impl Slot {
    /// Whether the slot is still live: on the coarse clock where that cannot change the
    /// verdict, as freshness is judged.
    fn live(&self) -> bool {
        now_ms_for(self.expires_ms) < self.expires_ms
    }

    fn live_at(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms
    }

    fn remaining(&self, now_ms: u64) -> Duration {
        Duration::from_millis(self.expires_ms.saturating_sub(now_ms))
    }
}

/// A decoded value shared by the hits of one stored entry.
pub(crate) type Decoded = Arc<OnceLock<Kept>>;

/// What the first hit that decoded an entry keeps beside its bytes.
pub(crate) struct Kept {
    pub value: Arc<dyn Any + Send + Sync>,
    /// The entry's times and shape, and whether it carries tags, from its header: a later hit
    /// of an untagged entry checks these instead of parsing the header again (the bytes of a
    /// slot never change; a write puts a new slot).
    pub times: crate::entry::EntryTimes,
    pub shape: Option<u64>,
    pub tagged: bool,
}

#[derive(Clone)]
struct Weigh;

impl quick_cache::Weighter<String, Slot> for Weigh {
    fn weight(&self, key: &String, slot: &Slot) -> u64 {
        (key.len() + slot.value.len() + ENTRY_OVERHEAD) as u64
    }
}

/// What the map's bookkeeping costs per entry beyond key and value, roughly.
const ENTRY_OVERHEAD: usize = 96;

/// Stripes of write locks: enough that writes of different keys rarely wait on each other.
const STRIPES: usize = 256;

/// How often expired entries are swept out (a read or write past it sweeps).
const SWEEP_EVERY_MS: u64 = 1000;

/// The map of a store of `max_bytes`. quick_cache splits its budget between shards and admits
/// no entry over about a shard's budget, so a store has at most one shard per 8 MiB: a small
/// store is one shard, and any store takes an entry of eight times the default largest entry
/// (1 MiB). quick_cache rounds the number of shards up to a power of two; it is rounded down
/// here first, so that no shard holds less than 8 MiB (24 MiB is two shards, not four).
fn slots(max_bytes: u64) -> Slots {
    const PER_SHARD: u64 = 8 * 1024 * 1024;
    let weight = max_bytes.max(1);
    let parallel = std::thread::available_parallelism().map_or(4, |n| n.get() * 4);
    let shards = usize::try_from(weight / PER_SHARD)
        .unwrap_or(usize::MAX)
        .clamp(1, parallel);
    let shards = 1 << shards.ilog2();
    // quick_cache sizes its tables from an estimate of the entries; a few hundred bytes each is
    // typical of cached rows.
    let estimated = (weight / 512).clamp(16, 1 << 22) as usize;
    let options = quick_cache::OptionsBuilder::new()
        .shards(shards)
        .estimated_items_capacity(estimated)
        .weight_capacity(weight)
        .build();
    match options {
        Ok(options) => Slots::with_options(options, Weigh, Default::default(), Pin),
        // Both required settings are set above; kept as a fallback rather than a panic.
        Err(_) => Slots::with(estimated, weight, Weigh, Default::default(), Pin),
    }
}

type Slots = quick_cache::sync::Cache<String, Slot, Weigh, quick_cache::DefaultHashBuilder, Pin>;

/// What a write of one key does with the slot it found.
enum Op {
    Keep,
    Put(Slot),
    Remove,
}

impl MemoryStore {
    /// A store holding at most `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        Self::sweeping_every(max_bytes, SWEEP_EVERY_MS)
    }

    fn sweeping_every(max_bytes: u64, sweep_every_ms: u64) -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                slots: slots(max_bytes),
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                hasher: RandomState::new(),
                next_sweep_ms: AtomicU64::new(now_ms().saturating_add(sweep_every_ms)),
                sweep_every_ms,
                max_bytes,
            }),
        }
    }

    /// `now + ttl` in unix ms, saturating.
    fn deadline(now_ms: u64, ttl: Duration) -> u64 {
        // Rounded up: a TTL under a millisecond still lives until the next one.
        let ms = millis(ttl).saturating_add(u64::from(ttl.subsec_nanos() % 1_000_000 != 0));
        now_ms.saturating_add(ms)
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
        let slot = self.inner.slots.get(key).filter(Slot::live);
        if slot.is_none() {
            // A miss may be an expired entry: the moment to see whether a sweep is due.
            self.sweep_if_due(now_ms());
        }
        slot
    }

    /// Removes expired entries, at most once per sweep interval ([`SWEEP_EVERY_MS`]): reads
    /// never see them, but their bytes (sealed health data among them) should not outlive
    /// their TTL by long. One pass over the map: about a millisecond per 100 000 entries, paid
    /// by one miss or write a second.
    fn sweep_if_due(&self, now_ms: u64) {
        let due = self.inner.next_sweep_ms.load(Ordering::Relaxed);
        if now_ms < due
            || self
                .inner
                .next_sweep_ms
                .compare_exchange(
                    due,
                    now_ms.saturating_add(self.inner.sweep_every_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        self.inner.slots.retain(|_, slot| slot.live_at(now_ms));
    }

    fn stripe(&self, key: &str) -> MutexGuard<'_, ()> {
        let i = self.inner.hasher.hash_one(key) as usize % STRIPES;
        // The lock guards no data of its own: a panic while it was held leaves nothing
        // half-written in it.
        self.inner.stripes[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// One write of `key`: `decide` sees the live slot (none when absent or expired) and says
    /// what to do with it, with every other write of the key held off until it is done.
    fn write<T>(&self, key: &str, decide: impl FnOnce(Option<&Slot>, u64) -> (Op, T)) -> T {
        let held = self.stripe(key);
        let now = now_ms();
        let current = self.inner.slots.get(key).filter(|s| s.live_at(now));
        let (op, out) = decide(current.as_ref(), now);
        match op {
            Op::Keep => {}
            Op::Put(slot) => self.inner.slots.insert(key.to_owned(), slot),
            Op::Remove => {
                self.inner.slots.remove(key);
            }
        }
        drop(held);
        self.sweep_if_due(now);
        out
    }

    /// Stores `value` under `key` for `ttl`, whatever was there.
    fn put(&self, key: &str, value: Bytes, ttl: Duration, decoded: Option<Decoded>) {
        self.write(key, |_, now| {
            let slot = Slot {
                value,
                expires_ms: Self::deadline(now, ttl),
                decoded,
            };
            (Op::Put(slot), ())
        });
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.read(key))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), StoreError> {
        self.put(key, value, ttl, Some(Decoded::default()));
        Ok(())
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let now = now_ms();
        Ok(self
            .live(key)
            .filter(|s| s.live_at(now))
            .map(|s| s.remaining(now)))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, StoreError> {
        Ok(keys.iter().map(|k| self.live(k).map(|s| s.value)).collect())
    }

    async fn set_many(&self, items: Vec<(String, Bytes, Duration)>) -> Result<(), StoreError> {
        for (key, value, ttl) in items {
            self.put(&key, value, ttl, Some(Decoded::default()));
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
        let written = self.write(key, |current, now| {
            let unchanged = match (current, observed) {
                // A key found empty is written only under a lease still held (see the Redis
                // script): one deleted by a pattern invalidation may mean an older load.
                (None, None) => {
                    !lease_held
                        || release.is_none_or(|(lease_key, token)| {
                            self.inner
                                .slots
                                .get(lease_key)
                                .is_some_and(|l| l.live_at(now) && l.value[..] == token[..])
                        })
                }
                (Some(cur), Some(seen)) => same_fingerprint(&cur.value, seen),
                _ => false,
            };
            // A write-through replaces another value, but neither a tombstone written since nor
            // a key emptied since (see the Redis script).
            let replaceable = current.is_some_and(|c| !entry::is_tombstone(&c.value));
            if unchanged || (replace_values && replaceable) {
                let slot = Slot {
                    value,
                    expires_ms: Self::deadline(now, ttl),
                    decoded: Some(Decoded::default()),
                };
                (Op::Put(slot), true)
            } else {
                (Op::Keep, false)
            }
        });
        if let Some((lease_key, token)) = release {
            self.delete_if_equals(lease_key, token).await?;
        }
        Ok(written)
    }

    async fn write_tombstones(&self, keys: &[String], ttl: Duration) -> Result<u64, StoreError> {
        let mut held = 0;
        for key in keys {
            // Under the key's write lock, as the conditional write is: a write that compared
            // the old entry cannot land after this tombstone.
            let was_value = self.write(key, |current, now| {
                let tombstone = Slot {
                    value: Bytes::from(entry::tombstone()),
                    expires_ms: Self::deadline(now, ttl),
                    decoded: None,
                };
                let was_value = current.is_some_and(|old| !entry::is_tombstone(&old.value));
                (Op::Put(tombstone), was_value)
            });
            held += u64::from(was_value);
        }
        Ok(held)
    }

    async fn bump_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        for key in tag_keys {
            // Under the key's write lock, as `extend_versions` is: a lengthening that read the
            // old version cannot put it back over the new one.
            let version = Bytes::copy_from_slice(&crate::random::token8());
            self.put(key, version, ttl, None);
        }
        Ok(())
    }

    async fn extend_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        for key in tag_keys {
            self.write(key, |current, now| {
                let expires_ms = Self::deadline(now, ttl);
                match current {
                    Some(slot) if slot.expires_ms < expires_ms => {
                        let longer = Slot {
                            expires_ms,
                            ..slot.clone()
                        };
                        (Op::Put(longer), ())
                    }
                    _ => (Op::Keep, ()),
                }
            });
        }
        Ok(())
    }

    async fn delete_matching(&self, pattern: &str, keep: &[String]) -> Result<Deleted, StoreError> {
        let mut done = Deleted::default();
        for (key, slot) in self.inner.slots.iter() {
            if !glob_match(pattern.as_bytes(), key.as_bytes()) || kept(key.as_bytes(), keep) {
                continue;
            }
            if slot.live() {
                done.scanned += 1;
            }
            // Under the key's write lock: it waits for a conditional write of the key in
            // progress (which may have seen the lease this deletion follows). A tombstone
            // stays: it is a key invalidation's, which loads in flight are checked against
            // (see the Redis store).
            let removed = self.write(&key, |current, _| match current {
                Some(c) if entry::is_tombstone(&c.value) => (Op::Keep, false),
                Some(_) => (Op::Remove, true),
                None => (Op::Remove, false),
            });
            done.removed += u64::from(removed);
        }
        Ok(done)
    }

    async fn set_nx(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        Ok(self.write(key, |current, now| match current {
            Some(_) => (Op::Keep, false),
            None => {
                let lease = Slot {
                    value: Bytes::copy_from_slice(token),
                    expires_ms: Self::deadline(now, ttl),
                    decoded: None,
                };
                (Op::Put(lease), true)
            }
        }))
    }

    async fn delete_if_equals(&self, key: &str, token: &[u8]) -> Result<bool, StoreError> {
        Ok(self.write(key, |current, _| match current {
            Some(s) if s.value.as_ref() == token => (Op::Remove, true),
            _ => (Op::Keep, false),
        }))
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
        let next = self.write(fence_key, |current, now| {
            let last = current
                .and_then(|s| std::str::from_utf8(&s.value).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            let next = last + 1;
            let fence = Slot {
                value: Bytes::from(next.to_string()),
                expires_ms: Self::deadline(now, Duration::MAX),
                decoded: None,
            };
            (Op::Put(fence), next)
        });
        Ok(Some(next))
    }

    async fn rate_limit(&self, key: &str, quota: Quota) -> Result<Verdict, StoreError> {
        // The clock of a process-wide origin: a memory store is one process's, and `Instant`
        // never goes backwards.
        static ORIGIN: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
        let now_us = u64::try_from(
            Instant::now()
                .saturating_duration_since(*ORIGIN)
                .as_micros(),
        )
        .unwrap_or(u64::MAX / 2);
        // Under the key's write lock: concurrent callers each see the TAT the previous one
        // stored.
        Ok(self.write(key, |current, now| {
            let tat = current
                .and_then(|s| <[u8; 8]>::try_from(&s.value[..]).ok())
                .map(u64::from_be_bytes);
            let (verdict, next) = gcra::decide(quota, tat, now_us);
            let op = match next {
                Some(tat) => Op::Put(Slot {
                    value: Bytes::copy_from_slice(&tat.to_be_bytes()),
                    expires_ms: Self::deadline(now, Duration::from_micros(tat - now_us)),
                    decoded: None,
                }),
                None => Op::Keep,
            };
            (op, verdict)
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

    /// What guarantees rest on stays while entries fill the byte budget many times over: a
    /// tombstone (a load begun before its invalidation must not write after it returned) and
    /// a fencing counter (each holder's token is larger than every earlier one's). A tag
    /// version goes like an entry: evicted, it only makes its entries misses.
    #[tokio::test]
    async fn tombstones_and_fences_outlive_a_full_store() {
        let store = MemoryStore::new(64 * 1024);
        let ttl = Duration::from_secs(60);
        // Fillers lighter than the slots under test: once the store is full, the room left in
        // its protected (hot) part is less than those slots weigh, so they enter the part that
        // is evicted first.
        let fill = |from: usize| {
            let store = store.clone();
            async move {
                for i in from..from + 4_000 {
                    let filler = Bytes::from_static(&[0; 16]);
                    store.set(&format!("f:{i}"), filler, ttl).await.unwrap();
                }
            }
        };
        let (gone, lock, fence) = (
            "a-key-invalidated-while-a-load-of-it-was-in-flight",
            "a-lock-whose-holders-are-fenced",
            "the-fencing-counter-of-that-lock",
        );
        let version = format!(
            "p:{}a-tag-whose-version-may-go-like-an-entry",
            super::super::TAG_KEY_INFIX
        );
        fill(0).await;
        store
            .write_tombstones(&[gone.to_owned()], ttl)
            .await
            .unwrap();
        store
            .bump_versions(std::slice::from_ref(&version), ttl)
            .await
            .unwrap();
        let fenced = || store.lock_fenced(lock, fence, b"me", ttl);
        assert_eq!(fenced().await.unwrap(), Some(1));
        assert!(store.delete_if_equals(lock, b"me").await.unwrap());
        fill(4_000).await;
        let mut left = 0;
        for i in 0..8_000 {
            left += usize::from(store.get(&format!("f:{i}")).await.unwrap().is_some());
        }
        assert!(
            left < 800,
            "the budget evicted entries: {left} of 8000 left"
        );
        let kept = store.get(gone).await.unwrap().expect("the tombstone stays");
        assert!(entry::is_tombstone(&kept));
        assert_eq!(fenced().await.unwrap(), Some(2), "the fence kept counting");
        assert_eq!(
            store.get(&version).await.unwrap(),
            None,
            "a tag version is evicted like an entry (its entries become misses)"
        );
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

    /// Expired entries leave the store (their bytes with them) though nothing reads or writes
    /// them again: any later miss past the sweep interval sweeps them.
    #[tokio::test]
    async fn expired_entries_are_swept_out() {
        let store = MemoryStore::sweeping_every(1 << 20, 1);
        let ttl = Duration::from_millis(5);
        for i in 0..10 {
            store
                .set(&format!("k:{i}"), Bytes::from_static(&[7; 100]), ttl)
                .await
                .unwrap();
        }
        store
            .set("stays", Bytes::from_static(b"v"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.inner.slots.len(), 11);
        // Past the TTL and the sweep interval (no event marks an expiry).
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.get("another").await.unwrap(), None);
        assert_eq!(store.inner.slots.len(), 1, "only the live entry is left");
        let left = store.inner.slots.weight();
        assert_eq!(left, ("stays".len() + 1 + ENTRY_OVERHEAD) as u64);
        assert_eq!(store.memory().used_bytes, left);
    }

    /// A small store takes an entry of a large part of its budget: quick_cache admits nothing
    /// over about a shard's share, so small stores are one shard.
    #[tokio::test]
    async fn a_small_store_takes_a_large_entry() {
        let store = MemoryStore::new(2 * 1024 * 1024);
        let large = Bytes::from(vec![7u8; 1024 * 1024]);
        store
            .set("large", large.clone(), Duration::from_secs(60))
            .await
            .unwrap();
        let stored = store.get("large").await.unwrap();
        assert_eq!(
            stored.as_ref().map(Bytes::len),
            Some(large.len()),
            "stored whole"
        );
        assert!(stored == Some(large));
    }

    /// A store of 24 MiB takes an entry of 6 MiB: quick_cache would round three shards of
    /// 8 MiB up to four of 6 MiB, too small for it.
    #[tokio::test]
    async fn no_shard_is_smaller_than_eight_mebibytes() {
        let store = MemoryStore::new(24 * 1024 * 1024);
        let large = Bytes::from(vec![7u8; 6 * 1024 * 1024]);
        let ttl = Duration::from_secs(60);
        store.set("large", large.clone(), ttl).await.unwrap();
        assert!(
            store.get("large").await.unwrap() == Some(large),
            "stored whole"
        );
    }

    /// The writes of one key are read-modify-writes that never interleave: concurrent
    /// increments through them lose none.
    #[test]
    fn writes_of_one_key_run_one_at_a_time() {
        let store = MemoryStore::new(1 << 20);
        let ttl = Duration::from_secs(60);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2000 {
                        store.write("n", |current, now| {
                            let n = current
                                .and_then(|c| <[u8; 8]>::try_from(&c.value[..]).ok())
                                .map_or(0, u64::from_be_bytes);
                            let slot = Slot {
                                value: Bytes::copy_from_slice(&(n + 1).to_be_bytes()),
                                expires_ms: MemoryStore::deadline(now, ttl),
                                decoded: None,
                            };
                            (Op::Put(slot), ())
                        });
                    }
                });
            }
        });
        let n = store.read("n").expect("the counter");
        assert_eq!(
            <[u8; 8]>::try_from(&n[..]).map(u64::from_be_bytes).ok(),
            Some(8000)
        );
    }
}
