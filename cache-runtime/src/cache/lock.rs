//! The distributed lock for application code (`RedisLockService.acquire(key, ttl, wait)` of the
//! NestJS original), with fencing tokens.
//!
//! A lock with a TTL can expire while its holder still works (a GC pause, a slow disk), and then
//! two holders exist. The fencing token tells them apart: it grows with every acquisition of a
//! name, so whatever the lock protects can reject a write carrying a smaller token than one it
//! has already seen.

use std::time::{Duration, Instant};

use super::Cache;
use crate::error::StoreError;
use crate::key::escape_into;
use crate::store::Store as _;

/// Why [`Cache::lock`] did not return a guard.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another holder kept the lock for the whole wait. Wait longer, or retry later.
    #[error("lock `{name}` is held by another holder; gave up after {waited:?}")]
    Timeout {
        /// The lock's name.
        name: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The store failed; the lock was not taken.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A held lock. Release it with [`release`](Self::release); dropping it releases it too (in the
/// background, when a Tokio runtime is running), and it expires after its TTL regardless.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    cache: Cache,
    key: String,
    token: [u8; 16],
    fence: u64,
    released: bool,
}

impl LockGuard {
    /// The fencing token: larger than that of every earlier holder of this lock's name.
    pub fn fencing_token(&self) -> u64 {
        self.fence
    }

    /// Releases the lock if this guard still holds it (compare-and-delete: a guard whose lock
    /// expired and was taken by another holder releases nothing). Returns whether it did.
    pub async fn release(mut self) -> Result<bool, StoreError> {
        self.released = true;
        self.cache
            .inner
            .store
            .delete_if_equals(&self.key, &self.token)
            .await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (cache, key, token) = (
                self.cache.clone(),
                std::mem::take(&mut self.key),
                self.token,
            );
            rt.spawn(async move {
                let _ = cache.inner.store.delete_if_equals(&key, &token).await;
            });
        }
    }
}

impl Cache {
    /// Where locks and their fencing counters live: `<prefix>__cachette:lock:` and
    /// `<prefix>__cachette:fence:`. Pattern invalidation and `clear()` spare both.
    pub(crate) fn lock_key_prefixes(&self) -> [String; 2] {
        let prefix = &self.inner.prefix;
        [
            format!("{prefix}__cachette:lock:"),
            format!("{prefix}__cachette:fence:"),
        ]
    }

    /// Takes the lock `name` for `ttl`, waiting up to `wait` for another holder to release it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    ///
    /// let cache = cache_runtime::Cache::builder().build().unwrap();
    /// let guard = cache.lock("nightly-report", Duration::from_secs(30), Duration::from_secs(1)).await.unwrap();
    /// let token = guard.fencing_token(); // pass it along with every write the lock protects
    /// assert!(guard.release().await.unwrap());
    /// let next = cache.lock("nightly-report", Duration::from_secs(30), Duration::ZERO).await.unwrap();
    /// assert!(next.fencing_token() > token);
    /// # }
    /// ```
    pub async fn lock(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<LockGuard, LockError> {
        // Both keys carry the name as a hash tag, so they share a cluster slot. An empty tag
        // would not count as one: the empty name is written `~` (a `~` in a name is escaped).
        let mut tag = String::with_capacity(name.len() + 3);
        tag.push('{');
        escape_into(&mut tag, name);
        if name.is_empty() {
            tag.push('~');
        }
        tag.push('}');
        let [lock_prefix, fence_prefix] = self.lock_key_prefixes();
        let key = format!("{lock_prefix}{tag}");
        let fence_key = format!("{fence_prefix}{tag}");
        let mut token = [0u8; 16];
        crate::random::fill(&mut token);

        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(fence) = self
                .inner
                .store
                .lock_fenced(&key, &fence_key, &token, ttl)
                .await?
            {
                return Ok(LockGuard {
                    cache: self.clone(),
                    key,
                    token,
                    fence,
                    released: false,
                });
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Err(LockError::Timeout {
                    name: name.to_owned(),
                    waited,
                });
            }
            tokio::time::sleep(pause.min(wait - waited)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}
