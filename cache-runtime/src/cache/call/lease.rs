//! The lease: one load of a key across processes. `SET NX PX` with a random 128-bit token
//! decides who loads; the holder releases it by compare-and-delete, with its write where it
//! can, so a lease never outlives its write.

use crate::cache::Cache;
use crate::store::Store as _;

/// A lease this process holds on a key: its key in the store and its token.
pub(crate) struct Lease {
    pub key: String,
    pub token: [u8; 16],
}

impl Cache {
    /// `<prefix>__cachette:lease:{<full key>}`: inside the prefix (so `clear()` removes
    /// it), and with the entry's key as its hash tag, so that on Redis Cluster the lease lives
    /// in the entry's slot and one script can write the entry and release the lease.
    fn lease_key(&self, full_key: &str) -> String {
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
        match self.inner.store.set_nx(&key, &token, ttl).await {
            Ok(true) | Err(_) => Some(Lease { key, token }),
            Ok(false) => None,
        }
    }

    /// Releases a lease by compare-and-delete: an expired lease taken over by another process
    /// stays theirs.
    pub(crate) async fn release_lease(&self, lease: &Lease) {
        let _ = self
            .inner
            .store
            .delete_if_equals(&lease.key, &lease.token)
            .await;
    }
}
