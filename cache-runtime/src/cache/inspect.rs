//! What an operator may see of a cache's store without seeing a value: key names with their
//! TTLs and sizes, and the store's memory use.

use super::Cache;
use crate::error::CacheError;
use crate::store::AnyStore;

/// One key of a [`KeyListing`]: its name, time to live and size; never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key without the cache's prefix (identifiers of protected functions are hashed in
    /// it already).
    pub key: String,
    /// Time left, in ms; `None` for a key without expiry.
    pub ttl_ms: Option<u64>,
    /// Its size in bytes: `MEMORY USAGE` on Redis (key, value and the server's overhead); in
    /// process, the lengths of the key and the value.
    pub bytes: u64,
}

/// What [`Cache::list_keys`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyListing {
    /// The keys found, at most the limit asked for.
    pub keys: Vec<KeyInfo>,
    /// Whether more keys match than were listed.
    pub truncated: bool,
}

/// The memory a store uses, from `INFO memory` on Redis (added up over a cluster's masters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreMemory {
    /// Bytes in use (`used_memory`; in process, the weighed size of the entries).
    pub used_bytes: u64,
    /// The configured limit (`maxmemory`; in process, the capacity); 0 when unlimited.
    pub max_bytes: u64,
}

impl Cache {
    /// Lists up to `limit` keys of this cache matching the Redis glob `pattern` (without the
    /// prefix), with their TTLs and sizes, never their values: for debugging, with SCAN (on
    /// every master of a cluster), never KEYS.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = cache_runtime::Cache::builder().prefix("app").build().unwrap();
    /// cache.set("user:1", &"Ada", std::time::Duration::from_secs(60)).await.unwrap();
    /// let listing = cache.list_keys("user:*", 10).await.unwrap();
    /// assert_eq!(listing.keys[0].key, "user:1");
    /// # }
    /// ```
    pub async fn list_keys(&self, pattern: &str, limit: usize) -> Result<KeyListing, CacheError> {
        crate::store::glob::check(pattern).map_err(|reason| CacheError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        })?;
        let prefix = &self.inner.prefix;
        let mut full = String::with_capacity(prefix.len() * 2 + pattern.len());
        for c in prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                full.push('\\');
            }
            full.push(c);
        }
        full.push_str(pattern);
        let mut listing = match &self.inner.store {
            AnyStore::Memory(m) => m.list_keys(&full, limit),
            AnyStore::Redis(r) => r.list_keys(&full, limit).await?,
            #[cfg(feature = "testing")]
            AnyStore::Faulty(f) => f.list_keys(&full, limit).await?,
        };
        for k in &mut listing.keys {
            if let Some(rest) = k.key.strip_prefix(prefix.as_str()) {
                k.key = rest.to_owned();
            }
        }
        Ok(listing)
    }

    /// The memory the store uses: `INFO memory` on Redis, the weighed entries in process.
    pub async fn store_memory(&self) -> Result<StoreMemory, CacheError> {
        match &self.inner.store {
            AnyStore::Memory(m) => Ok(m.memory()),
            AnyStore::Redis(r) => Ok(r.memory().await?),
            #[cfg(feature = "testing")]
            AnyStore::Faulty(f) => Ok(f.memory().await?),
        }
    }
}
