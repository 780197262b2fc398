//! Metrics through the [`metrics`](https://docs.rs/metrics) facade, so that any exporter
//! (Prometheus, OpenTelemetry, StatsD, …) can collect them: install its recorder at the start
//! of `main`, before the first cached call.
//!
//! Names follow OpenTelemetry's conventions (dot-separated, units in the metadata; a
//! Prometheus exporter turns `cachette.lookups` into `cachette_lookups`). Labels carry the
//! function (`module::name`, or `(direct)` for calls through [`Cache`] methods)
//! and a small fixed set of values; never a key, an argument or anything from a value.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `cachette.lookups` | counter | `function`, `result`, `level` | lookups by result: `hit` and `miss` partition them; `stale` (the stale part of `hit`), `fail_safe` (expired values served after a failed load) and `error` (store errors) count beside them. `level` is `l1` for hits answered by the in-process L1 copy, `store` for the rest |
//! | `cachette.lookup.duration` | histogram, s | `function` | store read and decode, over a sample of the lookups (all of a thread's first 64, then one in eight) |
//! | `cachette.loads` | counter | `function` | runs of the function body |
//! | `cachette.load.duration` | histogram, s | `function` | how long loads took |
//! | `cachette.refreshes` | counter | `function`, `result` (`ok`, `error`) | background and inline refreshes |
//! | `cachette.waited` | counter | `function` | callers that waited for another caller's load |
//! | `cachette.breaker.state` | gauge | `prefix` | 0 closed, 1 half-open, 2 open |
//! | `cachette.invalidations.pending` | gauge | `prefix` | invalidations waiting for the store |
//! | `cachette.refreshes.dropped` | gauge | `prefix` | refreshes dropped, queue full (since start) |
//! | `cachette.store.memory.used` | gauge, By | `prefix` | `used_memory` from `INFO memory` |
//! | `cachette.store.memory.max` | gauge, By | `prefix` | `maxmemory` (0: unlimited) |
//!
//! Counters and histograms are recorded where they happen; the gauges are sampled by
//! [`record_gauges`] (the admin router's `/cache/metrics` calls it, or run
//! [`spawn_gauge_sampler`]).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram, Unit};

use crate::registry::FnSpec;
use crate::store::BreakerState;
use crate::{Cache, Health, StoreMemory};

/// The metric names, for dashboards and tests.
pub mod names {
    /// Lookups by `result`.
    pub const LOOKUPS: &str = "cachette.lookups";
    /// Sampled lookup times, in seconds.
    pub const LOOKUP_DURATION: &str = "cachette.lookup.duration";
    /// Loads (runs of the function body).
    pub const LOADS: &str = "cachette.loads";
    /// Load times, in seconds.
    pub const LOAD_DURATION: &str = "cachette.load.duration";
    /// Refreshes by `result`.
    pub const REFRESHES: &str = "cachette.refreshes";
    /// Callers that waited for another caller's load.
    pub const WAITED: &str = "cachette.waited";
    /// The circuit breaker: 0 closed, 1 half-open, 2 open.
    pub const BREAKER_STATE: &str = "cachette.breaker.state";
    /// Invalidations waiting for the store.
    pub const PENDING_INVALIDATIONS: &str = "cachette.invalidations.pending";
    /// Refreshes dropped because the queue was full.
    pub const REFRESHES_DROPPED: &str = "cachette.refreshes.dropped";
    /// The store's memory in use, in bytes.
    pub const STORE_MEMORY_USED: &str = "cachette.store.memory.used";
    /// The store's memory limit, in bytes (0: none).
    pub const STORE_MEMORY_MAX: &str = "cachette.store.memory.max";
}

/// The `function` label of calls that are not through a `#[cached]` function.
pub const DIRECT: &str = "(direct)";

/// One function's metric handles, registered with the recorder on first use.
#[derive(Debug, Default)]
pub struct FnMetrics {
    handles: OnceLock<Handles>,
}

impl FnMetrics {
    /// Unregistered handles (usable in a `static`).
    pub const fn new() -> Self {
        FnMetrics {
            handles: OnceLock::new(),
        }
    }
}

#[derive(Debug)]
struct Handles {
    hit: Counter,
    hit_l1: Counter,
    stale: Counter,
    miss: Counter,
    fail_safe: Counter,
    error: Counter,
    lookup: Histogram,
    loads: Counter,
    load: Histogram,
    refresh_ok: Counter,
    refresh_error: Counter,
    waited: Counter,
}

