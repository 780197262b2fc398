//! The service-level API: the same caching without a macro, as NestJS' `cacheService.cache(key,
//! fetch, options)`, and direct reads and writes.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::call::{InBackground, Inline, WriteParams};
use super::{Cache, LoadOptions};
use crate::codec::Compress;
use crate::entry::{self, EntryTimes};
use crate::error::{CacheError, StoreError};
use crate::store::Store as _;

impl Cache {
    /// Returns the cached value under `key`, or runs `load`, caches its `Ok` value and returns it.
    ///
    /// The service-level form of `#[cached]`, for code that builds keys at run time. `key` gets
    /// the cache's prefix. Errors of `load` are returned untouched and not cached; when the
    /// store fails, `load` runs and its result is returned.
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        options: &LoadOptions,
        load: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_options::<Result<T, E>, F, Inline>(key, options, load)
            .await
    }

    /// [`get_or_load`](Self::get_or_load) for a loader that owns what it uses (`move || async
    /// move { .. }` over `Arc`s and owned ids): a stale value is returned at once and refreshed
    /// in the background, and a load past `timeout` goes on there and fills the cache.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use cache_runtime::{Cache, LoadOptions};
    ///
    /// let cache = Cache::builder().build().unwrap();
    /// let id = 7u64;
    /// let opts = LoadOptions::ttl(Duration::from_secs(300)).stale(Duration::from_secs(60));
    /// let name: Result<String, std::io::Error> =
    ///     cache.get_or_load_owned("user:7", &opts, move || async move { Ok(format!("user {id}")) }).await;
    /// assert_eq!(name.unwrap(), "user 7");
    /// # }
    /// ```
    pub async fn get_or_load_owned<T, E, F, Fut>(
        &self,
        key: &str,
        options: &LoadOptions,
        load: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.call_options::<Result<T, E>, F, InBackground>(key, options, load)
            .await
    }

    /// The value under `key`, or `None` when absent or undecodable.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        self.flush_pending().await?;
        let full = self.full_key(key);
        let bytes = self.inner.store.get(&full).await?;
        Ok(self.read_checked(&full, bytes).await?)
    }

    /// Stores `value` under `key` for `ttl`. A zero `ttl` stores nothing, as `ttl = 0` caches
    /// nothing in `#[cached]`.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        if ttl.is_zero() {
            return Ok(());
        }
        let full = self.full_key(key);
        let p = WriteParams {
            tags: &[],
            compress: Compress::Default,
            phi: false,
            shape: None,
        };
        let times = EntryTimes::starting(self.now_ms(), Duration::ZERO, ttl, ttl);
        let bytes = self.encode(&full, value, times, &p)?;
        let stored = self.inner.store.set(&full, bytes, ttl).await;
        self.l1_wrote(&[&full]);
        Ok(stored?)
    }

    /// Removes `key`, as [`invalidate`](Self::invalidate) does; returns whether it held a value.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.invalidate(key).await
    }

    /// Whether `key` holds a live entry (not invalidated, directly or through a tag).
    pub async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        self.flush_pending().await?;
        let full = self.full_key(key);
        let Some(bytes) = self.inner.store.get(&full).await? else {
            return Ok(false);
        };
        Ok(self.is_live(&bytes).await?)
    }

    /// How long `key` has left, or `None` when it holds no live entry. A key that another program
    /// wrote without an expiry reports `Duration::MAX`.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        if !self.exists(key).await? {
            return Ok(None);
        }
        Ok(self.inner.store.ttl(&self.full_key(key)).await?)
    }

    /// Whether `bytes` is an entry that is neither a tombstone nor dead through a tag.
    async fn is_live(&self, bytes: &[u8]) -> Result<bool, StoreError> {
        if entry::is_tombstone(bytes) {
            return Ok(false);
        }
        let Ok(raw) = entry::parse(bytes) else {
            return Ok(false);
        };
        let tags: Vec<&str> = raw.tags().map(|t| t.name).collect();
        if tags.is_empty() {
            return Ok(true);
        }
        let keys: Vec<String> = tags.iter().map(|t| self.tag_key(t)).collect();
        let versions = self.inner.store.get_many(&keys).await?;
        Ok(raw.tags_current(&tags, &versions))
    }

    /// The values under `keys`, in order, in one round trip.
    pub async fn get_many<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<T>>, CacheError> {
        self.flush_pending().await?;
        let full: Vec<String> = keys.iter().map(|k| self.full_key(k.as_ref())).collect();
        let found = self.inner.store.get_many(&full).await?;
        let mut out = Vec::with_capacity(found.len());
        for (bytes, key) in found.into_iter().zip(&full) {
            out.push(self.read_checked(key, bytes).await?);
        }
        Ok(out)
    }

    /// Stores every `(key, value)` for `ttl`, in one round trip. Nothing is written if any value
    /// fails to encode.
    pub async fn set_many<T: Serialize, K: AsRef<str>>(
        &self,
        items: &[(K, T)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let now = self.now_ms();
        let p = WriteParams {
            tags: &[],
            compress: Compress::Default,
            phi: false,
            shape: None,
        };
        if ttl.is_zero() {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(items.len());
        for (key, value) in items {
            let full = self.full_key(key.as_ref());
            let times = EntryTimes::starting(now, Duration::ZERO, ttl, ttl);
            let bytes = self.encode(&full, value, times, &p)?;
            encoded.push((full, bytes, ttl));
        }
        let keys: Vec<String> = encoded.iter().map(|(k, ..)| k.clone()).collect();
        let stored = self.inner.store.set_many(encoded).await;
        self.l1_wrote(&keys.iter().map(String::as_str).collect::<Vec<_>>());
        Ok(stored?)
    }

    /// Removes `keys` in one round trip, as [`invalidate_many`](Self::invalidate_many) does;
    /// returns how many held a value.
    pub async fn delete_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64, CacheError> {
        self.invalidate_many(keys).await
    }
}
