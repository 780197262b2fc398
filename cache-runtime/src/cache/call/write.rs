//! The last step of a load: prepare the entry (jitter, retention, encoding, sealing, the size
//! limit) and store it with a conditional write, releasing the lease with it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::lease::Lease;
use super::lookup::Read;
use super::request::Call;
use crate::cache::{Cache, builder};
use crate::clock::millis;
use crate::codec::Compress;
use crate::entry::{self, EncodeOptions, EntryTimes, TagStamp};
use crate::error::CacheError;
use crate::phi::AuditOperation;
use crate::refresh_queue::Priority;
use crate::store::{Store as _, WriteIf};

/// The settings of one encoding.
pub(crate) struct WriteParams<'a> {
    pub tags: &'a [TagStamp<'a>],
    pub compress: Compress,
    pub phi: bool,
    /// The shape of the value's type, recorded in the entry.
    pub shape: Option<u64>,
}

/// When a load started (unix ms) and how long it took: the entry's timestamps, and the
/// load time XFetch weighs.
#[derive(Clone, Copy)]
pub(crate) struct LoadTimes {
    pub started_ms: u64,
    pub took: Duration,
}

/// How long a written entry is fresh, served, and kept.
#[derive(Clone, Copy)]
pub(crate) enum Lifetime {
    /// A loaded value: fresh for `stale`, served for `ttl` (less jitter), kept a fail-safe
    /// grace longer, all counted from the start of its load.
    Loaded(LoadTimes),
    /// A fail-safe value served again after a failed load: fresh (not reloaded) until
    /// `fresh_until_ms`, expired since its first expiry `expires_ms`, and kept until
    /// `kept_until_ms`, the end of the grace counted from that first expiry. Rewriting it
    /// never extends the grace.
    FailSafe {
        now_ms: u64,
        fresh_until_ms: u64,
        expires_ms: u64,
        kept_until_ms: u64,
    },
}

impl From<LoadTimes> for Lifetime {
    fn from(times: LoadTimes) -> Self {
        Lifetime::Loaded(times)
    }
}

/// An encoded entry and how long the store keeps it.
pub(crate) struct Prepared {
    pub bytes: Bytes,
    pub retention: Duration,
    /// The function to audit the write under, for protected values.
    pub audit: Option<Arc<str>>,
}

/// When a write may replace what the key holds (compared with what the read saw).
#[derive(Clone, Copy)]
pub(crate) enum Condition<'a> {
    /// Only if the key still holds what the read saw; the lease, if the caller holds one, is
    /// released with the write (or on its own when nothing is written).
    Unchanged(Option<&'a Lease>),
    /// Over any value (it is newer: `#[cache_put]`), but not over a tombstone written since
    /// the read: an invalidation after the write-through began wins.
    Replace,
}

