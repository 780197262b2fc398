//! Looking at the in-process store without reading a value: key names, TTLs and sizes.

use super::MemoryStore;
use crate::cache::inspect::{KeyInfo, KeyListing, StoreMemory};
use crate::clock::now_ms;
use crate::store::glob::glob_match;

impl MemoryStore {
    /// Up to `limit` live keys matching `pattern`, each with its TTL and the bytes of its key
    /// and value; never a value.
    pub(crate) fn list_keys(&self, pattern: &str, limit: usize) -> KeyListing {
        let now = now_ms();
        let mut listing = KeyListing::default();
        for (key, slot) in self.inner.slots.iter() {
            if !slot.live_at(now) || !glob_match(pattern.as_bytes(), key.as_bytes()) {
                continue;
            }
            if listing.keys.len() >= limit {
                listing.truncated = true;
                break;
            }
            let ttl = slot.remaining(now);
            listing.keys.push(KeyInfo {
                key: key.clone(),
                ttl_ms: Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
                bytes: (key.len() + slot.value.len()) as u64,
            });
        }
        listing
    }

    /// The bytes the store holds (keys, values and bookkeeping) and its capacity.
    pub(crate) fn memory(&self) -> StoreMemory {
        self.sweep_if_due(now_ms());
        StoreMemory {
            used_bytes: self.inner.slots.weight(),
            max_bytes: self.inner.max_bytes,
        }
    }
}
