//! What a cached call costs while Redis is healthy, frozen, dead and coming back, and whether
//! the process' memory stays flat under a long mixed workload.
//!
//! Run with `cargo bench -p cachette-benches --bench resilience` (release profile; about 11 minutes
//! with the defaults, most of it the soak). No criterion: this binary starts its own `redis-server`
//! on a free loopback port (`--save "" --appendonly no`, through the test helper; 127.0.0.1:6379 is
//! never touched) on a 2-worker Tokio runtime, and prints markdown tables to stdout.
//!
//! **Phases.** `RESILIENCE_TASKS` tasks (16) call one `#[cached]` function (a 1 ms sleep stands
//! in for the database) in a loop on a key set of `RESILIENCE_KEYS` (1,000) preloaded keys,
//! with 1 call in 100 on a new key (a miss), while the server goes through four phases of
//! `RESILIENCE_PHASE_SECS` (5) each: (a) healthy; (b) paused (SIGSTOP: connections stay open
//! and nothing answers); (c) dead (SIGKILL); (d) recovering (started again on the same port,
//! empty, as after a crash without persistence). The cache has the default settings: command
//! timeout 250 ms, breaker opening after 5 failures for 2 s. In the middle of (c) one key and
//! one tag are invalidated (both are queued until Redis is back). Per phase: calls (attributed
//! to the phase they ended in, so a call in flight when the server froze counts as frozen),
//! p50 / p99 / max latency, calls slower than the command timeout plus the loader time plus
//! 20 ms, errors seen by callers (an `Err` or a wrong value: must be 0), the hit ratio and
//! the store errors from `cache.stats()`, and `cache.health()` at the end of the phase (one
//! `PING`, through the breaker like any command). For (d) also: how long the restart took, and
//! from the moment the server answered, how long until the first hit and until a 100 ms window
//! reached the healthy hit ratio again (read from `cache.stats()` every 5 ms).
//!
//! **Soak.** `RESILIENCE_SOAK_SECS` (600) of a mixed workload on a fresh server and cache, the
//! same number of tasks: 85 % reads of 10,000 hot keys with Zipf(1.0) popularity, 10 % reads
//! of never-seen keys (misses), 4.5 % `invalidate(key)` of a hot key, 0.5 % `invalidate_tag` of
//! one of 1,024 tags (each hot key carries one). TTL 60 s, so hot keys also expire and are
//! refreshed in the background. Every `RESILIENCE_SAMPLE_SECS` (10): the process' resident
//! memory (`VmRSS` from `/proc/self/status`), ops/s, hit ratio, p50 / p99, errors seen by
//! callers and by the cache in that window, and Redis' `used_memory`. Latencies go into a
//! fixed-size histogram, so the harness itself allocates nothing per call that it keeps. At
//! the end: the sample after `RESILIENCE_WARMUP_SECS` (60, at most a third of the soak) against
//! the last three, and the least-squares slope after warm-up; "flat" means the last samples
//! grew less than 5 % (or 2 MiB) over the post-warm-up one.
//!
//! `RESILIENCE_ONLY=phases` or `RESILIENCE_ONLY=soak` runs one part;
//! `RESILIENCE_SOAK_SECS=30` tries the soak out quickly.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachette::{Cache, Health, cached};
use cachette_benches::RedisServer;
use cachette_benches::stats::{Rng, pct, zipf_cdf};
use serde::{Deserialize, Serialize};

/// What the loader costs: a small database query.
const LOAD: Duration = Duration::from_millis(1);
/// The cache's default command timeout; the bound a call should stay within while Redis hangs.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// Slack over `COMMAND_TIMEOUT + LOAD` before a call counts as over the bound (scheduling on a
/// busy 2-core machine, the 1 ms timer's granularity).
const SLACK: Duration = Duration::from_millis(20);
/// One call in this many, in the phases, asks for a key nobody asked for before.
const NEW_KEY_EVERY: u64 = 100;
/// How often the phases read `cache.stats()` to time the recovery.
const MONITOR_EVERY: Duration = Duration::from_millis(5);
/// A call slower than this is listed with its start time.
const SLOW: Duration = Duration::from_millis(50);
/// Slow calls that started closer together than this are one burst.
const BURST_GAP: Duration = Duration::from_millis(20);
/// Window over which the recovery's hit ratio is judged.
const RECOVERY_WINDOW: Duration = Duration::from_millis(100);

