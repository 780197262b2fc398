//! Rate limits on the cache's store: [`Cache::rate_limit`], one atomic step of GCRA per
//! request, shared by every process on the same Redis.

use std::time::Duration;

use super::Cache;
use crate::key::escape_into;
use crate::store::Store as _;
use crate::store::gcra::{MAX_WINDOW, Quota};

/// What [`Cache::rate_limit`] does when the store cannot be asked (unreachable, timing out,
/// circuit open, or a cache built disabled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitPolicy {
    /// Allow the request (the default): an outage of the cache's store does not become an
    /// outage of the service. The decision says it was not enforced.
    #[default]
    FailOpen,
    /// Deny the request: for limits that protect something that must not be overrun (a paid
    /// API, a login form). The decision says it was not enforced.
    FailClosed,
}

impl std::fmt::Display for RateLimitPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RateLimitPolicy::FailOpen => "fail open",
            RateLimitPolicy::FailClosed => "fail closed",
        })
    }
}

/// A request that [`Cache::rate_limit`] refused to count, because its arguments make no limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The limit is zero: no request could ever pass. Deny without asking, or give at least 1.
    #[error("rate limit `{key}`: a limit of 0 allows nothing; give at least 1 request")]
    ZeroLimit {
        /// The limit's key.
        key: String,
    },
    /// The window is shorter than a microsecond. Give a window of at least 1 µs.
    #[error("rate limit `{key}`: the window is zero; give a window of at least 1 µs")]
    ZeroWindow {
        /// The limit's key.
        key: String,
    },
    /// The window is longer than a year. Use a longer-lived counter than a rate limit.
    #[error("rate limit `{key}`: a window of {window:?} is longer than the most, {max:?}")]
    WindowTooLong {
        /// The limit's key.
        key: String,
        /// The window asked for.
        window: Duration,
        /// The longest window accepted.
        max: Duration,
    },
    /// The key is empty: every caller would share one limit by accident. Name what is limited
    /// (`"login:{ip}"`, `"api:{tenant}"`).
    #[error("rate limit: the key is empty; name what is limited, such as `login:<ip>`")]
    EmptyKey,
}

/// The decision on one request, from [`Cache::rate_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Whether the request may go ahead.
    pub allowed: bool,
    /// Whether the store decided (`false`: it could not be asked, and `allowed` follows the
    /// cache's [`RateLimitPolicy`]).
    pub enforced: bool,
    /// The limit asked for.
    pub limit: u32,
    /// Requests still allowed right after this one (the whole limit when not enforced and
    /// failing open, zero when failing closed).
    pub remaining: u32,
    /// When denied, how long until one request passes again; zero when allowed.
    pub retry_after: Duration,
    /// How long until the whole limit is available again.
    pub reset: Duration,
}

/// How long a request denied because the store is away is told to wait: about the circuit
/// breaker's cool-down, after which the store is tried again.
const RETRY_WHILE_AWAY: Duration = Duration::from_secs(1);

/// The quota of `limit` requests per `window` under `key`, or what makes it no limit.
pub(crate) fn check(key: &str, limit: u32, window: Duration) -> Result<Quota, RateLimitError> {
    let owned = || key.to_owned();
    if key.is_empty() {
        return Err(RateLimitError::EmptyKey);
    }
    if limit == 0 {
        return Err(RateLimitError::ZeroLimit { key: owned() });
    }
    if window < Duration::from_micros(1) {
        return Err(RateLimitError::ZeroWindow { key: owned() });
    }
    if window > MAX_WINDOW {
        return Err(RateLimitError::WindowTooLong {
            key: owned(),
            window,
            max: MAX_WINDOW,
        });
    }
    Ok(Quota::new(limit, window))
}

impl Cache {
    /// Where rate limits live: `<prefix>__cachette:rate:`. Pattern invalidation and `clear()`
    /// spare them, as they spare locks: clearing a cache must not hand out fresh quotas.
    pub(crate) fn rate_limit_prefix(&self) -> String {
        format!("{}__cachette:rate:", self.inner.prefix)
    }

