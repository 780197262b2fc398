//! cachette next to its peers: the `cached` crate 4.x (Redis and in-memory), moka, raw redis-rs,
//! `redis-benchmark`, and the codecs and compression a cached value goes through.
//!
//! Run with `cargo bench -p cachette-benches --bench peers` (release profile, about 2–3
//! minutes). No criterion: this binary starts its own `redis-server` on a free loopback port
//! (`--save "" --appendonly no`, through the test helper; 127.0.0.1:6379 is never touched) and
//! prints markdown tables.
//!
//! Sections, in the order they run:
//!
//! 1. Redis hit: a `#[cachette::cached]` hit vs a `#[cached::macros::concurrent_cached]`
//!    (`AsyncRedisCache` with a `ConnectionManager`) hit of the same value; p50/p99 at one task,
//!    ops/s at 64 tasks.
//! 2. The same 64-task cachette hit next to `redis-benchmark -t get -c 64 -n 200000 -q`, with and
//!    without `-P 16`, on the same server, reading the same bytes (the server's own limit).
//! 3. Redis command counts per hit and per miss, from `INFO commandstats` deltas and from a
//!    `MONITOR` trace (which tells what a client sent from what a Lua script ran).
//! 4. Miss + write: a cachette miss (fresh key, the loader returns at once) vs raw redis-rs
//!    `GET` then `SET` of the same bytes.
//! 5. Stampede: 1000 concurrent callers of one cold key whose body sleeps 50 ms.
//! 6. In-process hit: cachette's memory store vs moka `future::Cache::get` vs `cached`'s
//!    `#[cached]` (its default `UnboundCache`), on 1 and 2 OS threads.
//! 7. Codec: postcard vs serde_json vs MessagePack (`rmp-serde`, a dependency of the
//!    benchmarks only), encode/decode time and size.
//! 8. Compression through cachette (flate2 is not a direct dependency): stored sizes with and
//!    without compression (`STRLEN`), and the time of a write and of a hit.
//!
//! One module a section (`hit` for 1 and 2, `commands`, `miss`, `stampede`, `memory`, `codec`,
//! `compression`), over the values (`values`), the functions under test and the operations the
//! loops repeat (`functions`), the server's accounting (`accounting`) and the in-process
//! timers (`timing`); statistics and tables come from the `cachette_benches` library.
//!
//! Each A/B comparison runs its sides alternately within each repetition; cells are median
//! (min–max) over the repetitions, and ratios are computed within each repetition first.

mod accounting;
mod codec;
mod commands;
mod compression;
mod functions;
mod hit;
mod memory;
mod miss;
mod stampede;
mod timing;
mod values;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachette::Cache;
use cachette_benches::RedisServer;
use cachette_benches::table::{Table, size_label};
use redis::aio::ConnectionManager;

use crate::functions::{cached_get, cachette_get};
use crate::values::payload;

/// Repetitions of each comparison.
const REPS: usize = 5;
/// How long each side runs per repetition in the Redis hit rows.
const RUN: Duration = Duration::from_millis(1000);
/// How long each side runs per repetition in the miss rows (each side-run is followed by a
/// FLUSHDB, outside the timing, so fresh keys do not pile up).
const MISS_RUN: Duration = Duration::from_millis(500);
/// Unmeasured warm-up of each side before a scenario's repetitions.
const WARMUP: Duration = Duration::from_millis(200);
/// Concurrent tasks of the throughput rows.
const TASKS: usize = 64;
/// How long each side runs per repetition in the in-process hit rows.
const LOCAL_RUN: Duration = Duration::from_millis(250);
/// How long each codec / compression measurement runs per repetition.
const CPU_RUN: Duration = Duration::from_millis(120);
/// Calls between clock reads in the in-process measurements.
const BATCH: u64 = 256;
/// Value sizes: the postcard encoding of `Payload` is exactly this many bytes; also the id
/// the value is cached under.
const SIZES: [u64; 2] = [256, 4096];
/// Operations traced per scenario in the command-count section.
const COUNT_OPS: u64 = 200;
/// Callers of the cold key in the stampede section.
const STAMPEDE_CALLERS: usize = 1000;
/// How long the stampede body sleeps.
const STAMPEDE_BODY: Duration = Duration::from_millis(50);
/// `redis-benchmark -n`.
const RB_REQUESTS: u64 = 200_000;
/// TTL of everything written, so nothing expires during the run.
const HOUR: Duration = Duration::from_secs(3600);

/// The bench server's URL, for the `cached` stores built inside its macros.
static REDIS_URL: OnceLock<String> = OnceLock::new();

