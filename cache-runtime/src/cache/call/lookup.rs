//! The first step of a call: read the entry and its tags' versions in one round trip, decode
//! it, and say once where it stands ([`Age`]).

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::outcome::Keep;
use super::request::Call;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::entry::{self, EntryTimes};
use crate::error::StoreError;
use crate::flight::Flight;
use crate::phi::AuditOperation;
use crate::read_group::{DecodedOnce, Shared};
use crate::stats::Sampled;
use crate::store::{AnyStore, Kept, Store as _};

/// The function name audit events give reads of protected data through the service API
/// ([`Cache::get`], [`Cache::get_many`]).
const SERVICE_READ: &str = "cachette::Cache::get";

/// What a read saw: the state every later step of the call is checked against.
#[derive(Clone)]
pub(crate) struct Read {
    /// The key's bytes (an entry, a tombstone, garbage) or `None`: a conditional write stores
    /// only if the key still holds them.
    pub observed: Option<Bytes>,
    /// The versions of the call's tags, in order, read with the entry: a loaded value records
    /// them, so an invalidation of a tag during the load makes it stale at once.
    pub versions: Vec<Option<Bytes>>,
    /// The [ticket](crate::flight::Flights::ticket) taken before the read (and before the
    /// invalidations waiting from an outage were applied); 0 for a basis that holds for
    /// nobody by its order, only for callers that read the very same state.
    pub order: u64,
    /// Whether the store answered. A read that found nothing because the store was away
    /// matches no other read.
    pub reached: bool,
}

impl Read {
    /// The read of a call that could not reach the store.
    pub fn unreached(order: u64) -> Read {
        Read {
            observed: None,
            versions: Vec::new(),
            order,
            reached: false,
        }
    }

    /// This read as the basis of a value served past its expiry (fail-safe): it holds only for
    /// followers that read the very same entry, which each would fall back to anyway.
    pub fn same_state_only(&self) -> Read {
        Read {
            order: 0,
            ..self.clone()
        }
    }
}

/// A read shared by a [group](crate::read_group) of callers of one key: the keys of the tags
/// whose versions it fetched, and the read (`None`: the store could not be read).
pub(crate) type SharedRead = (Vec<String>, Option<Read>);

/// A caller's place in its key's read group.
pub(crate) type ReadPlace = crate::read_group::Member<SharedRead>;

/// Where a live entry stands, from its header: the one classification of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Age {
    /// Younger than `stale`: served as is.
    Fresh,
    /// Fresh, but XFetch says to refresh it already: served, and refreshed.
    RefreshEarly,
    /// Older than `stale`, younger than `ttl`: served, and refreshed once.
    Stale,
    /// Older than `ttl`, kept for fail-safe: served only when the loader fails or times out.
    Expired,
}

/// A decoded live value and where it stands.
pub(crate) struct Found<T> {
    pub value: T,
    pub age: Age,
    /// When it expired or expires (unix ms): a fail-safe grace counts from here.
    pub expires_ms: u64,
    /// When it stops being fresh (unix ms): an L1 copy is kept no longer.
    pub fresh_until_ms: u64,
}

/// What a lookup found, and what the read saw.
pub(crate) struct Lookup<T> {
    pub found: Option<Found<T>>,
    pub read: Read,
}

/// Where an entry with `times` stands now. A plainly fresh entry is told by the cheap coarse
/// clock; XFetch weighs how close the entry is to going stale, so it reads the precise one.
pub(crate) fn age(times: &EntryTimes, early_beta: Option<f64>, clock: &Clock) -> Age {
    let now = match early_beta {
        Some(_) => clock.now_ms(),
        None => clock.now_ms_for(times.fresh_until_ms),
    };
    if now < times.fresh_until_ms {
        // XFetch (Vattani et al., VLDB 2015): refresh when
        // now - delta * beta * ln(rand) >= expiry, delta being the last load's time.
        let early = early_beta.is_some_and(|beta| {
            let delta_ms = f64::from(times.load_micros) / 1000.0;
            let ahead = -delta_ms * beta * crate::random::unit().ln();
            now as f64 + ahead >= times.fresh_until_ms as f64
        });
        if early { Age::RefreshEarly } else { Age::Fresh }
    } else if now < times.expires_ms {
        Age::Stale
    } else {
        Age::Expired
    }
}