/// Hot keys of the soak, and the tags they are spread over.
const HOT_KEYS: u64 = 10_000;
const GROUPS: u64 = 1_024;

/// Runs of the loader, in either part.
static LOADS: AtomicU64 = AtomicU64::new(0);

/// The cached value: a small record, about 200 B encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    body: String,
}

/// The "database": 1 ms per query.
async fn db_load(id: u64) -> Result<Record, io::Error> {
    LOADS.fetch_add(1, Relaxed);
    tokio::time::sleep(LOAD).await;
    Ok(Record {
        id,
        name: format!("record {id}"),
        body: "x".repeat(180),
    })
}

#[cached(key = "phase:{group}:{id}", ttl = "1h", tags = ["grp:{group}"], cache = cache, skip = [cache])]
async fn phase_record(cache: &Cache, group: u64, id: u64) -> Result<Record, io::Error> {
    db_load(id).await
}

#[cached(key = "soak:{group}:{id}", ttl = "60s", tags = ["grp:{group}"], cache = cache, skip = [cache])]
async fn soak_record(cache: &Cache, group: u64, id: u64) -> Result<Record, io::Error> {
    db_load(id).await
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// A duration the way a reader compares them here: µs below 1 ms, ms above.
fn fmt_d(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else if d < Duration::from_millis(10) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    }
}

fn ratio(hits: u64, misses: u64) -> f64 {
    if hits + misses == 0 {
        0.0
    } else {
        hits as f64 / (hits + misses) as f64
    }
}

/// The process' resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// A field of `INFO memory`, in bytes.
fn redis_used_memory(server: &RedisServer) -> u64 {
    let mut conn = server.conn();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut conn)
        .expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

