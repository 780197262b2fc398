//! Options of one call: what `#[cached]` attributes and [`LoadOptions`] say, resolved into the
//! [`Policy`] the call path follows.

use std::sync::Arc;
use std::time::Duration;

use crate::codec::Compress;
use crate::refresh_queue::Priority;
use crate::registry::FnSpec;

/// Options of one [`Cache::get_or_load`](super::Cache::get_or_load) call, as in NestJS'
/// `cache(key, fetch, options)`.
///
/// ```
/// use std::time::Duration;
/// use cache_runtime::LoadOptions;
///
/// let o = LoadOptions::ttl(Duration::from_secs(300))
///     .stale(Duration::from_secs(60))
///     .fail_safe(Duration::from_secs(3600))
///     .tag("users");
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// How long the value may be served; `None` uses the cache's default.
    pub ttl: Option<Duration>,
    /// When the value stops being fresh; `None` is half the TTL.
    pub stale: Option<Duration>,
    /// Tags stored with the entry.
    pub tags: Vec<String>,
    /// Compression for this value.
    pub compress: Compress,
    /// Past this, a stale value is served while the load goes on.
    pub timeout: Option<Duration>,
    /// Keep the entry this long past `ttl`, to serve it when the loader fails.
    pub fail_safe: Option<Duration>,
    /// Shorten the TTL by up to this many percent, at random.
    pub jitter: u8,
    /// Probabilistic early refresh with this beta.
    pub early_beta: Option<f64>,
    /// Ignore the cached value: load, store and return a new one.
    pub force_refresh: bool,
    /// How long the L1 tier keeps a copy at most: `None` the cache's `l1_ttl`, zero never.
    pub l1: Option<Duration>,
    /// Priority of background refreshes.
    pub priority: Priority,
    /// Protected health information, audited under this name: sealed at rest, audited.
    pub protected: Option<Arc<str>>,
}

