//! Counters and lookup-time histograms, lock-free on the hot path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Hit, miss, error and load counts, plus a lookup-time histogram.
///
/// Each counter is a relaxed atomic; recording costs a few uncontended increments. Hits and
/// misses, counted on every lookup, are split into per-thread stripes on separate cache lines,
/// so threads hitting the same function do not contend on one line; a snapshot adds the
/// stripes up, so counts stay exact.
#[derive(Debug)]
pub struct Counters {
    lookups_by_thread: [Stripe; STRIPES],
    errors: AtomicU64,
    loads: AtomicU64,
    stale: AtomicU64,
    refreshes: AtomicU64,
    refresh_errors: AtomicU64,
    fail_safe: AtomicU64,
    waited: AtomicU64,
    lookups: Histogram,
    load_times: Histogram,
}

impl Counters {
    /// Zeroed counters (usable in a `static`).
    pub const fn new() -> Self {
        Counters {
            lookups_by_thread: [const { Stripe::new() }; STRIPES],
            errors: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            refresh_errors: AtomicU64::new(0),
            fail_safe: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            lookups: Histogram::new(),
            load_times: Histogram::new(),
        }
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        &self.lookups_by_thread[stripe_index()]
    }

    pub(crate) fn hit(&self, lookup: Option<Duration>) {
        self.stripe().hits.fetch_add(1, Relaxed);
        if let Some(d) = lookup {
            self.lookups.record(d);
        }
    }

    /// A hit answered by the L1 tier (a hit too: snapshots add them to `hits`).
    pub(crate) fn l1_hit(&self) {
        self.stripe().l1_hits.fetch_add(1, Relaxed);
    }

