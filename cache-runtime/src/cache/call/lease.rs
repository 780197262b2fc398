//! The lease: one load of a key across processes. `SET NX PX` with a random 128-bit token
//! decides who loads; the holder releases it by compare-and-delete, with its write where it
//! can, so a lease never outlives its write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::cache::Cache;
use crate::store::Store as _;

/// A lease this process holds on a key: its key in the store and its token.
///
/// Dropped before it was released (its holder was cancelled: a client hung up, a handler's
/// future was dropped), it releases itself in a task, so that other processes do not wait
/// for it to expire.
pub(crate) struct Lease {
    pub key: String,
    pub token: [u8; 16],
    /// Whether the store holds it (it was taken, not assumed while the store was away): only
    /// then can pattern invalidation stop the load it guards, by deleting it.
    pub in_store: bool,
    /// When it was taken: it expires a lease TTL later.
    pub taken: Instant,
    cache: Cache,
    released: AtomicBool,
}

impl Lease {
    /// Records that the store was asked to release it (alone, or with a write).
    pub fn mark_released(&self) {
        self.released.store(true, Ordering::Relaxed);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.released.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime to release it from: it expires
        };
        let (cache, key, token) = (
            self.cache.clone(),
            std::mem::take(&mut self.key),
            self.token,
        );
        runtime.spawn(async move {
            let _ = cache.inner.store.delete_if_equals(&key, &token).await;
        });
    }
}

impl Cache {
    /// `<prefix>__cachette:lease:{<full key>}`: inside the prefix (so `clear()` removes
    /// it), and with the entry's key as its hash tag, so that on Redis Cluster the lease lives
    /// in the entry's slot and one script can write the entry and release the lease.
    pub(crate) fn lease_key(&self, full_key: &str) -> String {
        let prefix = self.inner.prefix.as_str();
        let mut k = String::with_capacity(prefix.len() + 19 + full_key.len());
        k.push_str(prefix);
        k.push_str("__cachette:lease:{");
        k.push_str(full_key);
        k.push('}');
        k
    }

    /// Takes the lease of `full_key`; `None` when another process holds it. Without the
    /// store nobody else can be told, so the caller loads: it gets a lease that guards nothing.
    pub(crate) async fn try_lease(&self, full_key: &str) -> Option<Lease> {
        let mut token = [0u8; 16];
        crate::random::fill(&mut token);
        let ttl = self.inner.limits.lease_ttl;
        let key = self.lease_key(full_key);
        // Before the request: the store's TTL starts no earlier.
        let taken = Instant::now();
        let released = match self.inner.store.set_nx(&key, &token, ttl).await {
            Ok(true) => false,
            // Nothing was taken, so there is nothing to release.
            Err(_) => true,
            Ok(false) => return None,
        };
        Some(Lease {
            key,
            token,
            in_store: !released,
            taken,
            cache: self.clone(),
            released: AtomicBool::new(released),
        })
    }

    /// Releases a lease by compare-and-delete: an expired lease taken over by another process
    /// stays theirs.
    pub(crate) async fn release_lease(&self, lease: &Lease) {
        lease.mark_released();
        let _ = self
            .inner
            .store
            .delete_if_equals(&lease.key, &lease.token)
            .await;
    }
}