impl LoadOptions {
    /// Options with the given TTL.
    pub fn ttl(ttl: Duration) -> Self {
        LoadOptions {
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    /// Sets when the value stops being fresh.
    #[must_use]
    pub fn stale(mut self, stale: Duration) -> Self {
        self.stale = Some(stale);
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets compression.
    #[must_use]
    pub fn compress(mut self, compress: Compress) -> Self {
        self.compress = compress;
        self
    }

    /// Sets the loader timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Keeps entries `grace` past their TTL and serves them when the loader fails.
    #[must_use]
    pub fn fail_safe(mut self, grace: Duration) -> Self {
        self.fail_safe = Some(grace);
        self
    }

    /// Shortens TTLs by up to `percent` at random, so keys written together expire apart.
    #[must_use]
    pub fn jitter(mut self, percent: u8) -> Self {
        self.jitter = percent.min(100);
        self
    }

    /// Refreshes early, with probability rising as expiry nears (XFetch, `beta` 1.0 typical).
    #[must_use]
    pub fn early(mut self, beta: f64) -> Self {
        self.early_beta = Some(beta);
        self
    }

    /// Sets the priority of background refreshes.
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Marks the value as protected health information: sealed at rest (the cache needs a
    /// [`Sealer`](crate::Sealer)), never read from an unsealed entry, and audited under
    /// `function`.
    #[must_use]
    pub fn protected(mut self, function: impl Into<Arc<str>>) -> Self {
        self.protected = Some(function.into());
        self
    }

    /// How long the L1 tier (when the cache has one) keeps a copy of this value at most;
    /// `Duration::ZERO` keeps none. A copy never outlives the value's freshness.
    #[must_use]
    pub fn l1(mut self, ttl: Duration) -> Self {
        self.l1 = Some(ttl);
        self
    }

    /// Bypasses the cached value for this call (NestJS' `forceRefresh`).
    #[must_use]
    pub fn force_refresh(mut self, force: bool) -> Self {
        self.force_refresh = force;
        self
    }
}

/// Everything one call needs to know, resolved from a spec or [`LoadOptions`].
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub ttl: Duration,
    /// When values turn stale; equal to `ttl` when they never do.
    pub stale: Duration,
    pub compress: Compress,
    pub phi: bool,
    pub cache_none: bool,
    pub timeout: Option<Duration>,
    pub fail_safe: Option<Duration>,
    pub jitter: u8,
    pub early_beta: Option<f64>,
    pub priority: Priority,
    pub force_refresh: bool,
    /// For protected values: the function their audit events name.
    pub audit: Option<Arc<str>>,
    /// How long L1 keeps a copy at most: `None` the cache's default, zero never.
    pub l1: Option<Duration>,
    /// The shape the value type has (`fingerprint.rs`): entries of another are misses. `None`
    /// checks nothing and writes none (the service API, generic instantiations, opted out).
    pub shape: Option<u64>,
}

impl Policy {
    pub(crate) fn of_spec(spec: &FnSpec, default_ttl: Duration) -> Policy {
        let mut ttl = spec.ttl.unwrap_or(default_ttl);
        if let Some(cap) = spec.max_ttl.filter(|cap| ttl > *cap) {
            // Literal TTLs over the cap do not compile; this is a TTL from configuration.
            if !spec
                .clamp_logged
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(
                    target: "cachette",
                    function = %spec.path(),
                    configured = ?ttl,
                    cap = ?cap,
                    "the configured TTL is over the function's compliance cap; using the cap"
                );
            }
            ttl = cap;
        }
        let stale = if spec.stale_off {
            ttl
        } else {
            spec.stale.unwrap_or(ttl / 2).min(ttl)
        };
        // A fail-safe value is data still held: the store keeps an entry `ttl` plus the grace,
        // and both together stay under the cap (literal values over it do not compile).
        let fail_safe = match spec.max_ttl {
            Some(cap) => spec
                .fail_safe
                .map(|grace| grace.min(cap.saturating_sub(ttl)))
                .filter(|grace| !grace.is_zero()),
            None => spec.fail_safe,
        };
        Policy {
            ttl,
            stale,
            compress: spec.compress,
            phi: spec.phi,
            cache_none: spec.cache_none,
            timeout: spec.timeout,
            fail_safe,
            jitter: spec.jitter,
            early_beta: spec.early_beta,
            priority: spec.priority,
            force_refresh: false,
            audit: spec.phi.then(|| Arc::from(spec.path())),
            l1: spec.l1,
            shape: None,
        }
    }

    pub(crate) fn of_options(o: &LoadOptions, default_ttl: Duration) -> Policy {
        let ttl = o.ttl.unwrap_or(default_ttl);
        Policy {
            ttl,
            stale: o.stale.unwrap_or(ttl / 2).min(ttl),
            compress: o.compress,
            phi: o.protected.is_some(),
            cache_none: false,
            timeout: o.timeout,
            fail_safe: o.fail_safe,
            jitter: o.jitter,
            early_beta: o.early_beta,
            priority: o.priority,
            force_refresh: o.force_refresh,
            audit: o.protected.clone(),
            l1: o.l1,
            shape: None,
        }
    }

    /// How long Redis keeps the entry: its TTL plus the fail-safe grace.
    pub(crate) fn retention(&self, ttl: Duration) -> Duration {
        ttl.saturating_add(self.fail_safe.unwrap_or(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Policy;
    use crate::FnSpec;

    const HOUR: Duration = Duration::from_secs(3600);

    /// A fail-safe value is held data: with a TTL from configuration, the grace is cut so that
    /// the store keeps the entry no longer than the cap (literal values over it do not compile).
    #[test]
    fn the_ttl_and_the_fail_safe_grace_together_stay_under_the_cap() {
        let two_hours = 2 * 3_600_000;
        let capped = |ttl: u64| {
            let spec = FnSpec::new("f", "m", "k")
                .fail_safe_ms(two_hours)
                .max_ttl_ms(two_hours);
            let spec = Box::leak(Box::new(spec));
            Policy::of_spec(spec, Duration::from_millis(ttl))
        };
        let policy = capped(3_600_000);
        assert_eq!((policy.ttl, policy.fail_safe), (HOUR, Some(HOUR)));
        assert_eq!(policy.retention(policy.ttl), 2 * HOUR);
        let policy = capped(3 * 3_600_000);
        assert_eq!(
            (policy.ttl, policy.fail_safe),
            (2 * HOUR, None),
            "no room left"
        );
        let uncapped = FnSpec::new("f", "m", "k").fail_safe_ms(two_hours);
        let policy = Policy::of_spec(Box::leak(Box::new(uncapped)), HOUR);
        assert_eq!(policy.fail_safe, Some(2 * HOUR), "no cap, no cut");
    }
}
