//! Freshness under a skewed workload: plain TTL against stale-while-revalidate against
//! stale-while-revalidate with early refresh.
//!
//! Run with `cargo bench -p cachette-benches --bench freshness` (`FRESHNESS_SECS` sets the seconds
//! per mode, default 60). Starts its own `redis-server` on a free loopback port. 10,000 keys with
//! Zipf(1.0) popularity, 200 concurrent callers, a loader of 20 ms, ttl 5 s. Modes: plain TTL
//! (`stale = ttl`), SWR (`stale = ttl/2`, the default), SWR + early refresh (`stale` at 90 % of the
//! ttl, XFetch with beta 1). For each mode: loader runs (and the bound of one run per key per ttl),
//! callers that waited on a load, and call latency p50 / p99 / p99.9, next to the latency of a pure
//! hit measured first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachette::{Cache, LoadOptions};
use cachette_benches::RedisServer;
use cachette_benches::stats::{Rng, pct, zipf_cdf};

const KEYS: usize = 10_000;
const CALLERS: usize = 200;
const LOAD: Duration = Duration::from_millis(20);
const TTL: Duration = Duration::from_secs(5);

async fn run_mode(
    server: &RedisServer,
    name: &str,
    opts: LoadOptions,
    secs: u64,
    cdf: Arc<Vec<f64>>,
) {
    let cache = Cache::builder()
        .redis(server.url())
        .prefix(name)
        .build()
        .expect("cache");
    let loads = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CALLERS {
        let (cache, opts, loads, cdf) = (cache.clone(), opts.clone(), loads.clone(), cdf.clone());
        tasks.spawn(async move {
            let mut rng = Rng::new(c as u64);
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let u = rng.unit();
                let rank = cdf.partition_point(|&p| p < u).min(KEYS - 1);
                let key = format!("k:{rank}");
                let loads = loads.clone();
                let t = Instant::now();
                let v: Result<u64, std::io::Error> = cache
                    .get_or_load_owned(&key, &opts, move || async move {
                        loads.fetch_add(1, Relaxed);
                        tokio::time::sleep(LOAD).await;
                        Ok(rank as u64)
                    })
                    .await;
                lat.push(t.elapsed());
                assert_eq!(v.expect("value"), rank as u64);
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = tasks.join_next().await {
        lat.extend(r.expect("caller"));
    }
    lat.sort();
    let s = cache.stats().total;
    let bound = KEYS as u64 * secs.div_ceil(TTL.as_secs());
    println!(
        "| {name} | {} | {} | {} | {} | {:.0?} | {:.0?} | {:.0?} |",
        lat.len(),
        loads.load(Relaxed),
        bound,
        s.waited,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("FRESHNESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let server = RedisServer::start();
    let cdf = Arc::new(zipf_cdf(KEYS as u64));

    // A pure hit, for reference: one hot key, same concurrency.
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("hit")
        .build()
        .expect("cache");
    let o = LoadOptions::ttl(Duration::from_secs(3600));
    let _: Result<u64, std::io::Error> =
        cache.get_or_load_owned("hot", &o, || async { Ok(1) }).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (cache, o) = (cache.clone(), o.clone());
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(500);
            for _ in 0..500 {
                let t = Instant::now();
                let _: Result<u64, std::io::Error> =
                    cache.get_or_load_owned("hot", &o, || async { Ok(1) }).await;
                lat.push(t.elapsed());
            }
            lat
        });
    }
    let mut hit = Vec::new();
    while let Some(r) = tasks.join_next().await {
        hit.extend(r.expect("hit"));
    }
    hit.sort();
    println!(
        "pure hit at {CALLERS} callers: p50 {:.0?} p99 {:.0?}\n",
        pct(&hit, 0.5),
        pct(&hit, 0.99)
    );

    println!(
        "| mode | calls | loader runs | bound (keys x ttl periods) | waited | p50 | p99 | p99.9 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let plain = LoadOptions::ttl(TTL).stale(TTL);
    let swr = LoadOptions::ttl(TTL);
    // Stale late, refreshed early: XFetch spreads the refreshes over the last part of the
    // fresh window, so a hot key is reloaded about once per ttl and never expires.
    let early = LoadOptions::ttl(TTL).stale(TTL.mul_f64(0.9)).early(1.0);
    run_mode(&server, "plain-ttl", plain, secs, cdf.clone()).await;
    run_mode(&server, "swr", swr, secs, cdf.clone()).await;
    run_mode(&server, "swr+early", early, secs, cdf).await;
}
