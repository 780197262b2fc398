//! Batch loads: many ids, one read of all their keys, one call of the loader with the ids that
//! were missing.
//!
//! ```text
//! read every key and every tag version (one MGET; split by slot on a cluster)
//!   ─ fresh ─────────────────────────────────────────────────────────────► served
//!   ─ absent / stale / expired / invalidated / undecodable:
//!        a load of the key runs in this process? wait for it, read again ─► (round again)
//!        otherwise lead the key's flight, take its lease
//! one call of the loader with the led ids ─ write each value (conditional, lease released)
//!                                         ─ hand each entry to the callers waiting on its key
//! ```
//!
//! A batch never waits while it leads a flight: it first waits for every load of its keys
//! that runs already, then leads all the keys still missing at once. A key that another
//! caller began to load between the two steps gives the batch's flights back and the batch
//! goes round. So loads of a key in a process still run one at a time, and a batch and a
//! single call on the same key load it once.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::call::{Call, Condition, LoadTimes, Read};
use super::options::Policy;
use super::{Cache, LoadOptions};
use crate::error::StoreError;
use crate::flight::{self, Published, Role};
use crate::registry::FnSpec;
use crate::store::Store as _;

/// The key of one item of a batch, with tags of its own.
///
/// `key_of` in [`Cache::get_or_load_many`] returns one per id; a `String` or `&str` converts
/// into a key without tags of its own (the options' tags still apply to every item).
///
/// ```
/// use cache_runtime::BatchKey;
///
/// let id = 7u64;
/// let key = BatchKey::new(format!("user:{id}")).tag(format!("user:{id}"));
/// assert_eq!(key.key(), "user:7");
/// assert_eq!(key.tags(), ["user:7"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchKey {
    key: String,
    tags: Vec<String>,
}

impl BatchKey {
    /// The item's key (without the cache's prefix, which is added).
    pub fn new(key: impl Into<String>) -> Self {
        BatchKey {
            key: key.into(),
            tags: Vec::new(),
        }
    }

    /// Adds a tag to this item only: `invalidate_tag` of it invalidates this item and leaves
    /// the others of the batch cached.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// The key, as given.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The item's own tags.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }
}

impl From<String> for BatchKey {
    fn from(key: String) -> Self {
        BatchKey::new(key)
    }
}

impl From<&str> for BatchKey {
    fn from(key: &str) -> Self {
        BatchKey::new(key)
    }
}

/// One distinct item of a batch: its id, full key and every tag it carries.
pub(crate) struct Item<I> {
    pub id: I,
    pub key: String,
    pub tags: Vec<String>,
}

/// The distinct items of a batch, and which item each of the caller's positions asked for.
pub(crate) struct Items<I> {
    pub items: Vec<Item<I>>,
    pub positions: Vec<usize>,
}

impl<I> Items<I> {
    /// The same call with ids that share a key as one item (the first of them): the key says
    /// they are one value, as it does for single calls of that key. Two items of one key would
    /// each find the other leading its flight, and send the batch round for ever.
    fn one_per_key(self) -> Items<I> {
        let Items { items, positions } = self;
        let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        // Each item's index among the items kept: the first item of its key's.
        let remap: Vec<usize> = items
            .iter()
            .map(|item| {
                let next = first_of.len();
                *first_of.entry(item.key.as_str()).or_insert(next)
            })
            .collect();
        if first_of.len() == items.len() {
            return Items { items, positions };
        }
        let positions = positions.into_iter().map(|p| remap[p]).collect();
        // The first item of each key is the next one kept.
        let mut kept = 0;
        let items = items
            .into_iter()
            .zip(&remap)
            .filter(|&(_, &at)| {
                let first = at == kept;
                kept += usize::from(first);
                first
            })
            .map(|(item, _)| item)
            .collect();
        Items { items, positions }
    }
}

