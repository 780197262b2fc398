//! The arithmetic of rate limits: GCRA (the generic cell rate algorithm), in integer
//! microseconds. The memory store runs it as written here; the Redis store runs the same steps
//! in [`RATE_LIMIT`](super::redis) (Lua), with the server's clock.
//!
//! A limit of `limit` requests per `window` lets one request through every `interval`
//! (`window / limit`), with bursts of up to `limit` at once. The state is one number per key,
//! the *theoretical arrival time* (TAT): when the bucket would be empty again if every request
//! so far had come exactly `interval` apart. A request is allowed when, after it, the TAT is at
//! most `tolerance` (`limit × interval`) ahead of now.

use std::time::Duration;

/// The longest window accepted: a year. Bounds every time the script handles below 2^53 µs
/// (Lua numbers are doubles), with the server's clock since 1970 included.
pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// A limit in the units the algorithm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    /// Microseconds between requests at the steady rate: `window / limit`, rounded up so that
    /// `limit` requests always fit in a burst (the window then lasts at most `limit - 1` µs
    /// longer than asked).
    pub interval_us: u64,
    /// How far ahead of now the TAT may run: `limit × interval`.
    pub tolerance_us: u64,
}

impl Quota {
    /// `limit` requests per `window`. The caller has checked `limit > 0` and
    /// `0 < window <= MAX_WINDOW`.
    pub(crate) fn new(limit: u32, window: Duration) -> Quota {
        let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
        let limit = u64::from(limit.max(1));
        let interval_us = window_us.div_ceil(limit).max(1);
        Quota {
            interval_us,
            tolerance_us: interval_us.saturating_mul(limit),
        }
    }
}

/// What one request was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub allowed: bool,
    /// Requests still allowed right after this one.
    pub remaining: u64,
    /// When denied: how long until one request is allowed again. Zero when allowed.
    pub retry_after_us: u64,
    /// How long until the whole quota is available again.
    pub reset_us: u64,
}

impl Verdict {
    /// The verdict's times as durations: `(retry_after, reset)`.
    pub(crate) fn durations(&self) -> (Duration, Duration) {
        (
            Duration::from_micros(self.retry_after_us),
            Duration::from_micros(self.reset_us),
        )
    }
}

/// Decides one request at `now` against the stored `tat` (`None`: no state, or unreadable).
/// Returns the verdict and, when allowed, the TAT to store (it may be dropped once `now`
/// passes it: an absent TAT and one in the past mean the same).
pub(crate) fn decide(quota: Quota, tat: Option<u64>, now: u64) -> (Verdict, Option<u64>) {
    let Quota {
        interval_us,
        tolerance_us,
    } = quota;
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval_us;
    if new_tat > now + tolerance_us {
        let verdict = Verdict {
            allowed: false,
            remaining: 0,
            retry_after_us: new_tat - tolerance_us - now,
            reset_us: tat - now,
        };
        return (verdict, None);
    }
    let verdict = Verdict {
        allowed: true,
        remaining: (now + tolerance_us - new_tat) / interval_us,
        retry_after_us: 0,
        reset_us: new_tat - now,
    };
    (verdict, Some(new_tat))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_000_000_000_000; // a server clock in µs, as in 2025

    /// Runs `n` requests at `now`, carrying the TAT along; returns the verdicts.
    fn burst(quota: Quota, tat: &mut Option<u64>, now: u64, n: usize) -> Vec<Verdict> {
        (0..n)
            .map(|_| {
                let (v, next) = decide(quota, *tat, now);
                if next.is_some() {
                    *tat = next;
                }
                v
            })
            .collect()
    }

    #[test]
    fn exactly_the_limit_passes_in_a_burst() {
        for (limit, window) in [(1, 1_000), (3, 1_000), (7, 1_000_000), (1000, 999)] {
            let quota = Quota::new(limit, Duration::from_micros(window));
            let mut tat = None;
            let verdicts = burst(quota, &mut tat, NOW, limit as usize + 2);
            let allowed = verdicts.iter().filter(|v| v.allowed).count();
            assert_eq!(allowed, limit as usize, "limit {limit} per {window} µs");
            let remaining: Vec<u64> = verdicts.iter().map(|v| v.remaining).collect();
            let expected: Vec<u64> = (0..u64::from(limit)).rev().chain([0, 0]).collect();
            assert_eq!(remaining, expected);
            let denied = verdicts[limit as usize];
            assert_eq!(denied.retry_after_us, quota.interval_us);
            assert_eq!(denied.reset_us, quota.tolerance_us);
        }
    }

    #[test]
    fn one_request_comes_back_per_interval_and_all_after_the_reset() {
        let quota = Quota::new(4, Duration::from_millis(100));
        assert_eq!(quota.interval_us, 25_000);
        let mut tat = None;
        let first = burst(quota, &mut tat, NOW, 5);
        let denied = first[4];
        assert!(!denied.allowed);
        // At the retry-after, exactly one more.
        let later = NOW + denied.retry_after_us;
        let again = burst(quota, &mut tat, later, 2);
        assert!(again[0].allowed && !again[1].allowed);
        // At the reset the whole quota is back.
        let reset = later + again[1].reset_us;
        let full = burst(quota, &mut tat, reset, 5);
        assert_eq!(full.iter().filter(|v| v.allowed).count(), 4);
    }

    #[test]
    fn a_past_or_unreadable_tat_is_a_full_quota() {
        let quota = Quota::new(2, Duration::from_secs(1));
        let (v, _) = decide(quota, Some(NOW - 10_000_000), NOW);
        assert_eq!((v.allowed, v.remaining), (true, 1));
        let (v, _) = decide(quota, None, NOW);
        assert_eq!((v.allowed, v.remaining), (true, 1));
    }

    #[test]
    fn the_longest_window_stays_exact_in_a_double() {
        let quota = Quota::new(u32::MAX, MAX_WINDOW);
        let (_, tat) = decide(quota, None, NOW);
        let top = NOW + quota.tolerance_us + quota.interval_us;
        assert!(top < 1 << 53, "{top}");
        assert!(tat.is_some());
        // Windows shorter than the limit in µs still let `limit` through.
        let quota = Quota::new(10, Duration::from_micros(3));
        assert_eq!(
            quota,
            Quota {
                interval_us: 1,
                tolerance_us: 10
            }
        );
    }
}