/// An entry that is neither a tombstone nor older than one of its tags (whose versions,
/// in order, are `versions`), nor of another shape than `shape`; `None` when it is dead, an
/// error when it does not parse.
fn live_entry<'b, S: AsRef<str>>(
    bytes: &'b [u8],
    tags: &[S],
    versions: &[Option<Bytes>],
    shape: Option<u64>,
) -> Result<Option<entry::RawEntry<'b>>, String> {
    if entry::is_tombstone(bytes) {
        return Ok(None);
    }
    let raw = entry::parse(bytes)?;
    Ok((raw.tags_current(tags, versions) && of_shape(&raw, shape)).then_some(raw))
}

/// Whether `raw` may hold a value of the type whose shape is `shape`: an entry written for
/// another shape (a deploy changed the type) is a miss that the load overwrites. Entries
/// without a recorded shape (written through the service API) are read as before.
pub(crate) fn of_shape(raw: &entry::RawEntry<'_>, shape: Option<u64>) -> bool {
    same_shape(raw.shape, shape)
}

/// Whether an entry written with the shape `written` may be read as a value of the shape
/// `expected` (see [`of_shape`]).
fn same_shape(written: Option<u64>, expected: Option<u64>) -> bool {
    match (written, expected) {
        (Some(written), Some(expected)) => written == expected,
        _ => true,
    }
}

