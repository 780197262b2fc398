//! What a cache did since a point of a test, and what its store holds.

use crate::cache::Cache;
use crate::error::CacheError;
use crate::stats::{Stats, StatsSnapshot};
use crate::store::{AnyStore, Store as _};

/// A point of a test: counters read later are told since then.
///
/// Built on [`Cache::stats`]: this cache's totals are this cache's alone; the counters of a
/// function (`#[cached]`) are process-wide, adding up calls through every cache, so a test that
/// asserts them should not share the function with a test running beside it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use cache_runtime::{Cache, LoadOptions, testing::Mark};
///
/// let cache = Cache::builder().build().unwrap();
/// let options = LoadOptions::ttl(Duration::from_secs(60));
/// let mark = Mark::new(&cache);
/// for _ in 0..3 {
///     cache.get_or_load("k", &options, || async { Ok::<_, std::io::Error>(1) }).await.unwrap();
/// }
/// let since = mark.since();
/// assert_eq!((since.loads, since.hits, since.misses), (1, 2, 1));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Mark {
    cache: Cache,
    at: Stats,
}

impl Mark {
    /// Marks now.
    pub fn new(cache: &Cache) -> Mark {
        Mark {
            cache: cache.clone(),
            at: cache.stats(),
        }
    }

    /// This cache's counters since the mark (durations and ratios are the current ones).
    pub fn since(&self) -> StatsSnapshot {
        difference(&self.cache.stats().total, &self.at.total)
    }

    /// The counters of the `#[cached]` function `path` (`module::path::function`, as in
    /// [`FnSpec::path`](crate::FnSpec::path)) since the mark, through any cache.
    pub fn function(&self, path: &str) -> StatsSnapshot {
        let find = |s: &Stats| {
            s.per_function
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, s)| *s)
                .unwrap_or_default()
        };
        difference(&find(&self.cache.stats()), &find(&self.at))
    }

    /// Runs of the function `path`'s body since the mark (loads and refreshes).
    pub fn loads_of(&self, path: &str) -> u64 {
        self.function(path).loads
    }
}

fn difference(now: &StatsSnapshot, then: &StatsSnapshot) -> StatsSnapshot {
    StatsSnapshot {
        hits: now.hits.saturating_sub(then.hits),
        l1_hits: now.l1_hits.saturating_sub(then.l1_hits),
        misses: now.misses.saturating_sub(then.misses),
        errors: now.errors.saturating_sub(then.errors),
        loads: now.loads.saturating_sub(then.loads),
        stale_hits: now.stale_hits.saturating_sub(then.stale_hits),
        refreshes: now.refreshes.saturating_sub(then.refreshes),
        refresh_errors: now.refresh_errors.saturating_sub(then.refresh_errors),
        fail_safe_hits: now.fail_safe_hits.saturating_sub(then.fail_safe_hits),
        waited: now.waited.saturating_sub(then.waited),
        ..*now
    }
}

/// The keys of `cache` (without its prefix) whose stored bytes contain `needle`, as the store
/// holds them: what anyone reading the store would see. For tests of protected data, that no
/// name, identifier or date reaches the store in the clear:
/// `assert!(stored_values_containing(&cache, b"Jane Doe").await?.is_empty())`.
///
/// Scans every key of the cache (SCAN on Redis) and reads each value past any injected fault.
/// A compressed entry holds deflated bytes, which a plain needle rarely matches: turn
/// compression off (`compression_threshold(None)`) in a test that must see every plaintext.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use cache_runtime::{Cache, testing::stored_values_containing};
///
/// let cache = Cache::builder().build().unwrap();
/// cache.set("note", &"Jane Doe, 1970-01-01", Duration::from_secs(60)).await.unwrap();
/// assert_eq!(stored_values_containing(&cache, b"Jane Doe").await.unwrap(), ["note"]);
/// assert!(stored_values_containing(&cache, b"John Roe").await.unwrap().is_empty());
/// # }
/// ```
pub async fn stored_values_containing(
    cache: &Cache,
    needle: &[u8],
) -> Result<Vec<String>, CacheError> {
    let listing = cache.list_keys("*", usize::MAX).await?;
    let keys: Vec<String> = listing
        .keys
        .into_iter()
        .map(|k| format!("{}{}", cache.prefix(), k.key))
        .collect();
    let store = &cache.inner.store;
    let mut found = Vec::new();
    for chunk in keys.chunks(256) {
        let values = match store {
            AnyStore::Faulty(f) => f.get_many_unfaulted(chunk).await?,
            other => other.get_many(chunk).await?,
        };
        for (key, value) in chunk.iter().zip(values) {
            if value.is_some_and(|v| contains(&v, needle)) {
                found.push(key.strip_prefix(cache.prefix()).unwrap_or(key).to_owned());
            }
        }
    }
    Ok(found)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