impl<I: Hash + Eq + Clone> Items<I> {
    /// The items of `ids`, keyed by `key_of` (full keys: the caller adds the prefix), each
    /// tagged with `common` and its own tags. Repeated ids are loaded once.
    pub fn new(ids: &[I], common: &[String], mut key_of: impl FnMut(&I) -> BatchKey) -> Self {
        let mut seen: HashMap<&I, usize> = HashMap::with_capacity(ids.len());
        let mut items = Vec::with_capacity(ids.len());
        let mut positions = Vec::with_capacity(ids.len());
        for id in ids {
            let index = *seen.entry(id).or_insert_with(|| {
                let BatchKey { key, tags: own } = key_of(id);
                let mut tags = common.to_vec();
                tags.extend(own);
                items.push(Item {
                    id: id.clone(),
                    key,
                    tags,
                });
                items.len() - 1
            });
            positions.push(index);
        }
        Items { items, positions }
    }
}

impl Cache {
    /// Returns the cached values of `ids`, in the caller's order, loading the missing ones with
    /// one call of `load_missing`.
    ///
    /// The service-level form of `#[cached(batch = ..)]`. `key_of` gives each id its key (the
    /// cache's prefix is added) and, through [`BatchKey::tag`], tags of its own; the tags of
    /// `options` apply to every item. Then:
    ///
    /// - every key and every tag version is read in one round trip (`MGET`; on a cluster one
    ///   per slot, sent together);
    /// - a key whose load runs in this process now (a single call, another batch) is waited
    ///   for and read again, not loaded twice;
    /// - `load_missing` is called once, with the ids that have no fresh value, each once (in
    ///   the order they first appear in `ids`), and returns the values it found by id;
    /// - each value is written under its key, with its own TTL and tags, by a conditional write
    ///   that an invalidation made after the read wins over;
    /// - an id `load_missing` leaves out of its map is `None` in the result and not cached
    ///   (to cache absence, make the value an `Option` and put `None` in the map);
    /// - ids that `key_of` gives one key are one item, as single calls of that key would be:
    ///   `load_missing` is asked for the first of them, and each gets its value.
    ///
    /// Errors of `load_missing` are returned untouched and nothing is cached. When the store
    /// fails, `load_missing` runs for every id and its values are returned uncached. A stale
    /// value is loaded again with the missing ones (the caller waits for that load anyway);
    /// stale-while-revalidate, fail-safe, timeouts and L1 copies are left to single calls.
    /// `T: Clone` serves an id that appears more than once in `ids`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use cache_runtime::{BatchKey, Cache, LoadOptions};
    ///
    /// let cache = Cache::builder().build().unwrap();
    /// let opts = LoadOptions::ttl(Duration::from_secs(300)).tag("users");
    /// let key_of = |id: &u64| BatchKey::new(format!("user:{id}")).tag(format!("user:{id}"));
    /// let names: Result<Vec<Option<String>>, std::io::Error> = cache
    ///     .get_or_load_many(&[3, 1, 2], &opts, key_of, |missing| async move {
    ///         // One query for every missing id; id 2 does not exist.
    ///         Ok(missing.into_iter().filter(|&id| id != 2).map(|id| (id, format!("user {id}"))).collect())
    ///     })
    ///     .await;
    /// assert_eq!(names.unwrap(), [Some("user 3".to_owned()), Some("user 1".to_owned()), None]);
    ///
    /// // Ids 1 and 3 are cached now: the loader sees only id 2.
    /// let again: Result<Vec<Option<String>>, std::io::Error> = cache
    ///     .get_or_load_many(&[1, 2, 3], &opts, key_of, |missing| async move {
    ///         assert_eq!(missing, [2]);
    ///         Ok(HashMap::new())
    ///     })
    ///     .await;
    /// assert_eq!(again.unwrap(), [Some("user 1".to_owned()), None, Some("user 3".to_owned())]);
    /// # }
    /// ```
    pub async fn get_or_load_many<I, T, E, K, F, Fut>(
        &self,
        ids: &[I],
        options: &LoadOptions,
        mut key_of: impl FnMut(&I) -> K,
        load_missing: F,
    ) -> Result<Vec<Option<T>>, E>
    where
        I: Hash + Eq + Clone,
        T: Serialize + DeserializeOwned + Clone,
        K: Into<BatchKey>,
        F: FnOnce(Vec<I>) -> Fut,
        Fut: Future<Output = Result<HashMap<I, T>, E>>,
    {
        let policy = Policy::of_options(options, self.inner.default_ttl);
        let items = Items::new(ids, &options.tags, |id| {
            let BatchKey { key, tags } = key_of(id).into();
            BatchKey {
                key: self.full_key(&key),
                tags,
            }
        });
        self.load_many(None, &policy, items, load_missing).await
    }

