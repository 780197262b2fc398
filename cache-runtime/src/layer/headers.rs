//! The headers of a decision: `Retry-After` (RFC 9110) and `RateLimit-Limit`,
//! `RateLimit-Remaining`, `RateLimit-Reset` (IETF draft *RateLimit header fields for HTTP*).

use std::time::Duration;

use axum::http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::RateLimit;

static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Whole seconds, rounded up: a client that waits what it was told is never early.
fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `Retry-After`, at least one second (zero would invite an immediate retry).
pub(super) fn retry_after(headers: &mut HeaderMap, wait: Duration) {
    headers.insert(RETRY_AFTER, HeaderValue::from(seconds(wait).max(1)));
}

/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
pub(super) fn quota(headers: &mut HeaderMap, d: &RateLimit) {
    headers.insert(LIMIT.clone(), HeaderValue::from(d.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    headers.insert(RESET.clone(), HeaderValue::from(seconds(d.reset)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(seconds(Duration::ZERO), 0);
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_secs(2)), 2);
        assert_eq!(seconds(Duration::from_millis(2001)), 3);
        let mut h = HeaderMap::new();
        retry_after(&mut h, Duration::ZERO);
        assert_eq!(h[RETRY_AFTER], "1");
    }
}