impl Handles {
    fn register(function: String) -> Handles {
        describe();
        let lookups = |result: &'static str, level: &'static str| {
            metrics::counter!(
                names::LOOKUPS,
                "function" => function.clone(),
                "result" => result,
                "level" => level
            )
        };
        let refreshes = |result: &'static str| metrics::counter!(names::REFRESHES, "function" => function.clone(), "result" => result);
        Handles {
            hit: lookups("hit", "store"),
            hit_l1: lookups("hit", "l1"),
            stale: lookups("stale", "store"),
            miss: lookups("miss", "store"),
            fail_safe: lookups("fail_safe", "store"),
            error: lookups("error", "store"),
            lookup: metrics::histogram!(names::LOOKUP_DURATION, "function" => function.clone()),
            loads: metrics::counter!(names::LOADS, "function" => function.clone()),
            load: metrics::histogram!(names::LOAD_DURATION, "function" => function.clone()),
            refresh_ok: refreshes("ok"),
            refresh_error: refreshes("error"),
            waited: metrics::counter!(names::WAITED, "function" => function),
        }
    }
}

/// Describes every metric to the recorder, once.
fn describe() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_counter!(names::LOOKUPS, "Cache lookups by result");
        describe_histogram!(
            names::LOOKUP_DURATION,
            Unit::Seconds,
            "Lookup time (sampled)"
        );
        describe_counter!(names::LOADS, "Runs of the cached function's body");
        describe_histogram!(names::LOAD_DURATION, Unit::Seconds, "Load time");
        describe_counter!(names::REFRESHES, "Refreshes of served values by result");
        describe_counter!(
            names::WAITED,
            "Callers that waited for another caller's load"
        );
        describe_gauge!(
            names::BREAKER_STATE,
            "Circuit breaker: 0 closed, 1 half-open, 2 open"
        );
        describe_gauge!(
            names::PENDING_INVALIDATIONS,
            "Invalidations waiting for the store"
        );
        describe_gauge!(names::REFRESHES_DROPPED, "Refreshes dropped, queue full");
        describe_gauge!(names::STORE_MEMORY_USED, Unit::Bytes, "Store memory in use");
        describe_gauge!(names::STORE_MEMORY_MAX, Unit::Bytes, "Store memory limit");
    });
}

fn handles(spec: Option<&FnSpec>) -> &Handles {
    static DIRECT_CALLS: FnMetrics = FnMetrics::new();
    match spec {
        Some(s) => s
            .metrics
            .handles
            .get_or_init(|| Handles::register(s.path())),
        None => DIRECT_CALLS
            .handles
            .get_or_init(|| Handles::register(DIRECT.to_owned())),
    }
}

/// What happened, as counted by `Cache::count_*`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Lookup { hit: bool, took: Option<Duration> },
    L1Hit,
    StaleHit,
    FailSafe,
    Error,
    Load,
    LoadTook(Duration),
    Refresh { ok: bool },
    Waited,
}

pub(crate) fn record(spec: Option<&FnSpec>, event: Event) {
    let h = handles(spec);
    match event {
        Event::Lookup { hit, took } => {
            if hit { &h.hit } else { &h.miss }.increment(1);
            if let Some(d) = took {
                h.lookup.record(d.as_secs_f64());
            }
        }
        Event::L1Hit => h.hit_l1.increment(1),
        Event::StaleHit => h.stale.increment(1),
        Event::FailSafe => h.fail_safe.increment(1),
        Event::Error => h.error.increment(1),
        Event::Load => h.loads.increment(1),
        Event::LoadTook(d) => h.load.record(d.as_secs_f64()),
        Event::Refresh { ok } => if ok { &h.refresh_ok } else { &h.refresh_error }.increment(1),
        Event::Waited => h.waited.increment(1),
    }
}

/// Samples the gauges of `cache` once: breaker state, pending invalidations, dropped
/// refreshes and the store's memory (`INFO memory`; left as it was when the store does not
/// answer).
pub async fn record_gauges(cache: &Cache) {
    sample_gauges(cache).await;
}

/// [`record_gauges`], returning what it read.
pub(crate) async fn sample_gauges(cache: &Cache) -> (Health, Option<StoreMemory>) {
    describe();
    let prefix = cache.prefix().trim_end_matches(':').to_owned();
    let health = cache.health().await;
    let breaker = match health.breaker {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    };
    metrics::gauge!(names::BREAKER_STATE, "prefix" => prefix.clone()).set(breaker);
    metrics::gauge!(names::PENDING_INVALIDATIONS, "prefix" => prefix.clone())
        .set(health.pending_invalidations as f64);
    metrics::gauge!(names::REFRESHES_DROPPED, "prefix" => prefix.clone())
        .set(cache.stats().refreshes_dropped as f64);
    // A store that did not answer a PING is not asked again.
    let memory = match health.reachable {
        true => cache.store_memory().await.ok(),
        false => None,
    };
    if let Some(memory) = memory {
        metrics::gauge!(names::STORE_MEMORY_USED, "prefix" => prefix.clone())
            .set(memory.used_bytes as f64);
        metrics::gauge!(names::STORE_MEMORY_MAX, "prefix" => prefix).set(memory.max_bytes as f64);
    }
    (health, memory)
}

/// Runs [`record_gauges`] every `every` in a task, until the returned handle is aborted.
pub fn spawn_gauge_sampler(cache: Cache, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            record_gauges(&cache).await;
        }
    })
}