    /// Runs one batch of the `#[cached]` function `spec`: `items` are distinct ids with their
    /// full keys and tags, and the values come back in their order.
    pub(crate) async fn call_batch<I, T, E, F, Fut>(
        &self,
        spec: &'static FnSpec,
        items: Vec<(I, String, Vec<String>)>,
        load_missing: F,
    ) -> Result<Vec<Option<T>>, E>
    where
        I: Hash + Eq + Clone,
        T: Serialize + DeserializeOwned + Clone,
        F: FnOnce(Vec<I>) -> Fut,
        Fut: Future<Output = Result<HashMap<I, T>, E>>,
    {
        let policy = Policy {
            shape: self.shape_of::<T>(spec),
            ..Policy::of_spec(spec, self.inner.default_ttl)
        };
        let positions = (0..items.len()).collect();
        let items = items
            .into_iter()
            .map(|(id, key, tags)| Item { id, key, tags })
            .collect();
        let items = Items { items, positions };
        self.load_many(Some(spec), &policy, items, load_missing)
            .await
    }

    /// Runs one batch over `items` (full keys) under `policy`, for `spec` when a `#[cached]`
    /// function asked.
    pub(crate) async fn load_many<I, T, E, F, Fut>(
        &self,
        spec: Option<&'static FnSpec>,
        policy: &Policy,
        items: Items<I>,
        load_missing: F,
    ) -> Result<Vec<Option<T>>, E>
    where
        I: Hash + Eq + Clone,
        T: Serialize + DeserializeOwned + Clone,
        F: FnOnce(Vec<I>) -> Fut,
        Fut: Future<Output = Result<HashMap<I, T>, E>>,
    {
        let Items { items, positions } = items.one_per_key();
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut values: Vec<Option<T>> = items.iter().map(|_| None).collect();
        if self.inner.disabled || policy.ttl.is_zero() {
            let all = (0..items.len()).collect::<Vec<_>>();
            uncached(&items, &all, &mut values, load_missing).await?;
            return Ok(in_order(values, &positions));
        }

        // The ticket of the first read: what any later read finds is at least as new as
        // anything this call is owed.
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut first = true;
        let led = loop {
            let order = self.inner.flights.ticket();
            let reads = match self.flush_pending().await {
                Ok(()) => self.read_items(&items, &pending, order).await,
                Err(e) => Err(e),
            };
            let reads = match reads {
                Ok(reads) => reads,
                Err(e) => {
                    // The store is away: every id still missing is loaded, uncached.
                    self.store_error(spec, "get", &e);
                    if first {
                        for _ in &pending {
                            self.count_lookup(spec, false, None);
                        }
                    }
                    self.count_load(spec);
                    let started = Instant::now();
                    uncached(&items, &pending, &mut values, load_missing).await?;
                    self.count_load_took(spec, started.elapsed());
                    return Ok(in_order(values, &positions));
                }
            };
            let mut misses = Vec::new();
            for (&index, read) in pending.iter().zip(reads) {
                let item = &items[index];
                let fresh = match (&read.observed, policy.force_refresh) {
                    (Some(bytes), false) => self.fresh_value::<T>(item, bytes, &read, policy),
                    _ => None,
                };
                if first {
                    self.count_lookup(spec, fresh.is_some(), None);
                    if let Some(function) = &policy.audit {
                        let op = if fresh.is_some() {
                            crate::phi::AuditOperation::Hit
                        } else {
                            crate::phi::AuditOperation::Miss
                        };
                        self.audit(function, op, "ok", &item.key, None);
                    }
                }
                match fresh {
                    Some(value) => values[index] = Some(value),
                    None => misses.push((index, read)),
                }
            }
            first = false;
            if misses.is_empty() {
                return Ok(in_order(values, &positions));
            }

            // Loads of these keys that run already are waited for, then the keys read again.
            let running: Vec<_> = misses
                .iter()
                .filter_map(|(index, _)| self.inner.flights.watch(&items[*index].key))
                .collect();
            if !running.is_empty() {
                for _ in &running {
                    self.count_waited(spec);
                }
                join_all(running.into_iter().map(flight::follow)).await;
                pending = misses.into_iter().map(|(index, _)| index).collect();
                continue;
            }

            // Lead every key still missing; one that another caller began to load meanwhile
            // sends the batch round again (its flights given back: it never waits holding one).
            let mut led = Vec::with_capacity(misses.len());
            let mut raced = Vec::new();
            for (index, read) in misses {
                match self.inner.flights.join(&items[index].key, false) {
                    Role::Leader(leader) => led.push((index, read, leader)),
                    Role::Follower(_) => raced.push(index),
                }
            }
            if !raced.is_empty() {
                pending = led.into_iter().map(|(index, ..)| index).collect();
                pending.extend(raced);
                continue;
            }
            break led;
        };

        // One load per key across processes: a key whose lease another process holds is
        // loaded here too (a batch does not wait on one item); its value is then written only
        // over an entry the read saw, never over an empty key (see DESIGN.md).
        let leases = join_all(
            led.iter()
                .map(|(index, ..)| self.try_lease(&items[*index].key)),
        )
        .await;
        // In the order the ids first appear in the call (a raced round reorders `led`).
        let mut asked: Vec<usize> = led.iter().map(|(index, ..)| *index).collect();
        asked.sort_unstable();
        let ids: Vec<I> = asked.iter().map(|&index| items[index].id.clone()).collect();
        let started_ms = self.now_ms();
        let started = Instant::now();
        let loaded = load_missing(ids).await;
        let took = started.elapsed();
        self.count_load(spec);
        self.count_load_took(spec, took);
        let mut found = match loaded {
            Ok(found) => found,
            Err(e) => {
                // Nothing is cached; the leaders give their flights back as they drop, so the
                // callers waiting on these keys load for themselves.
                join_all(
                    leases
                        .iter()
                        .map(|lease| self.release_unwritten(Condition::Unchanged(lease.as_ref()))),
                )
                .await;
                return Err(e);
            }
        };
        let times = LoadTimes { started_ms, took };
        let mut done = Vec::with_capacity(led.len());
        for ((index, read, leader), lease) in led.into_iter().zip(leases) {
            let value = found.remove(&items[index].id);
            done.push((index, read, leader, lease, value));
        }
        let written = join_all(done.iter().map(|(index, read, _, lease, value)| {
            let item = &items[*index];
            let call = Call {
                key: &item.key,
                tags: &item.tags,
                spec,
                policy,
                l1: None,
            };
            let cond = Condition::Unchanged(lease.as_ref());
            // A load that found its key empty writes only under a lease held in the store.
            let visible = read.observed.is_some() || lease.as_ref().is_some_and(|l| l.in_store);
            async move {
                match value.as_ref().filter(|_| visible) {
                    Some(value) => self.write(call, value, read, times.into(), cond).await,
                    None => {
                        self.release_unwritten(cond).await;
                        None
                    }
                }
            }
        }))
        .await;
        for ((index, read, leader, _, value), bytes) in done.into_iter().zip(written) {
            // The read goes with the entry: a caller that waited checks it against its own.
            leader.publish(match bytes {
                Some(bytes) => Published::Entry(bytes, read),
                None => Published::Retry,
            });
            values[index] = value;
        }
        Ok(in_order(values, &positions))
    }

