//! The path of one cached call, one module per step, dependencies pointing down this list:
//!
//! ```text
//! call (this file)  the orchestration below, and #[cache_put]'s write-through
//!  ├─ local         the L1 tier: serve a copy kept in this process, keep one
//!  ├─ load          no value to serve: flight leader or follower, lease, timeout, fail-safe
//!  ├─ refresh       a value served and refreshed: in the background, or inline
//!  ├─ write         prepare (jitter, retention, encode, seal) and store if unchanged
//!  ├─ lease         one load per key across processes
//!  ├─ lookup        read the entry and its tags' versions, decode, classify (Age)
//!  ├─ outcome       which results are cached; how the others reach waiting callers
//!  └─ request       the call: key, tags, function, policy
//! ```
//!
//! ```text
//! fresh in memory? ─ yes ─────────────────────────────────────────► value   (no future)
//! L1 copy?         ─ yes ─────────────────────────────────────────► value   (no round trip)
//! lookup (after the key's cold flight, if one runs: one read shared by its waiters;
//!         else the next read of the key, shared by the callers that arrived during the last)
//!        ─ Fresh ─────────────────────────────────────────────────► value
//!        ─ RefreshEarly / Stale ─ refresh (background or inline) ─► value
//!        ─ Expired (fail-safe) / absent / forced ─ load ─ follower: the leader's result
//!                                                       ─ leader: lease ─ load ─ write
//! ```

mod lease;
mod load;
mod local;
mod lookup;
mod outcome;
mod refresh;
mod request;
mod write;

use std::future::Future;

use self::load::Basis;
use self::lookup::{Age, Found, Lookup};
pub(crate) use self::lookup::{Read, SharedRead};
pub(crate) use self::outcome::Sharing;
pub use self::outcome::{
    Keep, KeepNone, KeepViaClone, Keeper, Outcome, Plain, Share, ShareNone, ShareViaClone, Sharer,
};
pub(crate) use self::refresh::{InBackground, Inline, RefreshMode};
pub(crate) use self::request::{Call, Load};
pub(crate) use self::write::{Condition, LoadTimes, WriteParams};
use super::options::Policy;
use super::{Cache, LoadOptions};
use crate::registry::FnSpec;

impl Cache {
    /// Runs one cached call. `load` runs at most once, in this task or (in the background
    /// mode) in a background task; errors of the loader are returned untouched (or, with
    /// fail-safe, replaced by the expired value); store failures only cost the caching.
    pub(crate) async fn call<O, L, M>(&self, call: Call<'_>, load: L, sharing: Sharing<'_, O>) -> O
    where
        O: Outcome,
        L: Load<O>,
        M: RefreshMode<O, L>,
    {
        if let Some(v) = self.fresh_in_memory::<O::Value>(call, sharing.value) {
            return O::from_cached(v);
        }
        let policy = call.policy;
        if self.inner.disabled || policy.ttl.is_zero() {
            return load().await;
        }
        let share = sharing.outcome;
        if let Some(out) = self.l1_serve(call, sharing.value) {
            return out;
        }
        // The stamp comes before anything is read from the store: a copy made from this
        // call's reads is kept only if no invalidation came after it.
        let call = Call {
            l1: self.l1_stamp(call),
            ..call
        };
        let mut load = load;
        // The paths past a fresh hit (loads, refreshes, waiting for a cold flight) are boxed:
        // their futures are many kilobytes (the loader's among them), which this future would
        // otherwise carry, and move, on every hit.
        // A caller goes round when its leader vanished, or loaded from a state of the key
        // older than the one this caller read. Every round waits for a load that ran (or was
        // cancelled), so loads of a key in this process run one at a time, never side by side.
        let mut began = None;
        // This caller's place in its key's read group, kept until it has served a value or
        // joined its key's flight: the callers behind it wait until then.
        let mut place = None;
        loop {
            // The ticket comes before the backlog is applied: a leader whose ticket is newer
            // than a follower's call began after it, backlog included.
            let order = self.inner.flights.ticket();
            let since = *began.get_or_insert(order);
            let first = since == order;
            // The first read of a call on a store across the network waits for the key's read
            // in flight (and for its caller to find a value or join a flight), then shares the
            // next one with the callers that arrived meanwhile.
            if first && !self.inner.store.is_memory() {
                let member = self.inner.reads.join(call.key);
                member.turn().await;
                place = Some(member);
            }
            // A caller that arrives while its key's cold flight runs shares the read after it
            // (a stampede sends two reads, not one per caller); a forced refresh loads anyway.
            let cold = match first && !policy.force_refresh {
                true => self.inner.flights.cold(call.key),
                false => None,
            };
            if cold.is_some() {
                place = None;
            }
            let looked = match self.flush_pending().await {
                Ok(()) => match (cold, &place) {
                    (Some(flight), _) => {
                        let looked =
                            Box::pin(self.lookup_after::<O::Value>(call, &flight, order)).await;
                        if let Ok(Lookup { found: None, read }) = &looked {
                            if let Some(out) = self.outcome_of_flight(&flight, read, share) {
                                return out;
                            }
                        }
                        looked
                    }
                    (None, Some(member)) => {
                        self.lookup_grouped::<O::Value>(call, member, order, sharing.value)
                            .await
                    }
                    (None, None) => Box::pin(self.lookup::<O::Value>(call, first, order)).await,
                },
                // Invalidations from an outage go first; until they are applied nothing is
                // read. The call then counts as a failed lookup: an error and a miss.
                Err(e) => {
                    self.store_error(call.spec, "get", &e);
                    if first {
                        self.count_lookup(call.spec, false, None);
                    }
                    Err(e)
                }
            };
            let (found, read) = match looked {
                Ok(Lookup { found, read }) => (found, read),
                // With the store unreachable the call runs uncached, still one load per key.
                Err(_) => (None, Read::unreached(order)),
            };
            let fallback = match found {
                Some(found) if policy.force_refresh => Some(found),
                Some(Found {
                    value,
                    age: Age::Fresh,
                    fresh_until_ms,
                    ..
                }) => {
                    self.l1_keep(call, &read, fresh_until_ms);
                    return O::from_cached(value);
                }
                Some(Found {
                    value,
                    age: Age::RefreshEarly,
                    ..
                }) => {
                    drop(place.take());
                    Box::pin(self.refresh::<O, L, M>(call, read, false, load)).await;
                    return O::from_cached(value);
                }
                Some(Found {
                    value,
                    age: Age::Stale,
                    ..
                }) => {
                    drop(place.take());
                    return match Box::pin(self.refresh::<O, L, M>(call, read, true, load)).await {
                        Some(fresh) => fresh,
                        None => O::from_cached(value),
                    };
                }
                // Expired: kept for fail-safe, served only if the load fails or times out.
                expired => expired,
            };
            let basis = Basis {
                read,
                since,
                place: place.take(),
            };
            match Box::pin(self.load::<O, L, M>(call, basis, fallback, load, share)).await {
                Ok(out) => return out,
                Err(given_back) => load = given_back,
            }
        }
    }