fn health_line(h: &Health) -> String {
    format!(
        "breaker {:?}, reachable {}, timeouts {}, store errors {}, opened {}, recoveries {}, pending invalidations {}",
        h.breaker,
        h.reachable,
        h.timeouts,
        h.errors,
        h.breaker_opened,
        h.recoveries,
        h.pending_invalidations
    )
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

/// One finished call: when it started (from the run's start), how long it took, whether the
/// caller got its correct value.
#[derive(Clone, Copy)]
struct CallRecord {
    start: Duration,
    took: Duration,
    ok: bool,
}

impl CallRecord {
    fn ended_in(&self, p: &Phase) -> bool {
        let end = self.start + self.took;
        end >= p.from && end < p.to
    }
}

/// A `cache.stats()` reading of the monitor.
#[derive(Clone, Copy)]
struct Tick {
    at: Duration,
    hits: u64,
    misses: u64,
}

struct Phase {
    name: &'static str,
    from: Duration,
    to: Duration,
    hits: u64,
    misses: u64,
    store_errors: u64,
    loads: u64,
    health: Health,
}

async fn phases(tasks: usize, keys: u64, secs: u64) {
    let mut server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("res")
        .build()
        .expect("cache");
    let phase_len = Duration::from_secs(secs);

    // Preload every key of the set, the tasks sharing it out.
    let mut preload = tokio::task::JoinSet::new();
    for t in 0..tasks as u64 {
        let cache = cache.clone();
        preload.spawn(async move {
            let mut id = t;
            while id < keys {
                let v = phase_record(&cache, id % GROUPS, id)
                    .await
                    .expect("preload");
                assert_eq!(v.id, id);
                id += tasks as u64;
            }
        });
    }
    while let Some(r) = preload.join_next().await {
        r.expect("preload task");
    }

    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let next_new = Arc::new(AtomicU64::new(keys));
    let mut workers = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (cache, stop, next_new) = (cache.clone(), stop.clone(), next_new.clone());
        workers.spawn(async move {
            let mut rng = Rng::new(t as u64);
            let mut calls = Vec::with_capacity(1 << 16);
            while !stop.load(Relaxed) {
                let r = rng.next();
                let id = if r % NEW_KEY_EVERY == 0 {
                    next_new.fetch_add(1, Relaxed)
                } else {
                    (r >> 8) % keys
                };
                let start = t0.elapsed();
                let got = phase_record(&cache, id % GROUPS, id).await;
                let took = t0.elapsed() - start;
                calls.push(CallRecord {
                    start,
                    took,
                    ok: matches!(got, Ok(ref v) if v.id == id),
                });
            }
            calls
        });
    }
    let monitor = {
        let (cache, stop) = (cache.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ticks = Vec::new();
            while !stop.load(Relaxed) {
                let s = cache.stats().total;
                ticks.push(Tick {
                    at: t0.elapsed(),
                    hits: s.hits,
                    misses: s.misses,
                });
                tokio::time::sleep(MONITOR_EVERY).await;
            }
            ticks
        })
    };

    // The controller. The server helpers block (they run `kill` and wait for the process); this
    // future runs on the main thread, not on a runtime worker, so the callers keep running.
    // A phase ends with the cache's health (one PING), then a boundary: calls are attributed
    // by their end, statistics by the readings taken at the boundaries.
    let names = [
        "(a) healthy",
        "(b) paused (SIGSTOP)",
        "(c) dead (SIGKILL)",
        "(d) recovering (restarted, empty)",
    ];
    let mut bounds: Vec<(Duration, cachette::StatsSnapshot, u64)> = Vec::new();
    let mut healths: Vec<Health> = Vec::new();
    let boundary = |bounds: &mut Vec<_>| {
        bounds.push((t0.elapsed(), cache.stats().total, LOADS.load(Relaxed)));
    };

    boundary(&mut bounds);
    tokio::time::sleep(phase_len).await;
    healths.push(cache.health().await);
    boundary(&mut bounds);
    server.pause();

    tokio::time::sleep(phase_len).await;
    healths.push(cache.health().await);
    boundary(&mut bounds);
    server.stop();

    tokio::time::sleep(phase_len / 2).await;
    // Writes go on while Redis is away: these are queued and applied when it is back.
    let key_inv = cache.invalidate("phase:0:0").await;
    let tag_inv = cache.invalidate_tag("grp:1").await;
    tokio::time::sleep(phase_len - phase_len / 2).await;
    healths.push(cache.health().await);
    let restart_began = t0.elapsed();
    server.restart();
    // The restart belongs to the dead phase: the server answers from here on.
    boundary(&mut bounds);
    let answered = bounds[3].0;

    tokio::time::sleep(phase_len).await;
    healths.push(cache.health().await);
    boundary(&mut bounds);
    let done: Vec<Phase> = (0..4)
        .map(|i| {
            let ((from, a, la), (to, b, lb)) = (bounds[i], bounds[i + 1]);
            Phase {
                name: names[i],
                from,
                to,
                hits: b.hits - a.hits,
                misses: b.misses - a.misses,
                store_errors: b.errors - a.errors,
                loads: lb - la,
                health: healths[i].clone(),
            }
        })
        .collect();

    stop.store(true, Relaxed);
    let mut calls = Vec::new();
    while let Some(r) = workers.join_next().await {
        calls.extend(r.expect("worker"));
    }
    let ticks = monitor.await.expect("monitor");

    println!(
        "\n### Phases: {tasks} tasks, {keys} preloaded keys (+1 % new), loader {}, {secs} s per phase\n",
        fmt_d(LOAD)
    );
    println!(
        "| phase | calls | p50 | p99 | max | over {} | errors seen by callers | hit ratio | loader runs | store errors |",
        fmt_d(COMMAND_TIMEOUT + LOAD + SLACK)
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let bound = COMMAND_TIMEOUT + LOAD + SLACK;
    for p in &done {
        let mut lat: Vec<Duration> = calls
            .iter()
            .filter(|c| c.ended_in(p))
            .map(|c| c.took)
            .collect();
        let errors = calls.iter().filter(|c| c.ended_in(p) && !c.ok).count();
        lat.sort();
        let over = lat.iter().filter(|&&d| d > bound).count();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {} | {} |",
            p.name,
            lat.len(),
            fmt_d(pct(&lat, 0.5)),
            fmt_d(pct(&lat, 0.99)),
            fmt_d(lat.last().copied().unwrap_or_default()),
            over,
            errors,
            ratio(p.hits, p.misses),
            p.loads,
            p.store_errors,
        );
    }
    println!();
    for p in &done {
        println!(
            "- health at the end of {}: {}",
            p.name,
            health_line(&p.health)
        );
    }
    // Where the slow calls were: in bursts (every task timing out at once) or one at a time
    // (a probe of the breaker).
    for p in &done {
        let mut slow: Vec<&CallRecord> = calls
            .iter()
            .filter(|c| c.ended_in(p) && c.took > SLOW)
            .collect();
        slow.sort_by_key(|c| c.start);
        // (start from the phase's start in s, which is negative for a call already in flight
        // when the phase began; calls; slowest)
        let mut bursts: Vec<(f64, usize, Duration)> = Vec::new();
        let mut last_start = None;
        for c in slow {
            match (bursts.last_mut(), last_start) {
                (Some(b), Some(l)) if c.start - l < BURST_GAP => {
                    b.1 += 1;
                    b.2 = b.2.max(c.took);
                }
                _ => bursts.push((c.start.as_secs_f64() - p.from.as_secs_f64(), 1, c.took)),
            }
            last_start = Some(c.start);
        }
        let list: Vec<String> = bursts
            .iter()
            .map(|(at, n, max)| format!("{at:+.3} s: {n} (max {})", fmt_d(*max)))
            .collect();
        println!(
            "- calls over {} in {}, by start from the phase's start: {}",
            fmt_d(SLOW),
            p.name,
            if list.is_empty() {
                "none".into()
            } else {
                list.join("; ")
            }
        );
    }
    println!(
        "- invalidations while dead: key {}, tag {} (queued; applied on recovery if pending is 0 at the end of (d))",
        if key_inv.is_err() {
            "failed"
        } else {
            "applied"
        },
        if tag_inv.is_err() {
            "failed"
        } else {
            "applied"
        },
    );

    // Recovery, from the monitor's readings after the server answered.
    let healthy = ratio(done[0].hits, done[0].misses);
    let base = ticks
        .iter()
        .rev()
        .find(|t| t.at <= answered)
        .copied()
        .expect("a reading before the restart");
    let first_hit = ticks
        .iter()
        .find(|t| t.at > answered && t.hits > base.hits)
        .map(|t| t.at - answered);
    let mut back = None;
    let after: Vec<&Tick> = ticks.iter().filter(|t| t.at >= answered).collect();
    for (i, w0) in after.iter().enumerate() {
        if let Some(w1) = after[i..].iter().find(|t| t.at >= w0.at + RECOVERY_WINDOW)
            && ratio(w1.hits - w0.hits, w1.misses - w0.misses) >= healthy - 0.02
        {
            back = Some(w0.at - answered);
            break;
        }
    }
    println!(
        "- restart: {} until the new server answered; first hit {} later; hit ratio back to healthy ({healthy:.3} − 0.02, over a {} window) from {} after it answered",
        fmt_d(answered - restart_began),
        first_hit.map_or("never".into(), fmt_d),
        fmt_d(RECOVERY_WINDOW),
        back.map_or("never".into(), fmt_d),
    );
    let total_errors = calls.iter().filter(|c| !c.ok).count();
    println!(
        "- calls in all: {}, errors seen by callers: {total_errors}",
        calls.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Soak
// ---------------------------------------------------------------------------------------------

/// A latency histogram with fixed buckets (8 per power of two of nanoseconds), shared by the
/// tasks and emptied at each sample, so the soak keeps no per-call memory.
struct Hist {
    buckets: Vec<AtomicU64>,
}

impl Hist {
    const SUB: u32 = 3;

    fn new() -> Self {
        Hist {
            buckets: (0..64 * 8).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn bucket(ns: u64) -> usize {
        if ns < 8 {
            return ns as usize;
        }
        let p = 63 - ns.leading_zeros();
        let sub = (ns >> (p - Self::SUB)) & 7;
        ((p - Self::SUB + 1) * 8) as usize + sub as usize
    }

    /// The upper edge of a bucket, in ns.
    fn upper(b: usize) -> u64 {
        if b < 8 {
            return b as u64;
        }
        let p = (b / 8) as u32 + Self::SUB - 1;
        let sub = (b % 8) as u64;
        ((8 + sub + 1) << (p - Self::SUB)) - 1
    }

    fn record(&self, d: Duration) {
        self.buckets[Self::bucket(d.as_nanos() as u64)].fetch_add(1, Relaxed);
    }

    /// Empties the histogram; returns its counts.
    fn take(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.swap(0, Relaxed)).collect()
    }

    fn quantile(counts: &[u64], q: f64) -> Duration {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64 * q).ceil() as u64).max(1);
        let mut acc = 0;
        for (b, &n) in counts.iter().enumerate() {
            acc += n;
            if acc >= rank {
                return Duration::from_nanos(Self::upper(b));
            }
        }
        Duration::ZERO
    }
}