    /// Reads the keys of `items[pending]` and their tags' versions in one round trip. A tag
    /// without a version yet is given one first, as a single call's lookup does.
    async fn read_items<I>(
        &self,
        items: &[Item<I>],
        pending: &[usize],
        order: u64,
    ) -> Result<Vec<Read>, StoreError> {
        let mut tag_index: HashMap<&str, usize> = HashMap::new();
        let mut keys: Vec<String> = pending.iter().map(|&i| items[i].key.clone()).collect();
        let entries = keys.len();
        for &i in pending {
            for tag in &items[i].tags {
                if !tag_index.contains_key(tag.as_str()) {
                    tag_index.insert(tag, keys.len() - entries);
                    keys.push(self.tag_key(tag));
                }
            }
        }
        let mut found = self.inner.store.get_many(&keys).await?;
        let mut versions = found.split_off(entries);
        if versions.iter().any(Option::is_none) {
            self.create_versions(&keys[entries..], &mut versions)
                .await?;
        }
        Ok(pending
            .iter()
            .zip(found)
            .map(|(&i, observed)| Read {
                observed,
                versions: items[i]
                    .tags
                    .iter()
                    .map(|t| tag_index.get(t.as_str()).and_then(|&v| versions[v].clone()))
                    .collect(),
                order,
                reached: true,
            })
            .collect())
    }