impl Cache {
    /// Encodes `value` into an entry with `times`. The service API's `set` uses it directly.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        times: EntryTimes,
        p: &WriteParams<'_>,
    ) -> Result<Bytes, CacheError> {
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
            compression: self.inner.compression,
            shape: p.shape,
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

    /// Prepares and stores one loaded value under `cond`. Returns the encoded entry, for the
    /// callers that waited, whether or not the store took it. Failures are logged and counted,
    /// never returned: the caller has its value either way.
    pub(crate) async fn write<T: Serialize + ?Sized>(
        &self,
        call: Call<'_>,
        value: &T,
        read: &Read,
        lifetime: Lifetime,
        cond: Condition<'_>,
    ) -> Option<Bytes> {
        let Some(prepared) = self.prepare(call, value, &read.versions, lifetime) else {
            self.release_unwritten(cond).await;
            return None;
        };
        if call.policy.priority == Priority::Low && self.shedding() {
            // A slow store: low-priority writes are the first to go.
            self.release_unwritten(cond).await;
            return Some(prepared.bytes);
        }
        self.store_prepared(call, &prepared, read.observed.as_deref(), cond)
            .await;
        Some(prepared.bytes)
    }

    /// The encoding half of [`write`](Self::write): no borrow of the value outlives it, so a
    /// background task need not share the value across threads. Jitter is applied here.
    pub(crate) fn prepare<T: Serialize + ?Sized>(
        &self,
        call: Call<'_>,
        value: &T,
        versions: &[Option<Bytes>],
        lifetime: Lifetime,
    ) -> Option<Prepared> {
        let policy = call.policy;
        let stamps: Vec<TagStamp<'_>> = call
            .tags
            .iter()
            .zip(versions)
            .map(|(t, v)| TagStamp {
                name: t.as_ref(),
                version: v.as_deref().unwrap_or_default(),
            })
            .collect();
        let (times, mut retention) = match lifetime {
            Lifetime::Loaded(load)
                if self.now_ms().saturating_sub(load.started_ms)
                    >= millis(self.inner.tombstone_ttl) =>
            {
                // An invalidation during this load may have left a tombstone that expired
                // since: the conditional write could no longer see it, so nothing is written.
                tracing::debug!(
                    target: "cachette",
                    key = call.shown_key(),
                    "a load outlived the tombstone TTL; its value is returned but not cached"
                );
                return None;
            }
            Lifetime::Loaded(load) => {
                // Jitter shortens, never lengthens: a TTL is also a promise (compliance caps).
                // The setting is a public field: over 100 % it means all of the TTL, not a
                // negative factor (which `mul_f64` panics on).
                let ttl = if policy.jitter > 0 {
                    let percent = f64::from(policy.jitter.min(100));
                    policy
                        .ttl
                        .mul_f64(1.0 - crate::random::unit() * percent / 100.0)
                } else {
                    policy.ttl
                };
                let times = EntryTimes::starting(load.started_ms, load.took, ttl, policy.stale);
                (times, policy.retention(ttl))
            }
            Lifetime::FailSafe {
                now_ms,
                fresh_until_ms,
                expires_ms,
                kept_until_ms,
            } => {
                let times = EntryTimes {
                    created_ms: now_ms,
                    fresh_until_ms,
                    expires_ms,
                    load_micros: 0,
                };
                let left = kept_until_ms.saturating_sub(now_ms);
                (times, Duration::from_millis(left))
            }
        };
        if !call.tags.is_empty() {
            // A tagged entry may not outlive its tags' versions (see `tag_ttl`).
            retention = retention.min(self.inner.tag_ttl);
        }
        if retention.is_zero() {
            return None;
        }
        let p = WriteParams {
            tags: &stamps,
            compress: policy.compress,
            phi: policy.phi,
            shape: policy.shape,
        };
        match self.encode(call.key, value, times, &p) {
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
                self.count_error(call.spec);
                tracing::warn!(target: "cachette", error = %e, "value returned but not cached");
                None
            }
        }
    }

    /// Releases the lease of a [`Condition::Unchanged`] write that writes nothing.
    pub(crate) async fn release_unwritten(&self, cond: Condition<'_>) {
        if let Condition::Unchanged(Some(lease)) = cond {
            self.release_lease(lease).await;
        }
    }

    /// The storing half of [`write`](Self::write): one conditional write, with the lease.
    pub(crate) async fn store_prepared(
        &self,
        call: Call<'_>,
        prepared: &Prepared,
        observed: Option<&[u8]>,
        cond: Condition<'_>,
    ) {
        let (replace_values, lease) = match cond {
            Condition::Unchanged(lease) => (false, lease),
            Condition::Replace => (true, None),
        };
        if let Some(lease) = lease {
            // The store releases it with the write, or on its own after a refused script.
            lease.mark_released();
        }
        let store = &self.inner.store;
        let write = store.write_if(WriteIf {
            key: call.key,
            value: prepared.bytes.clone(),
            ttl: prepared.retention,
            observed,
            replace_values,
            release: lease.map(|l| (l.key.as_str(), l.token.as_slice())),
            lease_held: lease.is_some_and(|l| l.taken.elapsed() < self.inner.limits.lease_ttl),
        });
        // The entry's tags' versions must outlive it: lengthened alongside the write (one
        // round trip of waiting). Should that fail, the entry dies with its tags' versions
        // early: a miss, never a value an invalidation replaced.
        let stored = if call.tags.is_empty() {
            write.await
        } else {
            let tag_keys: Vec<String> = call.tags.iter().map(|t| self.tag_key(t)).collect();
            let extend = store.extend_versions(&tag_keys, prepared.retention);
            let (stored, extended) = futures_util::future::join(write, extend).await;
            if let Err(e) = extended {
                self.store_error(call.spec, "pexpire", &e);
            }
            stored
        };
        if !matches!(stored, Ok(false)) {
            // Written, or perhaps written (a timeout): no copy in any process is current.
            self.l1_wrote(&[call.key]);
        }
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
                self.store_error(call.spec, "set", &e);
                "store_error"
            }
        };
        if let Some(function) = &prepared.audit {
            self.audit(function, AuditOperation::Write, outcome, call.key, None);
        }
    }
}