    pub(crate) fn miss(&self, lookup: Option<Duration>) {
        self.stripe().misses.fetch_add(1, Relaxed);
        if let Some(d) = lookup {
            self.lookups.record(d);
        }
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn load(&self) {
        self.loads.fetch_add(1, Relaxed);
    }

    pub(crate) fn load_took(&self, took: Duration) {
        self.load_times.record(took);
    }

    pub(crate) fn stale_hit(&self) {
        self.stale.fetch_add(1, Relaxed);
    }

    pub(crate) fn refresh(&self, ok: bool) {
        self.refreshes.fetch_add(1, Relaxed);
        if !ok {
            self.refresh_errors.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn fail_safe(&self) {
        self.fail_safe.fetch_add(1, Relaxed);
    }

    pub(crate) fn waited(&self) {
        self.waited.fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let (hits, misses, l1_hits) =
            self.lookups_by_thread
                .iter()
                .fold((0, 0, 0), |(h, m, l), s| {
                    let l1 = s.l1_hits.load(Relaxed);
                    (
                        h + s.hits.load(Relaxed) + l1,
                        m + s.misses.load(Relaxed),
                        l + l1,
                    )
                });
        let lookups = hits + misses;
        StatsSnapshot {
            hits,
            l1_hits,
            misses,
            errors: self.errors.load(Relaxed),
            loads: self.loads.load(Relaxed),
            stale_hits: self.stale.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            refresh_errors: self.refresh_errors.load(Relaxed),
            fail_safe_hits: self.fail_safe.load(Relaxed),
            waited: self.waited.load(Relaxed),
            hit_ratio: if lookups == 0 {
                0.0
            } else {
                hits as f64 / lookups as f64
            },
            avg_lookup: self.lookups.mean(),
            p50_lookup: self.lookups.quantile(0.5),
            p99_lookup: self.lookups.quantile(0.99),
            avg_load: self.load_times.mean(),
            p50_load: self.load_times.quantile(0.5),
            p99_load: self.load_times.quantile(0.99),
        }
    }
}

/// Stripes per counter set: enough that the threads of a small machine rarely share one.
const STRIPES: usize = 8;

/// Hit and miss counts of the threads that map to one stripe. Aligned to 128 bytes: x86
/// prefetches cache lines in pairs, so 64 would still let two stripes interfere.
#[derive(Debug)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    l1_hits: AtomicU64,
}

impl Stripe {
    const fn new() -> Self {
        Stripe {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            l1_hits: AtomicU64::new(0),
        }
    }
}

/// This thread's stripe: threads take stripes in turn as they first record a lookup.
#[inline]
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    INDEX.with(|i| {
        let mut index = i.get();
        if index == usize::MAX {
            index = NEXT.fetch_add(1, Relaxed) % STRIPES;
            i.set(index);
        }
        index
    })
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Counters::snapshot`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Hits answered by the L1 tier, without a round trip; part of `hits`.
    pub l1_hits: u64,
    /// Lookups that found nothing usable (absent, or an entry that failed to decode).
    pub misses: u64,
    /// Store errors (Redis unreachable, timeouts, encode failures).
    pub errors: u64,
    /// Runs of the original function body (in the caller or in the background).
    pub loads: u64,
    /// Hits on stale values (served at once, refreshed in the background); part of `hits`.
    pub stale_hits: u64,
    /// Background refreshes run.
    pub refreshes: u64,
    /// Background refreshes whose load failed (the stale value stayed).
    pub refresh_errors: u64,
    /// Expired values served because the loader failed (fail-safe).
    pub fail_safe_hits: u64,
    /// Callers that waited for another caller's load (in this process or another).
    pub waited: u64,
    /// `hits / (hits + misses)`, 0 before the first lookup.
    pub hit_ratio: f64,
    /// Mean lookup time (store read + decode), over a sample of one lookup in eight.
    pub avg_lookup: Duration,
    /// Median lookup time, to within about 6 %, over the same sample.
    pub p50_lookup: Duration,
    /// 99th percentile lookup time, to within about 6 %, over the same sample.
    pub p99_lookup: Duration,
    /// Mean load time (runs of the function body, refreshes included).
    pub avg_load: Duration,
    /// Median load time, to within about 6 %.
    pub p50_load: Duration,
    /// 99th percentile load time, to within about 6 %.
    pub p99_load: Duration,
}

/// Statistics of a cache: its totals and each registered function's counters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// Totals of this cache.
    pub total: StatsSnapshot,
    /// Background refreshes dropped because the refresh queue was full.
    pub refreshes_dropped: u64,
    /// `(module::function, counters)` for every registered function that has been called.
    /// Function counters are process-wide: they add up calls through every cache.
    pub per_function: Vec<(String, StatsSnapshot)>,
}

/// Times one lookup in [`SAMPLE`] (after the first 64 of each thread): reading the clock twice
/// per hit costs more than the rest of the statistics, and a sample of one in eight gives the
/// same mean and percentiles.
pub(crate) struct Sampled(Option<std::time::Instant>);

/// One lookup in this many is timed, per thread.
const SAMPLE: u32 = 8;

impl Sampled {
    #[inline]
    pub(crate) fn start() -> Self {
        thread_local! {
            static TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        let timed = TICK.with(|t| {
            let n = t.get().wrapping_add(1);
            t.set(n);
            // The first lookups of a thread are all timed, so that a short run has numbers.
            n <= 64 || n % SAMPLE == 0
        });
        Sampled(timed.then(std::time::Instant::now))
    }

    #[inline]
    pub(crate) fn elapsed(&self) -> Option<Duration> {
        self.0.map(|t| t.elapsed())
    }
}

/// Log-linear buckets: 8 sub-buckets per power of two of nanoseconds.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

#[derive(Debug)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn index(nanos: u64) -> usize {
        if nanos < SUB as u64 {
            return nanos as usize;
        }
        let msb = 63 - nanos.leading_zeros();
        let shift = msb - SUB_BITS;
        let sub = ((nanos >> shift) as usize) & (SUB - 1);
        ((shift + 1) as usize) * SUB + sub
    }

    /// The upper edge of bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let shift = (i / SUB - 1) as u32;
        let sub = (i % SUB) as u128;
        let edge = ((SUB as u128 + sub + 1) << shift) - 1;
        u64::try_from(edge).unwrap_or(u64::MAX)
    }

    fn record(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::index(nanos)].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    fn mean(&self) -> Duration {
        // The count is the sum of the buckets: one atomic add fewer per record.
        let n: u64 = self.buckets.iter().map(|b| b.load(Relaxed)).sum();
        if n == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.sum_nanos.load(Relaxed) / n)
    }

    fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(Self::upper(i));
            }
        }
        Duration::from_nanos(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values() {
        for n in [
            0u64,
            1,
            7,
            8,
            9,
            15,
            16,
            100,
            1_000,
            123_456,
            10_000_000_000,
            u64::MAX,
        ] {
            let i = Histogram::index(n);
            assert!(i < BUCKETS, "{n}");
            assert!(Histogram::upper(i) >= n, "{n} above bucket {i}");
            if i > 0 {
                assert!(Histogram::upper(i - 1) < n, "{n} below bucket {i}");
            }
        }
    }

    #[test]
    fn quantiles_are_close() {
        let c = Counters::new();
        for us in 1..=1000u64 {
            c.hit(Some(Duration::from_micros(us)));
        }
        let s = c.snapshot();
        assert_eq!(s.hits, 1000);
        assert_eq!(s.hit_ratio, 1.0);
        let p99 = s.p99_lookup.as_micros() as f64;
        assert!((990.0..=990.0 * 1.07).contains(&p99), "{p99}");
        assert_eq!(s.avg_lookup, Duration::from_nanos(500_500));
    }
}