    /// The value in `bytes` if it is live and fresh; anything else (a tombstone, a tag
    /// invalidated, stale or expired, undecodable) is loaded again.
    fn fresh_value<T: DeserializeOwned>(
        &self,
        item: &Item<impl Sized>,
        bytes: &Bytes,
        read: &Read,
        policy: &Policy,
    ) -> Option<T> {
        match self.decode_live::<T, _>(
            &item.key,
            bytes,
            &item.tags,
            &read.versions,
            policy.phi,
            policy.shape,
            None,
        ) {
            Ok(Some((value, times))) if self.now_ms() < times.fresh_until_ms => Some(value),
            Ok(_) => None,
            Err(reason) => {
                let key = if policy.phi {
                    "<phi>"
                } else {
                    item.key.as_str()
                };
                tracing::warn!(
                    target: "cachette",
                    key,
                    %reason,
                    "cache entry failed to decode; treating it as a miss and overwriting it"
                );
                None
            }
        }
    }
}

/// Runs the loader for `items[which]` without the cache.
async fn uncached<I, T, E, F, Fut>(
    items: &[Item<I>],
    which: &[usize],
    values: &mut [Option<T>],
    load_missing: F,
) -> Result<(), E>
where
    I: Hash + Eq + Clone,
    F: FnOnce(Vec<I>) -> Fut,
    Fut: Future<Output = Result<HashMap<I, T>, E>>,
{
    let ids = which.iter().map(|&i| items[i].id.clone()).collect();
    let mut found = load_missing(ids).await?;
    for &i in which {
        values[i] = found.remove(&items[i].id);
    }
    Ok(())
}

/// The values in the caller's order: each distinct item moved out at its last position and
/// cloned at the ones before.
fn in_order<T: Clone>(mut values: Vec<Option<T>>, positions: &[usize]) -> Vec<Option<T>> {
    let mut left = vec![0usize; values.len()];
    for &p in positions {
        left[p] += 1;
    }
    positions
        .iter()
        .map(|&p| {
            left[p] -= 1;
            if left[p] == 0 {
                values[p].take()
            } else {
                values[p].clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_ids_are_one_item_and_come_back_at_each_position() {
        let items = Items::new(&[3u64, 1, 3, 2, 1], &["all".to_owned()], |id| {
            BatchKey::new(format!("k:{id}")).tag(format!("own:{id}"))
        });
        let ids: Vec<u64> = items.items.iter().map(|i| i.id).collect();
        assert_eq!(ids, [3, 1, 2]);
        assert_eq!(items.positions, [0, 1, 0, 2, 1]);
        assert_eq!(items.items[0].tags, ["all", "own:3"]);
        let out = in_order(vec![Some("c"), Some("a"), None], &items.positions);
        assert_eq!(out, [Some("c"), Some("a"), Some("c"), None, Some("a")]);
    }
}