#[derive(Default)]
struct SoakCounters {
    ops: AtomicU64,
    reads: AtomicU64,
    caller_errors: AtomicU64,
    invalidation_errors: AtomicU64,
    key_invalidations: AtomicU64,
    tag_invalidations: AtomicU64,
}

struct Sample {
    at: Duration,
    rss_kib: u64,
    redis_bytes: u64,
}

async fn soak(tasks: usize, secs: u64, sample_secs: u64, warmup_secs: u64) {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("soak")
        .build()
        .expect("cache");
    let cdf = Arc::new(zipf_cdf(HOT_KEYS));
    let counters = Arc::new(SoakCounters::default());
    let hist = Arc::new(Hist::new());
    let stop = Arc::new(AtomicBool::new(false));
    let next_new = Arc::new(AtomicU64::new(HOT_KEYS));

    let loads_before = LOADS.load(Relaxed);
    let t0 = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (cache, cdf, counters, hist, stop, next_new) = (
            cache.clone(),
            cdf.clone(),
            counters.clone(),
            hist.clone(),
            stop.clone(),
            next_new.clone(),
        );
        workers.spawn(async move {
            let mut rng = Rng::new(1000 + t as u64);
            let hot = |rng: &mut Rng| {
                let u = rng.unit();
                (cdf.partition_point(|&p| p < u) as u64).min(HOT_KEYS - 1)
            };
            while !stop.load(Relaxed) {
                let u = rng.unit();
                let started = Instant::now();
                if u < 0.95 {
                    let id = if u < 0.85 {
                        hot(&mut rng)
                    } else {
                        next_new.fetch_add(1, Relaxed)
                    };
                    let got = soak_record(&cache, id % GROUPS, id).await;
                    if !matches!(got, Ok(ref v) if v.id == id) {
                        counters.caller_errors.fetch_add(1, Relaxed);
                    }
                    counters.reads.fetch_add(1, Relaxed);
                } else if u < 0.995 {
                    let id = hot(&mut rng);
                    let key = format!("soak:{}:{id}", id % GROUPS);
                    if cache.invalidate(&key).await.is_err() {
                        counters.invalidation_errors.fetch_add(1, Relaxed);
                    }
                    counters.key_invalidations.fetch_add(1, Relaxed);
                } else {
                    let tag = format!("grp:{}", rng.next() % GROUPS);
                    if cache.invalidate_tag(&tag).await.is_err() {
                        counters.invalidation_errors.fetch_add(1, Relaxed);
                    }
                    counters.tag_invalidations.fetch_add(1, Relaxed);
                }
                hist.record(started.elapsed());
                counters.ops.fetch_add(1, Relaxed);
            }
        });
    }

    println!(
        "\n### Soak: {tasks} tasks, {secs} s, sample every {sample_secs} s, warm-up {warmup_secs} s\n"
    );
    println!(
        "| t, s | RSS, KiB | ops/s | hit ratio | p50 | p99 | errors seen by callers | invalidation errors | store errors | Redis used_memory, MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut samples = vec![Sample {
        at: Duration::ZERO,
        rss_kib: rss_kib(),
        redis_bytes: redis_used_memory(&server),
    }];
    let mut prev_stats = cache.stats().total;
    let (mut prev_ops, mut prev_err, mut prev_inv_err) = (0, 0, 0);
    let mut prev_at = Duration::ZERO;
    let mut k = 1;
    while prev_at.as_secs() < secs {
        let at = Duration::from_secs((k * sample_secs).min(secs));
        tokio::time::sleep_until((t0 + at).into()).await;
        let now = t0.elapsed();
        let s = cache.stats().total;
        let counts = hist.take();
        let ops = counters.ops.load(Relaxed);
        let err = counters.caller_errors.load(Relaxed);
        let inv_err = counters.invalidation_errors.load(Relaxed);
        // The server is read from this thread (not a runtime worker): a blocking INFO is fine.
        let sample = Sample {
            at: now,
            rss_kib: rss_kib(),
            redis_bytes: redis_used_memory(&server),
        };
        println!(
            "| {} | {} | {:.0} | {:.3} | {} | {} | {} | {} | {} | {:.1} |",
            at.as_secs(),
            sample.rss_kib,
            (ops - prev_ops) as f64 / (now - prev_at).as_secs_f64(),
            ratio(s.hits - prev_stats.hits, s.misses - prev_stats.misses),
            fmt_d(Hist::quantile(&counts, 0.5)),
            fmt_d(Hist::quantile(&counts, 0.99)),
            err - prev_err,
            inv_err - prev_inv_err,
            s.errors - prev_stats.errors,
            sample.redis_bytes as f64 / (1024.0 * 1024.0),
        );
        samples.push(sample);
        (prev_ops, prev_err, prev_inv_err, prev_stats, prev_at) = (ops, err, inv_err, s, now);
        k += 1;
    }
    stop.store(true, Relaxed);
    while let Some(r) = workers.join_next().await {
        r.expect("worker");
    }

    let s = cache.stats();
    let c = &counters;
    println!();
    println!(
        "- operations: {} ({} reads, {} key invalidations, {} tag invalidations); loader runs {}; hit ratio {:.3}; background refreshes {} (dropped {}); waited {}",
        c.ops.load(Relaxed),
        c.reads.load(Relaxed),
        c.key_invalidations.load(Relaxed),
        c.tag_invalidations.load(Relaxed),
        LOADS.load(Relaxed) - loads_before,
        s.total.hit_ratio,
        s.total.refreshes,
        s.refreshes_dropped,
        s.total.waited,
    );
    println!(
        "- errors seen by callers: {}; invalidation errors: {}; store errors: {}",
        c.caller_errors.load(Relaxed),
        c.invalidation_errors.load(Relaxed),
        s.total.errors,
    );
    println!(
        "- health at the end: {}",
        health_line(&cache.health().await)
    );

    // Memory after warm-up: the first sample past it against the last three.
    let warm = samples
        .iter()
        .find(|x| x.at.as_secs() >= warmup_secs)
        .expect("a sample after warm-up");
    let after: Vec<&Sample> = samples.iter().filter(|x| x.at >= warm.at).collect();
    let last: Vec<&Sample> = samples.iter().rev().take(3).collect();
    let last_mean = last.iter().map(|x| x.rss_kib as f64).sum::<f64>() / last.len() as f64;
    let peak = after
        .iter()
        .map(|x| x.rss_kib)
        .max()
        .unwrap_or(warm.rss_kib);
    let growth = last_mean - warm.rss_kib as f64;
    let growth_pct = 100.0 * growth / warm.rss_kib as f64;
    // Least-squares slope of RSS over time after warm-up, in KiB per minute.
    let n = after.len() as f64;
    let (mx, my) = (
        after.iter().map(|x| x.at.as_secs_f64()).sum::<f64>() / n,
        after.iter().map(|x| x.rss_kib as f64).sum::<f64>() / n,
    );
    let (sxy, sxx) = after.iter().fold((0.0, 0.0), |(sxy, sxx), x| {
        let dx = x.at.as_secs_f64() - mx;
        (sxy + dx * (x.rss_kib as f64 - my), sxx + dx * dx)
    });
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 } * 60.0;
    let flat = growth <= (2.0 * 1024.0f64).max(0.05 * warm.rss_kib as f64);
    println!(
        "- RSS after warm-up ({} s): {} KiB; mean of the last {}: {:.0} KiB ({:+.0} KiB, {:+.1} %); peak after warm-up {} KiB; slope {:+.1} KiB/min over {} samples: {}",
        warm.at.as_secs(),
        warm.rss_kib,
        last.len(),
        last_mean,
        growth,
        growth_pct,
        peak,
        slope,
        after.len(),
        if flat { "flat" } else { "NOT flat" },
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let only = std::env::var("RESILIENCE_ONLY").unwrap_or_default();
    let tasks = env_u64("RESILIENCE_TASKS", 16) as usize;
    let keys = env_u64("RESILIENCE_KEYS", 1_000);
    let phase_secs = env_u64("RESILIENCE_PHASE_SECS", 5);
    let soak_secs = env_u64("RESILIENCE_SOAK_SECS", 600);
    let sample_secs = env_u64("RESILIENCE_SAMPLE_SECS", 10).max(1);
    let warmup_secs = env_u64("RESILIENCE_WARMUP_SECS", 60).min(soak_secs / 3);
    assert!(
        matches!(only.as_str(), "" | "phases" | "soak"),
        "RESILIENCE_ONLY is `phases` or `soak`, not {only:?}"
    );
    if only != "soak" {
        phases(tasks, keys, phase_secs).await;
    }
    if only != "phases" {
        soak(tasks, soak_secs, sample_secs, warmup_secs).await;
    }
}
