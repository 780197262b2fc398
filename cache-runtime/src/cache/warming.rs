//! The warmers registered with a cache, and running them.

use super::Cache;
use crate::warm::{WarmReport, Warmers};

impl Cache {
    /// The warmers registered with [`CacheBuilder::warmer`](crate::CacheBuilder::warmer).
    pub fn warmers(&self) -> &Warmers {
        &self.inner.warmers
    }

    /// Runs the registered warmers (at most their concurrency's keys at once) and reports:
    /// keys warmed, keys failed, time taken. Call it at startup, before taking traffic; the
    /// admin router's `POST /cache/warm` calls it too. A failing key is counted and logged,
    /// and stops nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use cache_runtime::{Cache, Warmer};
    ///
    /// let cache = Cache::builder()
    ///     .warmer(Warmer::each("squares", 1..=3u64, |cache: Cache, n| async move {
    ///         cache.set(&format!("square:{n}"), &(n * n), Duration::from_secs(60)).await
    ///     }))
    ///     .build()
    ///     .unwrap();
    /// let report = cache.warm().await;
    /// assert_eq!((report.warmed, report.failed), (3, 0));
    /// assert_eq!(cache.get::<u64>("square:3").await.unwrap(), Some(9));
    /// # }
    /// ```
    pub async fn warm(&self) -> WarmReport {
        self.inner.warmers.run(self).await
    }
}
