//! The L1 tier on the path of a call: serve a copy kept in this process (no round trip, and
//! no decoding for values that can be cloned), keep a copy of a fresh entry read from the
//! store, and drop the copies of what this process writes.
//!
//! Protected (PHI) values are kept as the sealed bytes the store holds, opened on every hit
//! and audited like a store hit: decrypted health data stays in the caller's hands only.

use std::sync::Arc;

use bytes::Bytes;

use super::lookup::Read;
use super::outcome::{Keep, Outcome};
use super::request::Call;
use crate::cache::Cache;
use crate::clock::millis;
use crate::entry;
use crate::l1::{Notice, Stamp};

impl Cache {
    /// The stamp of a call that may use L1, taken before it reads anything; `None` when it
    /// may not (no L1, `l1 = false`, a forced refresh).
    pub(crate) fn l1_stamp(&self, call: Call<'_>) -> Option<Stamp> {
        let l1 = self.l1_for(call)?;
        l1.backplane.start(Arc::downgrade(&self.inner));
        Some(l1.stamp(call.key, call.tags))
    }

    /// The L1 tier, if `call` may use it (not `l1 = false`, not a forced refresh).
    fn l1_for(&self, call: Call<'_>) -> Option<&crate::l1::L1> {
        let l1 = self.inner.l1.as_ref()?;
        let off = call.policy.force_refresh || call.policy.l1.is_some_and(|t| t.is_zero());
        (!off).then_some(l1)
    }

    /// The call's value from an L1 copy, if one may be served: no invalidation since it was
    /// read, fresh, the channel proven, and no invalidation of this process waiting for the
    /// store. A hit needs no stamp of its own (the copy carries the one it was kept with).
    pub(crate) fn l1_serve<O: Outcome>(
        &self,
        call: Call<'_>,
        keep: Option<&Keep<O::Value>>,
    ) -> Option<O> {
        let l1 = self.l1_for(call)?;
        if !self.inner.pending.is_empty() {
            return None;
        }
        let copy = l1.get(call.key)?;
        if !copy.tagged(call.tags) {
            return None;
        }

        // Protected values are opened on every hit, never kept decoded.
        let keep = keep.filter(|_| !call.policy.phi);
        let kept = keep.and_then(|k| copy.decoded.get().and_then(|any| (k.from_any)(&**any)));
        let value = match kept {
            Some(value) => value,
            None => {
                let raw = entry::parse(&copy.bytes).ok()?;
                // Another function's copy of the same key may hold another shape (a value
                // kept decoded is of this very type: its downcast succeeded).
                if !super::lookup::of_shape(&raw, call.policy.shape) {
                    return None;
                }
                let value = self
                    .open_payload::<O::Value>(call.key, &raw, call.policy.phi)
                    .ok()?;
                if let Some(k) = keep {
                    let _ = copy.decoded.set((k.to_any)(&value));
                }
                value
            }
        };
        let out = O::from_cached(value);
        self.count_l1_hit(call.spec);
        self.audit_lookup(call, true);
        Some(out)
    }

    /// Keeps a copy of the fresh entry `read` found, until it stops being fresh or the
    /// function's L1 TTL ends, whichever comes first.
    pub(crate) fn l1_keep(&self, call: Call<'_>, read: &Read, fresh_until_ms: u64) {
        let (Some(stamp), Some(l1), Some(bytes)) =
            (call.l1, self.inner.l1.as_ref(), read.observed.as_ref())
        else {
            return;
        };
        let ttl = call.policy.l1.unwrap_or(self.inner.l1_ttl);
        let until = self
            .now_ms()
            .saturating_add(millis(ttl))
            .min(fresh_until_ms);
        l1.keep(call.key, Bytes::clone(bytes), until, stamp, call.tags);
    }

    /// This process wrote (or may have written) `keys`: its own copies go at once, and the
    /// other processes are told, without waiting.
    pub(crate) fn l1_wrote(&self, keys: &[&str]) {
        let Some(l1) = &self.inner.l1 else { return };
        let notice = Notice::Keys(keys.iter().map(|k| (*k).to_owned()).collect());
        l1.forget(&notice);
        l1.backplane.start(Arc::downgrade(&self.inner));
        l1.backplane.notify(vec![notice]);
    }
}
