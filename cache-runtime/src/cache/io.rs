//! Reading and writing entries: lookups with their tags' versions, encoding, conditional writes.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::sync::Arc;

use super::load::Call;
use super::options::Policy;
use super::{Cache, builder, now_ms};
use crate::codec::Compress;
use crate::entry::{self, EncodeOptions, EntryTimes, TagStamp};
use crate::error::{CacheError, StoreError};
use crate::phi::AuditOperation;
use crate::registry::FnSpec;
use crate::stats::Sampled;
use crate::store::{AnyStore, Store as _};

/// The settings of one write.
pub(super) struct WriteParams<'a> {
    pub(super) ttl: Duration,
    pub(super) stale: Duration,
    pub(super) tags: &'a [TagStamp<'a>],
    pub(super) compress: Compress,
    pub(super) phi: bool,
}

/// An encoded entry and how long the store keeps it.
pub(super) struct Prepared {
    pub(super) bytes: Bytes,
    pub(super) retention: Duration,
    /// The function to audit the write under, for protected values.
    pub(super) audit: Option<Arc<str>>,
}

/// How an entry is written.
#[derive(Clone, Copy)]
pub(super) enum Write<'a> {
    /// Only if the key still holds what the lookup saw (`None`: nothing).
    IfUnchanged(Option<&'a [u8]>),
    /// Over any value (it is newer: `#[cache_put]`), but not over a tombstone written since
    /// the key read `observed`: an invalidation after the write-through began wins.
    Replace(Option<&'a [u8]>),
    /// As `IfUnchanged`, and the lease is released with the write (or, when nothing is
    /// written, on its own): the writer's lease never outlives its write.
    Leased(Option<&'a [u8]>, &'a Lease),
}

impl<'a> Write<'a> {
    /// `IfUnchanged`, or `Leased` when the caller holds the key's lease.
    pub(super) fn unchanged(observed: Option<&'a [u8]>, lease: Option<&'a Lease>) -> Self {
        match lease {
            Some(lease) => Write::Leased(observed, lease),
            None => Write::IfUnchanged(observed),
        }
    }
}

/// An entry that is neither a tombstone nor older than one of its tags (whose versions,
/// in order, are `versions`); `None` when it is dead, an error when it does not parse.
fn live_entry<'b, S: AsRef<str>>(
    bytes: &'b [u8],
    tags: &[S],
    versions: &[Option<Bytes>],
) -> Result<Option<entry::RawEntry<'b>>, String> {
    if entry::is_tombstone(bytes) {
        return Ok(None);
    }
    let raw = entry::parse(bytes)?;
    Ok(raw.tags_current(tags, versions).then_some(raw))
}

/// A lease this process holds on a key: its key in the store and its token.
pub(super) struct Lease {
    pub key: String,
    pub token: [u8; 16],
}

/// Where a found value stands.
pub(super) enum State<T> {
    /// Younger than `stale`: served as is.
    Fresh(T),
    /// Older than `stale`, younger than `ttl`: served, and refreshed in the background.
    Stale(T),
    /// Older than `ttl`, kept for fail-safe: served only when the loader fails.
    Expired(T),
    /// Nothing usable.
    Absent,
}

/// What a lookup found, and what a write after it must know.
pub(super) struct Looked<T> {
    pub(super) state: State<T>,
    /// A fresh value that XFetch says to refresh already.
    pub(super) early: bool,
    /// What the key held, for the conditional write.
    pub(super) observed: Option<Bytes>,
    /// The tags' versions before the load.
    pub(super) versions: Vec<Option<Bytes>>,
}

/// Where an entry stands, from its header alone.
pub(super) enum Age {
    /// Younger than `stale`; `early` when XFetch says to refresh it already.
    Fresh {
        early: bool,
    },
    Stale,
    Expired,
}

/// Where an entry with `times` stands now. A plainly fresh entry is told by the cheap coarse
/// clock; XFetch weighs how close the entry is to going stale, so it reads the precise one.
pub(super) fn age(times: &EntryTimes, early_beta: Option<f64>) -> Age {
    let now = match early_beta {
        Some(_) => now_ms(),
        None => crate::clock::now_ms_for(times.fresh_until_ms),
    };
    if now < times.fresh_until_ms {
        // XFetch (Vattani et al., VLDB 2015): refresh when
        // now - delta * beta * ln(rand) >= expiry, delta being the last load's time.
        let early = early_beta.is_some_and(|beta| {
            let delta_ms = f64::from(times.load_micros) / 1000.0;
            let ahead = -delta_ms * beta * crate::random::unit().ln();
            now as f64 + ahead >= times.fresh_until_ms as f64
        });
        Age::Fresh { early }
    } else if now < times.expires_ms {
        Age::Stale
    } else {
        Age::Expired
    }
}

