//! A virtual clock for one cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::clock::{Clock, millis};

/// A clock a test moves forward by hand: the caches built with it
/// ([`CacheBuilder::clock`](crate::CacheBuilder::clock)) judge freshness, stale windows,
/// fail-safe grace and L1 copies by it, so a test sees five minutes pass at once.
///
/// It is the wall clock plus an offset that only grows. Entries carry their times in their
/// header, so an advance works the same on the in-process store and on Redis: an entry past
/// its expiry in virtual time is judged expired, even though Redis (whose key TTLs count in
/// real time) still holds it. What waits in real time still does: leases, lock TTLs, the
/// circuit breaker's cool-down, tag versions' and tombstones' lives in the store, and the
/// loader `timeout` (a tokio timer: pause tokio's clock with `tokio::time::pause` for that).
///
/// Each cache reads its own clock: two tests with two caches never move each other's time.
/// Clones share the offset.
///
/// The service API's [`get`](crate::Cache::get) and [`exists`](crate::Cache::exists) answer
/// what the store holds, as they do without a virtual clock; cached calls
/// ([`get_or_load`](crate::Cache::get_or_load), `#[cached]` functions) judge by this clock.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use cache_runtime::{Cache, LoadOptions, testing::TestClock};
///
/// let clock = TestClock::new();
/// let cache = Cache::builder().clock(&clock).build().unwrap();
/// let options = LoadOptions::ttl(Duration::from_secs(300));
/// let loads = AtomicU32::new(0);
/// let load = || async { Ok::<_, std::io::Error>(loads.fetch_add(1, Ordering::SeqCst)) };
///
/// assert_eq!(cache.get_or_load("k", &options, load).await.unwrap(), 0);
/// assert_eq!(cache.get_or_load("k", &options, load).await.unwrap(), 0);
/// clock.advance(Duration::from_secs(301)); // the entry has expired: loaded again
/// assert_eq!(cache.get_or_load("k", &options, load).await.unwrap(), 1);
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    offset: Arc<AtomicU64>,
}

impl TestClock {
    /// A clock that reads the wall clock until it is advanced.
    pub fn new() -> TestClock {
        TestClock::default()
    }

    /// Moves the clock forward by `by` (whole milliseconds), for every cache built with it.
    pub fn advance(&self, by: Duration) {
        let by = millis(by);
        // `fetch_update` rather than `fetch_add`: an offset saturates instead of wrapping.
        let _ = self
            .offset
            .fetch_update(Relaxed, Relaxed, |o| Some(o.saturating_add(by)));
    }

    /// How far this clock has been advanced in all.
    pub fn advanced(&self) -> Duration {
        Duration::from_millis(self.offset.load(Relaxed))
    }

    /// The clock a cache reads.
    pub(crate) fn clock(&self) -> Clock {
        Clock::offset_by(Arc::clone(&self.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_reading_and_saturates() {
        let clock = TestClock::new();
        let c = clock.clock();
        let before = crate::clock::now_ms();
        clock.advance(Duration::from_secs(10));
        assert!(c.now_ms() >= before + 10_000);
        // At a boundary the precise clock judges; far from one the coarse clock may, which is
        // never ahead of the precise one and at most two of its ticks (40 ms) behind.
        assert!(c.now_ms_for(0) >= before + 10_000);
        let coarse = c.now_ms_for(u64::MAX - 1);
        assert!(coarse + 100 >= before + 10_000 && coarse <= c.now_ms());
        assert_eq!(clock.advanced(), Duration::from_secs(10));
        clock.advance(Duration::MAX);
        assert_eq!(c.offset_ms(), u64::MAX);
        assert_eq!(c.now_ms(), u64::MAX);
    }

    #[test]
    fn clocks_are_independent() {
        let (a, b) = (TestClock::new(), TestClock::new());
        a.advance(Duration::from_secs(60));
        assert_eq!(b.clock().offset_ms(), 0);
        assert_eq!(a.clone().clock().offset_ms(), 60_000);
    }
}