    /// Counts one request against the limit `key`, `limit` requests per `window`, and says
    /// whether it may go ahead.
    ///
    /// The limit is GCRA (the generic cell rate algorithm): up to `limit` requests at once,
    /// then one every `window / limit`, so a client that waits the `retry_after` it was given
    /// gets one more request, and one that waits `reset` gets the whole limit again. Each call
    /// is one atomic step on the store (one Lua script on Redis, with the server's clock; a
    /// single key, so one slot on a cluster), so callers in any number of tasks and processes
    /// sharing the store never pass more than the limit together.
    ///
    /// The key is escaped and lives under this cache's prefix, in a namespace that
    /// [`clear`](Cache::clear) and pattern invalidation leave alone. When the store cannot be
    /// asked, the request is allowed (or denied, with
    /// [`CacheBuilder::rate_limit_policy`](crate::CacheBuilder::rate_limit_policy)) and the
    /// decision says it was not enforced; [`health`](Cache::health) reports which.
    ///
    /// On the in-process store the limit is the process's alone, and an entry evicted under
    /// memory pressure starts again with a full limit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    ///
    /// let cache = cache_runtime::Cache::builder().build().unwrap();
    /// let minute = Duration::from_secs(60);
    /// for left in (0..3).rev() {
    ///     let d = cache.rate_limit("login:10.0.0.7", 3, minute).await.unwrap();
    ///     assert!(d.allowed && d.enforced);
    ///     assert_eq!(d.remaining, left);
    /// }
    /// let denied = cache.rate_limit("login:10.0.0.7", 3, minute).await.unwrap();
    /// assert!(!denied.allowed);
    /// assert!(denied.retry_after <= Duration::from_secs(20)); // one request per 20 s
    ///
    /// let err = cache.rate_limit("login:10.0.0.7", 0, minute).await.unwrap_err();
    /// assert!(err.to_string().contains("a limit of 0"));
    /// # }
    /// ```
    pub async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateLimit, RateLimitError> {
        let quota = check(key, limit, window)?;
        if self.inner.disabled {
            return Ok(self.not_enforced(limit));
        }
        let mut full = self.rate_limit_prefix();
        escape_into(&mut full, key);
        match self.inner.store.rate_limit(&full, quota).await {
            Ok(v) => {
                let (retry_after, reset) = v.durations();
                Ok(RateLimit {
                    allowed: v.allowed,
                    enforced: true,
                    limit,
                    remaining: u32::try_from(v.remaining).unwrap_or(limit).min(limit),
                    retry_after,
                    reset,
                })
            }
            Err(e) => {
                self.store_error(None, "rate_limit", &e);
                Ok(self.not_enforced(limit))
            }
        }
    }

    /// The policy in effect when the store cannot be asked.
    pub fn rate_limit_policy(&self) -> RateLimitPolicy {
        self.inner.limits.rate_limit_policy
    }

    /// The decision when the store could not be asked: the policy's.
    fn not_enforced(&self, limit: u32) -> RateLimit {
        match self.rate_limit_policy() {
            RateLimitPolicy::FailOpen => RateLimit {
                allowed: true,
                enforced: false,
                limit,
                remaining: limit,
                retry_after: Duration::ZERO,
                reset: Duration::ZERO,
            },
            RateLimitPolicy::FailClosed => RateLimit {
                allowed: false,
                enforced: false,
                limit,
                remaining: 0,
                retry_after: RETRY_WHILE_AWAY,
                reset: RETRY_WHILE_AWAY,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CacheBuilder;

    #[tokio::test]
    async fn bad_input_is_a_typed_error_naming_the_problem() {
        let cache = CacheBuilder::new().build().unwrap();
        let s = Duration::from_secs(1);
        assert_eq!(
            cache.rate_limit("", 1, s).await,
            Err(RateLimitError::EmptyKey)
        );
        let zero = cache.rate_limit("k", 0, s).await.unwrap_err();
        assert_eq!(zero, RateLimitError::ZeroLimit { key: "k".into() });
        let window = cache.rate_limit("k", 1, Duration::ZERO).await.unwrap_err();
        assert!(window.to_string().contains("window is zero"), "{window}");
        let long = cache.rate_limit("k", 1, MAX_WINDOW * 2).await.unwrap_err();
        assert!(matches!(long, RateLimitError::WindowTooLong { .. }));
    }

    #[tokio::test]
    async fn keys_are_escaped_and_separate() {
        let cache = CacheBuilder::new().prefix("app").build().unwrap();
        let hour = Duration::from_secs(3600);
        assert!(cache.rate_limit("a:b", 1, hour).await.unwrap().allowed);
        assert!(!cache.rate_limit("a:b", 1, hour).await.unwrap().allowed);
        // `a%3Ab` would be the escaped form of `a:b` if escaping were skipped.
        assert!(cache.rate_limit("a", 1, hour).await.unwrap().allowed);
        assert!(cache.rate_limit("a%3Ab", 1, hour).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn clear_and_patterns_keep_rate_limits() {
        let cache = CacheBuilder::new().prefix("app").build().unwrap();
        let hour = Duration::from_secs(3600);
        assert!(cache.rate_limit("k", 1, hour).await.unwrap().allowed);
        cache.clear().await.unwrap();
        cache.invalidate_pattern("*").await.unwrap();
        let d = cache.rate_limit("k", 1, hour).await.unwrap();
        assert!(!d.allowed && d.enforced);
    }

    #[tokio::test]
    async fn a_disabled_cache_follows_the_policy() {
        let hour = Duration::from_secs(3600);
        let open = CacheBuilder::new().disabled(true).build().unwrap();
        let d = open.rate_limit("k", 1, hour).await.unwrap();
        assert!(d.allowed && !d.enforced);
        let closed = CacheBuilder::new()
            .disabled(true)
            .rate_limit_policy(RateLimitPolicy::FailClosed)
            .build()
            .unwrap();
        let d = closed.rate_limit("k", 1, hour).await.unwrap();
        assert!(!d.allowed && !d.enforced);
        assert_eq!(d.retry_after, RETRY_WHILE_AWAY);
    }
}
