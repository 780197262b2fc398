//! A circuit breaker per store: after repeated failures, skip the store instead of paying a
//! timeout on every call.
//!
//! Closed: every call goes through; `threshold` consecutive failures (timeouts, broken or
//! refused connections) open it. Open: calls fail at once, without touching the network, for
//! `cool_down`. Then one call is let through as a probe (half-open): its success closes the
//! breaker, its failure opens it again. Redis answering with an error (an OOM on a write, say)
//! is not a connectivity failure and does not count.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go to the store.
    Closed,
    /// Calls skip the store until the cool-down ends.
    Open,
    /// One probe call is deciding.
    HalfOpen,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

#[derive(Debug)]
pub(crate) struct Breaker {
    state: AtomicU8,
    failures: AtomicU32,
    opened_at_ms: AtomicU64,
    threshold: u32,
    cool_down: Duration,
    epoch: Instant,
    /// Store round trips, smoothed (µs, exponentially weighted), for load shedding.
    latency_us: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) opened: AtomicU64,
    pub(crate) recoveries: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            opened_at_ms: AtomicU64::new(0),
            threshold: threshold.max(1),
            cool_down,
            epoch: Instant::now(),
            latency_us: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.state.load(Relaxed) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// Whether a call may go to the store now.
    pub(crate) fn allow(&self) -> bool {
        if self.state.load(Relaxed) == CLOSED {
            return true;
        }
        let opened = self.opened_at_ms.load(Relaxed);
        let now = self.now_ms();
        if now.saturating_sub(opened) < self.cool_down.as_millis() as u64 {
            return false;
        }
        // The cool-down is over (an open breaker, or a probe that never reported back because
        // its caller was cancelled): the one caller that moves the clock probes.
        if self
            .opened_at_ms
            .compare_exchange(opened, now, Relaxed, Relaxed)
            .is_ok()
        {
            self.state.store(HALF_OPEN, Relaxed);
            return true;
        }
        false
    }

    /// Records a command that reached the store, sent at `started`.
    pub(crate) fn success(&self, started: Instant) {
        // Every call passes here: write shared cache lines only when something changes, and
        // sample the latency (1 command in 8 per thread) so that threads neither bounce the
        // line between cores nor read the clock on every hit.
        if sampled() || self.latency_us.load(Relaxed) == 0 {
            let us = started.elapsed().as_micros() as u64;
            let old = self.latency_us.load(Relaxed);
            // EWMA with weight 1/8; races only blur the average.
            self.latency_us.store(
                if old == 0 {
                    us.max(1)
                } else {
                    old - old / 8 + us / 8
                },
                Relaxed,
            );
        }
        if self.failures.load(Relaxed) != 0 {
            self.failures.store(0, Relaxed);
        }
        if self.state.load(Relaxed) != CLOSED && self.state.swap(CLOSED, Relaxed) != CLOSED {
            self.recoveries.fetch_add(1, Relaxed);
            tracing::info!(target: "cachette", "cache store reachable again; circuit closed");
        }
    }

    /// Records a failure; returns whether it opened the breaker.
    pub(crate) fn failure(&self, timeout: bool) -> bool {
        if timeout {
            self.timeouts.fetch_add(1, Relaxed);
        }
        self.errors.fetch_add(1, Relaxed);
        let failures = self.failures.fetch_add(1, Relaxed) + 1;
        let state = self.state.load(Relaxed);
        if state == HALF_OPEN || (state == CLOSED && failures >= self.threshold) {
            self.opened_at_ms.store(self.now_ms(), Relaxed);
            if self.state.swap(OPEN, Relaxed) != OPEN {
                self.opened.fetch_add(1, Relaxed);
                tracing::warn!(
                    target: "cachette",
                    failures,
                    cool_down = ?self.cool_down,
                    "cache store failing; circuit open, calls run uncached"
                );
            }
            return true;
        }
        false
    }

    /// The smoothed round-trip time of successful calls.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Relaxed))
    }
}

/// Whether this command's latency is sampled: every eighth on each thread.
fn sampled() -> bool {
    thread_local! {
        static COUNT: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
    }
    COUNT.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n % 8 == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_closes_after_a_probe() {
        let b = Breaker::new(3, Duration::from_millis(30));
        assert!(b.allow());
        b.failure(true);
        b.failure(false);
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure(true);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(), "open: calls skip the store");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one probe after the cool-down");
        assert!(!b.allow(), "only one");
        // A probe whose caller was cancelled never reports: after another cool-down, another
        // caller probes.
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "a new probe replaces the lost one");
        b.failure(true);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a failed probe opens it again"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.success(Instant::now());
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
        assert_eq!(b.recoveries.load(Relaxed), 1);
        assert_eq!(b.timeouts.load(Relaxed), 3);
    }
}