static CACHETTE_LOADS: AtomicU64 = AtomicU64::new(0);
static CACHED_LOADS: AtomicU64 = AtomicU64::new(0);
static CACHED_MEM_LOADS: AtomicU64 = AtomicU64::new(0);
static STAMPEDE_CACHETTE_RUNS: AtomicU64 = AtomicU64::new(0);
static STAMPEDE_CACHED_RUNS: AtomicU64 = AtomicU64::new(0);
/// Fresh ids for misses and stampedes: never the ids of preloaded values.
static NEXT_ID: AtomicU64 = AtomicU64::new(1_000_000);

/// Whether section `n` runs: all of them, unless `PEERS_ONLY` lists some (`PEERS_ONLY=6,7`),
/// for profiling one section at a time.
fn enabled(n: &str) -> bool {
    std::env::var("PEERS_ONLY").map_or(true, |only| only.split(',').any(|s| s.trim() == n))
}

fn fresh_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// What the Redis sections share: the server, a cachette cache on it, the raw side's
/// connection, and the preloaded entries by value size.
struct Bench<'a> {
    server: &'a RedisServer,
    cache: Cache,
    raw: ConnectionManager,
    entries: BTreeMap<u64, Vec<u8>>,
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

fn main() {
    let started = Instant::now();
    let server = RedisServer::start();
    REDIS_URL.set(server.url()).expect("set once");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let mut tables: Vec<Table> = Vec::new();
    let mut context = Vec::new();

    runtime.block_on(async {
        let cache = Cache::builder()
            .redis(server.url())
            .build()
            .expect("the Redis cache");
        // The raw side: the same settings as cachette's `RedisStore` defaults.
        let raw = cachette_benches::raw_connection(&server).await;
        let mut sync_conn = server.conn();

        // Preload both sides' entries and look at what Redis holds.
        let mut entries: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for &size in &SIZES {
            let a = cachette_get(&cache, size).await.expect("preload cachette");
            let b = cached_get(size).await.expect("preload cached");
            assert_eq!(&a, payload(size));
            assert_eq!(&b, payload(size));
            let stored: Vec<u8> = redis::cmd("GET")
                .arg(format!("peers:hit:{size}"))
                .query(&mut sync_conn)
                .expect("the cachette entry");
            assert_eq!(stored[1], 0, "postcard, not deflated");
            let cached_keys: Vec<String> = redis::cmd("SCAN")
                .arg(0)
                .arg("MATCH")
                .arg(format!("*peers-hit*{size}"))
                .arg("COUNT")
                .arg(1000)
                .query::<(u64, Vec<String>)>(&mut sync_conn)
                .expect("SCAN")
                .1;
            assert_eq!(cached_keys.len(), 1, "one cached entry: {cached_keys:?}");
            let cached_len: u64 = redis::cmd("STRLEN")
                .arg(&cached_keys[0])
                .query(&mut sync_conn)
                .expect("STRLEN");
            context.push(format!(
                "{}: cachette stores `peers:hit:{size}` as {} B (32 B entry header + {} B \
                 postcard); `cached` stores `{}` as {cached_len} B (MessagePack of \
                 `{{value, version}}`).",
                size_label(size),
                stored.len(),
                stored.len() - 32,
                cached_keys[0]
            ));
            entries.insert(size, stored);
        }
        assert_eq!(CACHETTE_LOADS.load(Relaxed), SIZES.len() as u64);
        assert_eq!(CACHED_LOADS.load(Relaxed), SIZES.len() as u64);

        let bench = Bench {
            server: &server,
            cache,
            raw,
            entries,
        };
        if enabled("1") || enabled("2") {
            hit::run(&bench, &mut tables).await;
        }
        if enabled("3") {
            commands::run(&bench, &mut tables).await;
        }
        if enabled("4") {
            miss::run(&bench, &mut tables).await;
        }
        if enabled("5") {
            stampede::run(&bench, &mut tables).await;
        }
        // The stored sizes of section 8 are read here, before the in-process sections run.
        let memory = Cache::builder().build().expect("the memory cache");
        let sizes_compressed = if enabled("8") {
            compression::stored_sizes(&bench).await
        } else {
            BTreeMap::new()
        };
        if enabled("6") {
            memory::run(&memory, &mut tables).await;
        }
        if enabled("7") {
            codec::run(&mut tables).await;
        }
        if enabled("8") {
            compression::run(&memory, &sizes_compressed, &mut tables).await;
        }
    });

    let workers = runtime.metrics().num_workers();
    println!(
        "# peers: cachette next to the `cached` crate, moka, raw redis-rs and \
         redis-benchmark\n"
    );
    println!(
        "redis-server on 127.0.0.1:{} (`--save \"\" --appendonly no`), Tokio multi-thread \
         runtime with {workers} workers for the Redis rows; {REPS} repetitions per comparison, \
         sides alternating; cells are median (min–max) over repetitions.\n",
        server.port()
    );
    for c in &context {
        println!("- {c}");
    }
    println!();
    for t in &tables {
        t.print();
    }
    println!("total run time: {:.0} s", started.elapsed().as_secs_f64());
}