impl Cache {
    /// The key holding `tag`'s version. `__cachette:` is reserved: templates cannot start with it.
    pub(crate) fn tag_key(&self, tag: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len() + 15 + tag.len());
        self.write_tag_key(&mut k, tag);
        k
    }

    /// [`tag_key`](Self::tag_key) into `buf`, replacing what it held: one buffer for all the
    /// tags of a hit.
    fn write_tag_key(&self, buf: &mut String, tag: &str) {
        buf.clear();
        buf.push_str(&self.inner.prefix);
        buf.push_str(crate::store::TAG_KEY_INFIX);
        buf.push_str(tag);
    }

    /// Whether `key` is the key holding `tag`'s version ([`tag_key`](Self::tag_key)), told
    /// without building it.
    fn is_tag_key(&self, key: &str, tag: &str) -> bool {
        key.strip_prefix(self.inner.prefix.as_str())
            .and_then(|k| k.strip_prefix(crate::store::TAG_KEY_INFIX))
            .is_some_and(|t| t == tag)
    }

    fn max_inflated(&self) -> usize {
        // Inflating is bounded by the largest entry this cache would write, times a margin
        // for the compression ratio.
        self.inner.max_entry_bytes.saturating_mul(64)
    }

    /// Decodes `bytes` if it is a live entry: not a tombstone, carrying exactly `tags` at the
    /// versions in `versions`. `Ok(None)` is a clean miss; `Err` an entry that does not decode.
    ///
    /// With `kept`, the value is taken from there when another caller that read the very same
    /// bytes has decoded it already, and left there otherwise. Only the payload is shared:
    /// every caller checks the entry (tombstone, tags, shape) and reads its times itself.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decode_live<T: DeserializeOwned, S: AsRef<str>>(
        &self,
        full_key: &str,
        bytes: &[u8],
        tags: &[S],
        versions: &[Option<Bytes>],
        protected: bool,
        shape: Option<u64>,
        kept: Option<(&Keep<T>, &DecodedOnce)>,
    ) -> Result<Option<(T, EntryTimes)>, String> {
        let Some(raw) = live_entry(bytes, tags, versions, shape)? else {
            return Ok(None);
        };
        let kept = kept.filter(|_| !protected);
        if let Some((keep, cell)) = kept {
            if let Some(value) = cell.get().and_then(|any| (keep.from_any)(&**any)) {
                return Ok(Some((value, raw.times)));
            }
        }
        let value = self.open_payload(full_key, &raw, protected)?;
        if let Some((keep, cell)) = kept {
            // Two callers may decode at once; the first to finish keeps its value.
            let _ = cell.set((keep.to_any)(&value));
        }
        Ok(Some((value, raw.times)))
    }

    /// Decodes an entry's payload, opening it when sealed (the context binds it to
    /// `full_key`). Protected calls refuse unsealed payloads.
    pub(crate) fn open_payload<T: DeserializeOwned>(
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

    /// Reads `full_key` and the versions of `tag_keys` in one round trip. A tag without a
    /// version yet is given one first (`SET NX`), so that no entry ever records "no version":
    /// a version lost later (evicted) then makes entries misses, never current again.
    pub(crate) async fn read_with_versions(
        &self,
        full_key: &str,
        tag_keys: &[String],
        order: u64,
    ) -> Result<Read, StoreError> {
        let (observed, mut versions) = self.inner.store.read_tagged(full_key, tag_keys).await?;
        if versions.iter().any(Option::is_none) {
            // Boxed: rare (a tag's first use, or a version evicted), and its futures would
            // otherwise make every read's future larger.
            Box::pin(self.create_versions(tag_keys, &mut versions)).await?;
        }
        Ok(Read {
            observed,
            versions,
            order,
            reached: true,
        })
    }

    /// Gives the tags of `tag_keys` whose `versions` are missing a version (`SET NX`, so that
    /// a concurrent creation wins), and reads what they hold then.
    pub(crate) async fn create_versions(
        &self,
        tag_keys: &[String],
        versions: &mut [Option<Bytes>],
    ) -> Result<(), StoreError> {
        let missing: Vec<String> = tag_keys
            .iter()
            .zip(versions.iter())
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
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
        Ok(())
    }

    /// Reads the call's key with its tags' versions, in one round trip, and says where the
    /// value stands. With `record`, counts the lookup (and audits it). An entry that fails to
    /// decode is logged and is absent: a miss that the load overwrites. `order` is the
    /// ticket taken before the read.
    pub(crate) async fn lookup<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        record: bool,
        order: u64,
    ) -> Result<Lookup<T>, StoreError> {
        let started = Sampled::start();
        let tag_keys: Vec<String> = call.tags.iter().map(|t| self.tag_key(t)).collect();
        let read = match self.read_with_versions(call.key, &tag_keys, order).await {
            Ok(read) => read,
            Err(e) => {
                self.store_error(call.spec, "get", &e);
                if record {
                    self.count_lookup(call.spec, false, started.elapsed());
                }
                return Err(e);
            }
        };
        Ok(self.classify(call, read, record, started, None))
    }

    /// A caller's first lookup on a store across the network, from its `place` in its key's
    /// read group: it shares the group's read, sent after every member arrived
    /// ([group commit](crate::read_group)). A caller whose tags differ from the shared read's
    /// reads for itself.
    pub(crate) async fn lookup_grouped<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        place: &ReadPlace,
        order: u64,
        keep: Option<&Keep<T>>,
    ) -> Result<Lookup<T>, StoreError> {
        let started = Sampled::start();
        // Made only by the member that sends it, inside the group's cell (a read's future is
        // kilobytes: passed in ready-made, it was carried three times over).
        let shared = place
            .read(|| {
                async {
                    // As on the path of a single caller: the ticket, then the invalidations
                    // waiting from an outage, then the read (see `Cache::call`).
                    let order = self.inner.flights.ticket();
                    let tag_keys: Vec<String> = call.tags.iter().map(|t| self.tag_key(t)).collect();
                    let read = match self.flush_pending().await {
                        Ok(()) => self.read_with_versions(call.key, &tag_keys, order).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = &read {
                        self.store_error(call.spec, "get", e);
                    }
                    (tag_keys, read.ok())
                }
            })
            .await;
        // A caller alone on its key owns its read; the members of a group each take a copy,
        // and the value it found is decoded once for all of them.
        let (tag_keys, read, kept) = match shared {
            Shared::Own((tag_keys, read)) => (std::borrow::Cow::Owned(tag_keys), read, None),
            Shared::Borrowed((tag_keys, read)) => (
                std::borrow::Cow::Borrowed(&tag_keys[..]),
                read.clone(),
                keep.map(|k| (k, place.decoded())),
            ),
        };
        let same_tags = tag_keys.len() == call.tags.len()
            && tag_keys
                .iter()
                .zip(call.tags)
                .all(|(k, t)| self.is_tag_key(k, t));
        match read {
            Some(read) if same_tags => Ok(self.classify(call, read, true, started, kept)),
            Some(_) => Box::pin(self.lookup(call, true, order)).await,
            None => {
                self.count_lookup(call.spec, false, started.elapsed());
                Err(StoreError::SharedReadFailed)
            }
        }
    }

    /// A lookup for a caller that found its key's [cold flight](crate::flight) running: it
    /// waits for the flight to end, then takes the read that the callers waiting for it share
    /// (sent after the flight ended, so after this caller arrived). A caller whose tags differ
    /// from the shared read's, or whose shared read failed, reads for itself.
    pub(crate) async fn lookup_after<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        flight: &Flight<Read>,
        order: u64,
    ) -> Result<Lookup<T>, StoreError> {
        self.count_waited(call.spec);
        flight.ended().await;
        let started = Sampled::start();
        let (tags, read) = flight
            .reread(async {
                let tag_keys: Vec<String> = call.tags.iter().map(|t| self.tag_key(t)).collect();
                // As on the path of a single caller: the ticket, then the invalidations waiting
                // from an outage (one queued by a caller that shares this read may still be on
                // its way), then the read.
                let order = self.inner.flights.ticket();
                let read = match self.flush_pending().await {
                    Ok(()) => self.read_with_versions(call.key, &tag_keys, order).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = &read {
                    self.store_error(call.spec, "get", e);
                }
                (Box::from(call.tags), read.ok())
            })
            .await;
        match read {
            Some(read) if **tags == *call.tags => {
                Ok(self.classify(call, read.clone(), true, started, None))
            }
            _ => self.lookup(call, true, order).await,
        }
    }

    /// Decodes what `read` found and says where it stands; with `record`, counts the lookup
    /// (and audits it).
    fn classify<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        read: Read,
        record: bool,
        started: Sampled,
        kept: Option<(&Keep<T>, &DecodedOnce)>,
    ) -> Lookup<T> {
        let decoded = read.observed.as_ref().and_then(|b| {
            let policy = call.policy;
            self.decode_live::<T, _>(
                call.key,
                b,
                call.tags,
                &read.versions,
                policy.phi,
                policy.shape,
                kept,
            )
            .unwrap_or_else(|reason| {
                tracing::warn!(
                    target: "cachette",
                    key = call.shown_key(),
                    %reason,
                    "cache entry failed to decode; treating it as a miss and overwriting it"
                );
                None
            })
        });
        let found = decoded.map(|(value, times)| Found {
            value,
            age: age(&times, call.policy.early_beta, &self.inner.clock),
            expires_ms: times.expires_ms,
            fresh_until_ms: times.fresh_until_ms,
        });
        if record {
            let age = found.as_ref().map(|f| f.age);
            let hit = matches!(age, Some(Age::Fresh | Age::RefreshEarly | Age::Stale));
            self.count_lookup(call.spec, hit, started.elapsed());
            self.audit_lookup(call, hit);
            if age == Some(Age::Stale) {
                self.count_stale_hit(call.spec);
            }
        }
        Lookup { found, read }
    }

    pub(super) fn audit_lookup(&self, call: Call<'_>, hit: bool) {
        if let Some(function) = &call.policy.audit {
            let op = if hit {
                AuditOperation::Hit
            } else {
                AuditOperation::Miss
            };
            self.audit(function, op, "ok", call.key, None);
        }
    }

    /// A fresh hit on the in-process store, answered without the asynchronous call path: the
    /// memory store has the entry at hand, so the whole lookup runs synchronously, with the
    /// same checks as [`lookup`](Self::lookup) (tombstone, tags' versions, sealing,
    /// freshness) and the same counting and audit. `None` whenever the full path has more to
    /// do (another store, nothing stored, a stale, expired or undecodable entry, early
    /// refresh configured, a tag without a version yet, invalidations waiting to be applied, a
    /// forced refresh); nothing is counted then, so the full path's lookup is the one counted.
    ///
    /// With `keep` (values that can be cloned), the first hit of an entry keeps its decoded
    /// value beside the bytes, and later hits clone it instead of decoding; protected values
    /// are opened on every hit, never kept decoded.
    pub(crate) fn fresh_in_memory<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        keep: Option<&Keep<T>>,
    ) -> Option<T> {
        let AnyStore::Memory(store) = &self.inner.store else {
            return None;
        };
        let policy = call.policy;
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
        let (bytes, decoded) = store.read_decoded(call.key)?;
        let keep = keep.zip(decoded).filter(|_| !policy.phi);
        // An untagged entry decoded before: its header facts were kept with its value, and no
        // tag version needs reading, so the hit checks those and clones.
        if let Some((k, d)) = &keep {
            if let Some(kept) = d.get().filter(|kept| !kept.tagged && call.tags.is_empty()) {
                if !same_shape(kept.shape, policy.shape)
                    || age(&kept.times, None, &self.inner.clock) != Age::Fresh
                {
                    return None;
                }
                let value = (k.from_any)(&*kept.value)?;
                self.count_lookup(call.spec, true, started.elapsed());
                self.audit_lookup(call, true);
                return Some(value);
            }
        }
        let mut versions = Vec::with_capacity(call.tags.len());
        let mut tag_key = String::new();
        for tag in call.tags {
            // A tag without a version yet gets one on the full path first.
            self.write_tag_key(&mut tag_key, tag);
            versions.push(Some(store.read(&tag_key)?));
        }
        // Freshness is judged before the payload is opened: anything but a fresh hit takes
        // the full path, which decodes it there.
        let raw = live_entry(&bytes, call.tags, &versions, policy.shape).ok()??;
        if age(&raw.times, None, &self.inner.clock) != Age::Fresh {
            return None;
        }
        let kept = keep
            .as_ref()
            .and_then(|(k, d)| d.get().and_then(|kept| (k.from_any)(&*kept.value)));
        let value = match kept {
            Some(value) => value,
            None => {
                let value = self.open_payload(call.key, &raw, policy.phi).ok()?;
                if let Some((k, d)) = keep {
                    let _ = d.set(Kept {
                        value: (k.to_any)(&value),
                        times: raw.times,
                        shape: raw.shape,
                        tagged: raw.tags().next().is_some(),
                    });
                }
                value
            }
        };
        self.count_lookup(call.spec, true, started.elapsed());
        self.audit_lookup(call, true);
        Some(value)
    }

    /// Reads `full_key` for the service API: checks its tags with a second round trip when it
    /// has any (the macros know tags up front and need one).
    pub(crate) async fn read_checked<T: DeserializeOwned>(
        &self,
        full_key: &str,
        bytes: Option<Bytes>,
    ) -> Result<Option<T>, StoreError> {
        let started = Sampled::start();
        let found = self.read_checked_uncounted(full_key, bytes).await;
        if let Ok(v) = &found {
            self.count_lookup(None, v.is_some(), started.elapsed());
        }
        found
    }

    pub(crate) async fn read_checked_uncounted<T: DeserializeOwned>(
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
        let value = self
            .decode_live(full_key, &bytes, &tags, &versions, false, None, None)
            .map(|found| found.map(|(v, _)| v))
            .unwrap_or_else(|reason| {
                tracing::warn!(target: "cachette", key = full_key, %reason, "cache entry failed to decode");
                None
            });
        // Protected data read outside its function is audited like any other read of it.
        if value.is_some() && entry::parse(&bytes).is_ok_and(|raw| raw.is_sealed()) {
            self.audit(SERVICE_READ, AuditOperation::Hit, "ok", full_key, None);
        }
        Ok(value)
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
#[cfg(test)]
mod future_size {
    /// Every call's future is created, moved and polled on every hit: the paths past a hit
    /// (loads, refreshes, an outage's backlog, a cluster's two-command read) are boxed so that
    /// it stays small. Unboxed, it was 30 KB; it is about 3 KB, most of it the read.
    #[tokio::test]
    async fn a_call_future_stays_small() {
        let cache = crate::Cache::builder().build().unwrap();
        let o = crate::LoadOptions::ttl(std::time::Duration::from_secs(1));
        let call = cache.get_or_load("k", &o, || async { Ok::<u32, String>(1) });
        let size = std::mem::size_of_val(&call);
        assert!(size <= 4096, "a call's future is {size} bytes");
    }
}
