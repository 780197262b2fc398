//! What invalidation costs, and what it costs everyone else.
//!
//! Run with `cargo bench -p cachette-benches --bench invalidation`. Starts its own `redis-server`
//! on a free loopback port (127.0.0.1:6379 is never touched) and prints a markdown table:
//!
//! * **tag**: 100,000 entries carry one tag; `invalidate_tag` is timed, then a read of one of
//!   the entries is checked to be a miss. The cost does not depend on the number of entries.
//! * **pattern**: 1,000,000 keys match `bulk:*` (10,000 others do not); `invalidate_pattern`
//!   is timed while a second client, on its own connection, GETs one unrelated key in a loop;
//!   its latency percentiles during the invalidation are reported next to a baseline measured
//!   just before. SCAN COUNT and UNLINK batch are 1,000 (see `store/redis.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cachette::{Cache, LoadOptions};
use cachette_benches::RedisServer;
use cachette_benches::stats::pct;

const TAGGED: u32 = 100_000;
const PATTERN_KEYS: u32 = 1_000_000;
const OTHER_KEYS: u32 = 10_000;

/// GETs `probe` on its own connection until `stop`, returning each latency.
async fn probe_latency(url: String, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut out = Vec::with_capacity(100_000);
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let _: Option<Vec<u8>> = redis::cmd("GET")
            .arg("probe")
            .query_async(&mut conn)
            .await
            .expect("GET");
        out.push(t.elapsed());
    }
    out.sort();
    out
}

async fn fill(server: &RedisServer, prefix: &str, n: u32) {
    let client = server.client();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    for start in (0..n).step_by(10_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 10_000).min(n) {
            pipe.cmd("SET")
                .arg(format!("{prefix}{i}"))
                .arg("x")
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.expect("fill");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("b")
        .build()
        .expect("cache");

    // Tag invalidation over 100,000 entries.
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..32u32 {
        let cache = cache.clone();
        tasks.spawn(async move {
            let o = LoadOptions::ttl(Duration::from_secs(600)).tag("many");
            for i in (w..TAGGED).step_by(32) {
                let key = format!("tagged:{i}");
                let _: Result<u32, std::io::Error> =
                    cache.get_or_load(&key, &o, || async move { Ok(i) }).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    assert_eq!(cache.get::<u32>("tagged:7").await.expect("get"), Some(7));
    let t = Instant::now();
    cache.invalidate_tag("many").await.expect("invalidate_tag");
    let tag_time = t.elapsed();
    assert_eq!(
        cache.get::<u32>("tagged:7").await.expect("get"),
        None,
        "the entry is dead"
    );

    // Pattern invalidation over 1,000,000 keys with a concurrent reader.
    fill(&server, "b:bulk:", PATTERN_KEYS).await;
    fill(&server, "b:keep:", OTHER_KEYS).await;
    let stop = Arc::new(AtomicBool::new(false));
    let baseline = tokio::spawn(probe_latency(server.url(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let baseline = baseline.await.expect("probe");

    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(probe_latency(server.url(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let removed = cache.invalidate_pattern("bulk:*").await.expect("pattern");
    let pattern_time = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during = during.await.expect("probe");
    assert_eq!(removed, u64::from(PATTERN_KEYS));
    let left: u64 = redis::cmd("DBSIZE")
        .query(&mut server.conn())
        .expect("dbsize");

    println!("| measurement | result |");
    println!("|---|---|");
    println!(
        "| `invalidate_tag` over {TAGGED} entries | {tag_time:.2?} (one SET; the entries are dead) |"
    );
    println!(
        "| `invalidate_pattern` over {PATTERN_KEYS} keys | {pattern_time:.2?}, removed {removed}, {left} keys left |"
    );
    for (name, lat) in [("baseline", &baseline), ("during the pattern", &during)] {
        println!(
            "| other client's GET, {name} | n={} p50 {:.0?} p99 {:.0?} p99.9 {:.0?} max {:.0?} |",
            lat.len(),
            pct(lat, 0.50),
            pct(lat, 0.99),
            pct(lat, 0.999),
            lat.last().copied().unwrap_or_default()
        );
    }
}