impl Cache {
    /// The key holding `tag`'s version. `__cachette:` is reserved: templates cannot start with it.
    pub(crate) fn tag_key(&self, tag: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len() + 15 + tag.len());
        k.push_str(&self.inner.prefix);
        k.push_str("__cachette:tag:");
        k.push_str(tag);
        k
    }

    pub(super) fn max_inflated(&self) -> usize {
        // Inflating is bounded by the largest entry this cache would write, times a margin
        // for the compression ratio.
        self.inner.max_entry_bytes.saturating_mul(64)
    }

    /// Decodes `bytes` if it is a live entry: not a tombstone, carrying exactly `tags` at the
    /// versions in `versions`. `Ok(None)` is a clean miss; `Err` an entry that does not decode.
    pub(super) fn decode_live<T: DeserializeOwned, S: AsRef<str>>(
        &self,
        full_key: &str,
        bytes: &[u8],
        tags: &[S],
        versions: &[Option<Bytes>],
        protected: bool,
    ) -> Result<Option<(T, EntryTimes)>, String> {
        let Some(raw) = live_entry(bytes, tags, versions)? else {
            return Ok(None);
        };
        self.open_payload(full_key, &raw, protected)
            .map(|v| Some((v, raw.times)))
    }

    /// Decodes an entry's payload, opening it when sealed (the context binds it to
    /// `full_key`). Protected calls refuse unsealed payloads.
    pub(super) fn open_payload<T: DeserializeOwned>(
        &self,
        full_key: &str,
        raw: &entry::RawEntry<'_>,
        protected: bool,
    ) -> Result<T, String> {
        match &self.inner.phi.sealer {
            Some(sealer) => {
                let context = entry::seal_context(full_key);
                let seal = entry::Seal {
                    sealer: sealer.as_ref(),
                    context: &context,
                };
                raw.open_value(self.max_inflated(), Some(seal), protected)
            }
            None => raw.open_value(self.max_inflated(), None, protected),
        }
    }

    pub(super) fn encode<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        started_ms: u64,
        load_time: Duration,
        p: &WriteParams<'_>,
    ) -> Result<Bytes, CacheError> {
        let stale = p.stale.min(p.ttl);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let times = EntryTimes {
            created_ms: started_ms,
            fresh_until_ms: started_ms.saturating_add(ms(stale)),
            expires_ms: started_ms.saturating_add(ms(p.ttl)),
            load_micros: u32::try_from(load_time.as_micros()).unwrap_or(u32::MAX),
        };
        let compress_above = match p.compress {
            Compress::Default => self.inner.compression_threshold,
            Compress::Never => None,
            Compress::Enabled => Some(
                self.inner
                    .compression_threshold
                    .unwrap_or(builder::DEFAULT_COMPRESSION_THRESHOLD),
            ),
            Compress::Above(n) => Some(n),
        };
        let context;
        let seal = match (&self.inner.phi.sealer, p.phi) {
            (Some(sealer), true) => {
                context = entry::seal_context(key);
                Some(entry::Seal {
                    sealer: sealer.as_ref(),
                    context: &context,
                })
            }
            (None, true) => {
                return Err(CacheError::Encode {
                    key: "<phi>".to_owned(),
                    reason: "protected value and no sealer configured".to_owned(),
                });
            }
            (_, false) => None,
        };
        let opts = EncodeOptions {
            codec: self.inner.codec,
            compress_above,
            level: self.inner.compression_level,
            seal,
        };
        let shown = if p.phi { "<phi>" } else { key };
        let bytes =
            entry::encode(value, times, p.tags, &opts).map_err(|reason| CacheError::Encode {
                key: shown.to_owned(),
                reason,
            })?;
        if bytes.len() > self.inner.max_entry_bytes {
            return Err(CacheError::TooLarge {
                key: shown.to_owned(),
                size: bytes.len(),
                max: self.inner.max_entry_bytes,
            });
        }
        Ok(Bytes::from(bytes))
    }

    pub(super) fn record(&self, spec: Option<&FnSpec>, hit: bool, took: Option<Duration>) {
        let counters = std::iter::once(&self.inner.stats).chain(spec.map(|s| &s.stats));
        for c in counters {
            if hit { c.hit(took) } else { c.miss(took) }
        }
    }

    /// Reads `full_key` and the versions of `tag_keys` in one round trip. A tag without a
    /// version yet is given one first (`SET NX`), so that no entry ever records "no version":
    /// a version lost later (evicted) then makes entries misses, never current again.
    pub(super) async fn read_with_versions(
        &self,
        full_key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError> {
        let (bytes, mut versions) = self.inner.store.read_tagged(full_key, tag_keys).await?;
        let missing: Vec<String> = tag_keys
            .iter()
            .zip(&versions)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if !missing.is_empty() {
            for key in &missing {
                self.inner
                    .store
                    .set_nx(key, &crate::random::token8(), self.inner.tag_ttl)
                    .await?;
            }
            let fresh = self.inner.store.get_many(&missing).await?;
            let mut fresh = fresh.into_iter();
            for v in versions.iter_mut().filter(|v| v.is_none()) {
                *v = fresh.next().flatten();
            }
        }
        Ok((bytes, versions))
    }

    /// Reads `full_key` with the versions of `tags`, in one round trip, and says where the
    /// value stands. With `record`, counts the lookup in the statistics. An entry that fails to
    /// decode is logged and is absent.
    pub(super) async fn lookup<T: DeserializeOwned, S: AsRef<str>>(
        &self,
        full_key: &str,
        tags: &[S],
        spec: Option<&FnSpec>,
        policy: &Policy,
        record: bool,
    ) -> Result<Looked<T>, StoreError> {
        let early_beta = policy.early_beta;
        let started = Sampled::start();
        let tag_keys: Vec<String> = tags.iter().map(|t| self.tag_key(t.as_ref())).collect();
        let (bytes, versions) = match self.read_with_versions(full_key, &tag_keys).await {
            Ok(found) => found,
            Err(e) => {
                self.store_error(spec, "get", &e);
                if record {
                    self.record(spec, false, started.elapsed());
                }
                return Err(e);
            }
        };
        let decoded = match &bytes {
            None => None,
            Some(b) => self
                .decode_live::<T, S>(full_key, b, tags, &versions, policy.phi)
                .unwrap_or_else(|reason| {
                    let phi = spec.is_some_and(|s| s.phi);
                    tracing::warn!(
                        target: "cachette",
                        key = if phi { "<phi>" } else { full_key },
                        %reason,
                        "cache entry failed to decode; treating it as a miss and overwriting it"
                    );
                    None
                }),
        };
        let mut early = false;
        let state = match decoded {
            None => State::Absent,
            Some((v, t)) => match age(&t, early_beta) {
                Age::Fresh { early: e } => {
                    early = e;
                    State::Fresh(v)
                }
                Age::Stale => State::Stale(v),
                Age::Expired => State::Expired(v),
            },
        };
        if record {
            let hit = matches!(state, State::Fresh(_) | State::Stale(_));
            self.record(spec, hit, started.elapsed());
            if let Some(function) = &policy.audit {
                let op = if hit {
                    AuditOperation::Hit
                } else {
                    AuditOperation::Miss
                };
                self.inner.phi.audit(function, op, "ok", full_key, None);
            }
            if matches!(state, State::Stale(_)) {
                self.inner.stats.stale_hit();
                if let Some(s) = spec {
                    s.stats.stale_hit();
                }
            }
        }
        Ok(Looked {
            state,
            early,
            observed: bytes,
            versions,
        })
    }

    /// A fresh hit on the in-process store, answered without the asynchronous call path: the
    /// memory store has the entry at hand, so the whole lookup runs synchronously, with the
    /// same checks as [`lookup`](Self::lookup) (tombstone, tags' versions, sealing,
    /// freshness) and the same counting and audit. `None` whenever the full path has more to
    /// do (another store, nothing stored, a stale, expired or undecodable entry, early
    /// refresh configured, a tag without a version yet, invalidations waiting to be applied, a
    /// forced refresh); nothing is counted then, so the full path's lookup is the one counted.
    pub(super) fn fresh_in_memory<T: DeserializeOwned, S: AsRef<str>>(
        &self,
        call: &Call<'_, S>,
    ) -> Option<T> {
        let AnyStore::Memory(store) = &self.inner.store else {
            return None;
        };
        let policy = &call.policy;
        // XFetch draws once per lookup: a draw here and another on the full path would
        // square the chance of an early refresh, so those functions take the full path.
        if self.inner.disabled
            || policy.ttl.is_zero()
            || policy.force_refresh
            || policy.early_beta.is_some()
            || !self.inner.pending.is_empty()
        {
            return None;
        }
        let started = Sampled::start();
        let bytes = store.read(call.key)?;
        let mut versions = Vec::with_capacity(call.tags.len());
        for tag in call.tags {
            // A tag without a version yet gets one on the full path first.
            versions.push(Some(store.read(&self.tag_key(tag.as_ref()))?));
        }
        // Freshness is judged before the payload is opened: anything but a fresh hit takes
        // the full path, which decodes it there.
        let raw = live_entry(&bytes, call.tags, &versions).ok()??;
        if !matches!(age(&raw.times, None), Age::Fresh { .. }) {
            return None;
        }
        let value = self.open_payload(call.key, &raw, policy.phi).ok()?;
        self.record(call.spec, true, started.elapsed());
        if let Some(function) = &policy.audit {
            self.inner
                .phi
                .audit(function, AuditOperation::Hit, "ok", call.key, None);
        }
        Some(value)
    }

    /// Encodes and stores one loaded value with its tags' versions, under `policy` (jitter
    /// applied here). Returns the encoded entry, for sharing with callers that waited, whether
    /// or not the store took it. Failures are logged and counted, never returned: the caller
    /// has its value either way.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_entry<T: Serialize + ?Sized, S: AsRef<str>>(
        &self,
        full_key: &str,
        value: &T,
        tags: &[S],
        versions: &[Option<Bytes>],
        write: Write<'_>,
        times: (u64, Duration),
        policy: &Policy,
        spec: Option<&FnSpec>,
    ) -> Option<Bytes> {
        let Some(prepared) =
            self.prepare_entry(full_key, value, tags, versions, times, policy, spec)
        else {
            self.release_unwritten(write).await;
            return None;
        };
        if policy.priority == crate::refresh::Priority::Low && self.shedding() {
            // A slow store: low-priority writes are the first to go.
            self.release_unwritten(write).await;
            return Some(prepared.bytes);
        }
        self.store_entry(full_key, &prepared, write, spec).await;
        Some(prepared.bytes)
    }

    /// The encoding half of [`write_entry`](Self::write_entry): no borrow of the value
    /// outlives it, so a background task need not share the value across threads.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare_entry<T: Serialize + ?Sized, S: AsRef<str>>(
        &self,
        full_key: &str,
        value: &T,
        tags: &[S],
        versions: &[Option<Bytes>],
        (started_ms, load_time): (u64, Duration),
        policy: &Policy,
        spec: Option<&FnSpec>,
    ) -> Option<Prepared> {
        let stamps: Vec<TagStamp<'_>> = tags
            .iter()
            .zip(versions)
            .map(|(t, v)| TagStamp {
                name: t.as_ref(),
                version: v.as_deref().unwrap_or_default(),
            })
            .collect();
        // Jitter shortens, never lengthens: a TTL is also a promise (compliance caps).
        let ttl = if policy.jitter > 0 {
            policy
                .ttl
                .mul_f64(1.0 - crate::random::unit() * f64::from(policy.jitter) / 100.0)
        } else {
            policy.ttl
        };
        let mut retention = policy.retention(ttl);
        if !tags.is_empty() {
            // A tagged entry may not outlive its tags' versions (see `tag_ttl`).
            retention = retention.min(self.inner.tag_ttl);
        }
        let p = WriteParams {
            ttl,
            stale: policy.stale.min(ttl),
            tags: &stamps,
            compress: policy.compress,
            phi: policy.phi,
        };
        match self.encode(full_key, value, started_ms, load_time, &p) {
            Ok(bytes) => Some(Prepared {
                bytes,
                retention,
                audit: policy.audit.clone(),
            }),
            Err(e @ CacheError::TooLarge { .. }) => {
                tracing::warn!(target: "cachette", error = %e, "value returned but not cached");
                None
            }
            Err(e) => {
                self.inner.stats.error();
                if let Some(s) = spec {
                    s.stats.error();
                }
                tracing::warn!(target: "cachette", error = %e, "value returned but not cached");
                None
            }
        }
    }

    /// Releases the lease of a `Write::Leased` that writes nothing.
    pub(super) async fn release_unwritten(&self, write: Write<'_>) {
        if let Write::Leased(_, lease) = write {
            self.release_lease(lease).await;
        }
    }

    /// The storing half of [`write_entry`](Self::write_entry).
    pub(super) async fn store_entry(
        &self,
        full_key: &str,
        prepared: &Prepared,
        write: Write<'_>,
        spec: Option<&FnSpec>,
    ) {
        let (bytes, retention) = (prepared.bytes.clone(), prepared.retention);
        let store = &self.inner.store;
        let stored = match write {
            Write::IfUnchanged(observed) => {
                store
                    .write_if(full_key, observed, bytes, retention, false)
                    .await
            }
            Write::Replace(observed) => {
                store
                    .write_if(full_key, observed, bytes, retention, true)
                    .await
            }
            Write::Leased(observed, lease) => {
                store
                    .write_if_releasing(
                        full_key,
                        observed,
                        bytes,
                        retention,
                        false,
                        &lease.key,
                        &lease.token,
                    )
                    .await
            }
        };
        let outcome = match stored {
            Ok(true) => "ok",
            Ok(false) => {
                tracing::debug!(
                    target: "cachette",
                    "the key changed while loading (invalidated or written); the loaded value is returned but not cached"
                );
                "not_stored"
            }
            Err(e) => {
                self.store_error(spec, "set", &e);
                "store_error"
            }
        };
        if let Some(function) = &prepared.audit {
            self.inner
                .phi
                .audit(function, AuditOperation::Write, outcome, full_key, None);
        }
    }

    /// Reads `full_key` for the service API: checks its tags with a second round trip when it
    /// has any (the macros know tags up front and need one).
    pub(super) async fn read_checked<T: DeserializeOwned>(
        &self,
        full_key: &str,
        bytes: Option<Bytes>,
    ) -> Result<Option<T>, StoreError> {
        let started = Sampled::start();
        let found = self.read_checked_uncounted(full_key, bytes).await;
        if let Ok(v) = &found {
            self.record(None, v.is_some(), started.elapsed());
        }
        found
    }

    pub(super) async fn read_checked_uncounted<T: DeserializeOwned>(
        &self,
        full_key: &str,
        bytes: Option<Bytes>,
    ) -> Result<Option<T>, StoreError> {
        let Some(bytes) = bytes else { return Ok(None) };
        if entry::is_tombstone(&bytes) {
            return Ok(None);
        }
        let tags: Vec<String> = match entry::parse(&bytes) {
            Ok(raw) => raw.tags().map(|t| t.name.to_owned()).collect(),
            Err(_) => Vec::new(),
        };
        let versions = if tags.is_empty() {
            Vec::new()
        } else {
            let keys: Vec<String> = tags.iter().map(|t| self.tag_key(t)).collect();
            self.inner.store.get_many(&keys).await?
        };
        Ok(self
            .decode_live(full_key, &bytes, &tags, &versions, false)
            .map(|found| found.map(|(v, _)| v))
            .unwrap_or_else(|reason| {
                tracing::warn!(target: "cachette", key = full_key, %reason, "cache entry failed to decode");
                None
            }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    use std::time::Duration;

    use crate::{Cache, LoadOptions};

    async fn load(cache: &Cache, key: &str, o: &LoadOptions, loads: &AtomicU32) -> u32 {
        let r: Result<u32, std::convert::Infallible> = cache
            .get_or_load(key, o, || async { Ok(loads.fetch_add(1, Relaxed) + 1) })
            .await;
        r.unwrap_or_else(|never| match never {})
    }

    /// In-process hits go through the synchronous path; they must see invalidations and be
    /// counted exactly as the full path counts them.
    #[tokio::test]
    async fn in_memory_hits_see_invalidations_and_are_counted() {
        let cache = Cache::builder().build().unwrap();
        let loads = AtomicU32::new(0);
        let o = LoadOptions::ttl(Duration::from_secs(600)).tag("t");
        assert_eq!(load(&cache, "k", &o, &loads).await, 1);
        for _ in 0..10 {
            assert_eq!(load(&cache, "k", &o, &loads).await, 1);
        }
        cache.invalidate("k").await.unwrap();
        assert_eq!(
            load(&cache, "k", &o, &loads).await,
            2,
            "a tombstone is a miss"
        );
        assert_eq!(load(&cache, "k", &o, &loads).await, 2);
        cache.invalidate_tag("t").await.unwrap();
        assert_eq!(load(&cache, "k", &o, &loads).await, 3, "a new tag version");
        assert_eq!(load(&cache, "k", &o, &loads).await, 3);
        // A forced refresh skips the synchronous path.
        let forced = o.clone().force_refresh(true);
        assert_eq!(load(&cache, "k", &forced, &loads).await, 4);
        assert_eq!(load(&cache, "k", &o, &loads).await, 4);
        // The forced call's lookup found a fresh value: counted as a hit, as before.
        let s = cache.stats().total;
        assert_eq!((s.hits, s.misses, s.loads), (14, 3, 4));
    }
}