    /// Runs one call of the `#[cached]` function `spec`.
    pub(crate) async fn call_spec<O, L, M>(
        &self,
        spec: &'static FnSpec,
        key: &str,
        tags: &[String],
        load: L,
        sharing: Sharing<'_, O>,
    ) -> O
    where
        O: Outcome,
        L: Load<O>,
        M: RefreshMode<O, L>,
    {
        let policy = Policy {
            shape: self.shape_of::<O::Value>(spec),
            ..Policy::of_spec(spec, self.inner.default_ttl)
        };
        let call = Call {
            key,
            tags,
            spec: Some(spec),
            policy: &policy,
            l1: None,
        };
        self.call::<O, L, M>(call, load, sharing).await
    }

    /// The shape entries of `spec`'s value type `T` carry and must have to be read, unless
    /// the cache was built not to check shapes or the function says `value_shape = false`.
    pub(crate) fn shape_of<T: serde::de::DeserializeOwned>(&self, spec: &FnSpec) -> Option<u64> {
        if self.inner.value_shapes && spec.value_shape {
            spec.shape_of::<T>()
        } else {
            None
        }
    }

    /// Runs one call of the service API (`get_or_load`), under `options`.
    pub(crate) async fn call_options<O, L, M>(&self, key: &str, options: &LoadOptions, load: L) -> O
    where
        O: Outcome,
        L: Load<O>,
        M: RefreshMode<O, L>,
    {
        let full = self.full_key(key);
        let policy = Policy::of_options(options, self.inner.default_ttl);
        let call = Call {
            key: &full,
            tags: &options.tags,
            spec: None,
            policy: &policy,
            l1: None,
        };
        self.call::<O, L, M>(call, load, Sharing::none()).await
    }
}

/// A `#[cache_put]` call: always runs `body`, then stores a cacheable result over what
/// the key holds (it is newer). The key and its tags' versions are read before the body
/// runs, so an invalidation during the call wins over this write.
pub async fn put<O, Fut>(
    cache: &Cache,
    spec: &'static FnSpec,
    key: String,
    tags: &[String],
    body: Fut,
) -> O
where
    O: Outcome,
    Fut: Future<Output = O>,
{
    // The test kit sees the call first, as it sees `#[cached]` calls (`__macro_support`).
    #[cfg(feature = "testing")]
    if crate::__macro_support::test_kit(&key).await {
        return body.await;
    }
    let policy = Policy {
        shape: cache.shape_of::<O::Value>(spec),
        ..Policy::of_spec(spec, cache.inner.default_ttl)
    };
    if cache.inner.disabled || policy.ttl.is_zero() {
        return body.await;
    }
    let call = Call {
        key: &key,
        tags,
        spec: Some(spec),
        policy: &policy,
        l1: None,
    };
    let order = cache.inner.flights.ticket();
    let read = match cache.flush_pending().await {
        Ok(()) => {
            let keys: Vec<String> = tags.iter().map(|t| cache.tag_key(t)).collect();
            cache.read_with_versions(&key, &keys, order).await
        }
        Err(e) => Err(e),
    };
    let started_ms = cache.now_ms();
    let started = std::time::Instant::now();
    let out = body.await;
    let times = LoadTimes {
        started_ms,
        took: started.elapsed(),
    };
    cache.count_load(call.spec);
    cache.count_load_took(call.spec, times.took);
    match read {
        Ok(read) => {
            if let Some(value) = out.cached_value(spec.cache_none) {
                cache
                    .write(call, value, &read, times.into(), Condition::Replace)
                    .await;
            }
        }
        Err(e) => cache.store_error(call.spec, "get", &e),
    }
    out
}
