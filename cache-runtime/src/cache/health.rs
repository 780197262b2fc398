//! What a cache can say about its store: reachability, the breaker, queued invalidations.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::Cache;
use crate::store::{AnyStore, BreakerState};

/// A report on a cache's store, from [`Cache::health`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Health {
    /// Whether the store answered a `PING` now (always true in process).
    pub reachable: bool,
    /// The circuit breaker.
    pub breaker: BreakerState,
    /// The `PING` round trip, when it answered.
    pub round_trip: Option<Duration>,
    /// Smoothed round trip of recent commands.
    pub latency: Duration,
    /// Whether background refreshes and low-priority writes are being dropped (slow store).
    pub shedding: bool,
    /// Invalidations waiting for the store to come back.
    pub pending_invalidations: usize,
    /// Invalidations queued since the start.
    pub invalidations_queued: u64,
    /// Times the queue overflowed (and a clear of the prefix was scheduled).
    pub queue_overflows: u64,
    /// Commands that timed out.
    pub timeouts: u64,
    /// Commands that failed to reach the store (timeouts included).
    pub errors: u64,
    /// Times the breaker opened.
    pub breaker_opened: u64,
    /// Times the store came back after the breaker opened.
    pub recoveries: u64,
}

impl Cache {
    /// Checks the store and reports on it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = cache_runtime::Cache::builder().build().unwrap();
    /// let h = cache.health().await;
    /// assert!(h.reachable);
    /// assert_eq!(h.pending_invalidations, 0);
    /// # }
    /// ```
    pub async fn health(&self) -> Health {
        let pending = &self.inner.pending;
        let mut h = Health {
            reachable: true,
            breaker: BreakerState::Closed,
            round_trip: None,
            latency: Duration::ZERO,
            shedding: false,
            pending_invalidations: pending.len(),
            invalidations_queued: pending.queued.load(Relaxed),
            queue_overflows: pending.overflows.load(Relaxed),
            timeouts: 0,
            errors: 0,
            breaker_opened: 0,
            recoveries: 0,
        };
        if let AnyStore::Redis(r) = &self.inner.store {
            let started = Instant::now();
            let ping = r.ping().await;
            h.reachable = ping.is_ok();
            h.round_trip = ping.ok().map(|()| started.elapsed());
            // Applying queued invalidations is part of coming back.
            if h.reachable && !pending.is_empty() && self.flush_pending().await.is_ok() {
                h.pending_invalidations = pending.len();
            }
            let b = r.breaker();
            h.breaker = b.state();
            h.latency = b.latency();
            h.shedding = self.shedding();
            h.timeouts = b.timeouts.load(Relaxed);
            h.errors = b.errors.load(Relaxed);
            h.breaker_opened = b.opened.load(Relaxed);
            h.recoveries = b.recoveries.load(Relaxed);
        }
        h
    }

    /// Whether the store is slow enough that optional work is dropped.
    pub(crate) fn shedding(&self) -> bool {
        match &self.inner.store {
            AnyStore::Redis(r) => r.breaker().latency() > self.inner.limits.shed_latency,
            AnyStore::Memory(_) => false,
        }
    }
}
