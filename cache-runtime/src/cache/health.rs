//! What a cache can say about its store: reachability, the breaker, queued invalidations.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::Cache;
use super::rate_limit::RateLimitPolicy;
use crate::store::{AnyStore, BreakerState};

/// A report on a cache's store, from [`Cache::health`].
///
/// Its `Display` is one line, for a program to print at startup: the store, the prefix and
/// the state, such as `store redis://10.0.0.1:6379/, prefix "app:": ok (ping 412.0µs)`
/// or `store none, no prefix: disabled: CACHE_DEFAULT_TTL="abc" is not a number of seconds`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Health {
    /// The store, with any password or token redacted: `in-process memory`, a Redis URL
    /// (`redis://:***@host:6379/0`), `cluster ` and the nodes' URLs, or `none`.
    pub store: String,
    /// The key prefix (empty, or ending in `:`).
    pub prefix: String,
    /// Why nothing is cached, when nothing is: `CACHE_DISABLED`, or the configuration error
    /// the global cache met when it was built from the environment.
    pub disabled: Option<String>,
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
    /// What [`Cache::rate_limit`] decides while the store cannot be asked.
    pub rate_limit_policy: RateLimitPolicy,
    /// Whether rate limits are enforced now: the store answered and the cache is not disabled.
    /// When not, every decision follows `rate_limit_policy`.
    pub rate_limits_enforced: bool,
    /// The L1 tier, when the cache has one.
    pub l1: Option<L1Health>,
}

/// The L1 tier's state, in [`Health`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct L1Health {
    /// Whether copies are served now: the backplane proved, within the propagation bound,
    /// that it carries every message. When not, every call reads the store.
    pub serving: bool,
    /// Copies kept.
    pub copies: usize,
    /// Their weight, in bytes.
    pub bytes: u64,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store {}, ", self.store)?;
        match self.prefix.as_str() {
            "" => f.write_str("no prefix: ")?,
            prefix => write!(f, "prefix {prefix:?}: ")?,
        }
        if let Some(reason) = &self.disabled {
            // `rate_limits_enforced` says the rest: a disabled cache enforces nothing.
            return write!(f, "disabled: {reason}");
        }
        if !self.reachable {
            let limits = match self.rate_limit_policy {
                RateLimitPolicy::FailOpen => "rate limits not enforced (fail open: all allowed)",
                RateLimitPolicy::FailClosed => "rate limits not enforced (fail closed: all denied)",
            };
            let s = if self.errors == 1 { "" } else { "s" };
            return write!(
                f,
                "unreachable, calls run uncached, {limits} (breaker {:?}, {} failed command{s})",
                self.breaker, self.errors
            );
        }
        f.write_str("ok")?;
        let mut notes = Vec::new();
        if let Some(rt) = self.round_trip {
            notes.push(format!("ping {rt:.1?}"));
        }
        if self.breaker != BreakerState::Closed {
            notes.push(format!("breaker {:?}", self.breaker));
        }
        if self.pending_invalidations > 0 {
            notes.push(format!(
                "{} invalidations pending",
                self.pending_invalidations
            ));
        }
        if self.shedding {
            notes.push("slow: shedding background refreshes".to_owned());
        }
        if let Some(l1) = &self.l1 {
            notes.push(if l1.serving {
                format!("L1 {} copies", l1.copies)
            } else {
                "L1 off until its channel is back".to_owned()
            });
        }
        // Failing open is the default and goes unsaid; failing closed turns an outage into
        // refused requests, which whoever reads this line should know in advance.
        if self.rate_limit_policy == RateLimitPolicy::FailClosed {
            notes.push("rate limits fail closed".to_owned());
        }
        if !notes.is_empty() {
            write!(f, " ({})", notes.join(", "))?;
        }
        Ok(())
    }
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
            store: self.inner.store_label.clone(),
            prefix: self.inner.prefix.clone(),
            disabled: self.inner.disabled_reason.clone(),
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
            rate_limit_policy: self.rate_limit_policy(),
            rate_limits_enforced: !self.inner.disabled,
            l1: self.inner.l1.as_ref().map(|l1| {
                // Asking is a use: the backplane starts if no call has started it yet.
                l1.backplane.start(std::sync::Arc::downgrade(&self.inner));
                let (copies, bytes) = l1.size();
                L1Health {
                    serving: l1.usable(),
                    copies,
                    bytes,
                }
            }),
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
            h.rate_limits_enforced &= h.reachable;
        }
        #[cfg(feature = "testing")]
        if let AnyStore::Faulty(f) = &self.inner.store {
            let b = f.breaker();
            h.reachable = f.ping().await.is_ok();
            h.breaker = b.state();
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
            #[cfg(feature = "testing")]
            AnyStore::Faulty(f) => f.breaker().latency() > self.inner.limits.shed_latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CacheBuilder;

    #[tokio::test]
    async fn one_line_names_the_store_the_prefix_and_the_state() {
        let cache = CacheBuilder::new().prefix("app").build().unwrap();
        assert_eq!(
            cache.health().await.to_string(),
            "store in-process memory, prefix \"app:\": ok"
        );

        let err = CacheBuilder::from_env_with(|n| (n == "CACHE_DEFAULT_TTL").then(|| "abc".into()))
            .unwrap_err();
        let cache = CacheBuilder::new().build_disabled(err.to_string());
        let h = cache.health().await;
        assert_eq!(
            h.to_string(),
            "store none, no prefix: disabled: CACHE_DEFAULT_TTL=\"abc\" is not a number of seconds"
        );
        assert!(!h.rate_limits_enforced);
        assert!(h.disabled.is_some());

        let h = CacheBuilder::new()
            .disabled(true)
            .build()
            .unwrap()
            .health()
            .await;
        assert!(h.to_string().contains(": disabled: CACHE_DISABLED"), "{h}");
    }

    #[tokio::test]
    async fn an_unreachable_store_says_calls_run_uncached() {
        let mut h = CacheBuilder::new().build().unwrap().health().await;
        h.store = "redis://127.0.0.1:1/".into();
        h.reachable = false;
        h.breaker = BreakerState::Open;
        h.errors = 5;
        assert_eq!(
            h.to_string(),
            "store redis://127.0.0.1:1/, no prefix: unreachable, calls run uncached, rate limits \
             not enforced (fail open: all allowed) (breaker Open, 5 failed commands)"
        );
        h.rate_limit_policy = RateLimitPolicy::FailClosed;
        assert!(h.to_string().contains("(fail closed: all denied)"), "{h}");
        h.reachable = true;
        h.breaker = BreakerState::Closed;
        h.round_trip = None;
        assert_eq!(
            h.to_string(),
            "store redis://127.0.0.1:1/, no prefix: ok (rate limits fail closed)"
        );
        h.rate_limit_policy = RateLimitPolicy::FailOpen;
        h.reachable = true;
        h.breaker = BreakerState::HalfOpen;
        h.round_trip = Some(Duration::from_micros(412));
        h.pending_invalidations = 3;
        assert_eq!(
            h.to_string(),
            "store redis://127.0.0.1:1/, no prefix: ok (ping 412.0µs, breaker HalfOpen, \
             3 invalidations pending)"
        );
    }
}
