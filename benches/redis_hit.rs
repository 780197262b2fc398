//! What a `#[cached]` hit on Redis costs next to the same read written by hand with redis-rs.
//!
//! Run with `cargo bench -p cachette-benches --bench redis_hit` (release profile). No criterion:
//! this binary starts its own `redis-server` on a free loopback port (`--save "" --appendonly no`,
//! through the test helper; 127.0.0.1:6379 is never touched), runs every comparison interleaved in
//! one process on a multi-thread Tokio runtime, and prints a markdown table to stdout.
//!
//! The two sides, per operation:
//!
//! * **A** `get_value(&cache, id).await`, a `#[cached]` function whose entry is in Redis: the
//!   macro renders the key `bench:{id}`, cachette sends `GET` through its `ConnectionManager`,
//!   parses the entry header, decodes the postcard payload into `Payload` and records the hit
//!   in its statistics. The function body never runs (checked: zero loads, misses and errors
//!   while measuring).
//! * **B** the hand-written equivalent: `format!("bench:{id}")`, `GET` through a
//!   `redis::aio::ConnectionManager` configured like cachette's (same response and connection
//!   timeouts, retries and delay) into a `Vec<u8>`, then `postcard::from_bytes::<Payload>` on
//!   the bytes after the entry header (the header length is found once, before measuring).
//!
//! Both sides read the same key, so they move the same bytes (checked before measuring: the
//! stored entry is the header plus exactly the postcard encoding of the value, uncompressed).
//!
//! Each A/B pair runs `REPS` times, 2 s per side, alternating which side goes first; the table
//! gives the median and min–max over repetitions, and the A/B ratio computed within each
//! repetition pair.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cachette::{Cache, cached};
use cachette_benches::RedisServer;
use cachette_benches::ab::{Metric, SeqRun, run_concurrent, run_sequential};
use cachette_benches::payload::{Payload, make_payload};
use cachette_benches::table::{cell, ops_cell, size_label};
use redis::aio::ConnectionManager;

/// Repetitions of each A/B pair.
const REPS: usize = 5;
/// How long each side runs per repetition.
const RUN: Duration = Duration::from_secs(2);
/// Unmeasured warm-up of each side before a scenario's repetitions.
const WARMUP: Duration = Duration::from_millis(300);
/// Concurrent tasks of the throughput runs.
const TASKS: usize = 64;
/// How long the in-process measurements (memory store, decode alone) run per repetition.
const LOCAL_RUN: Duration = Duration::from_millis(600);
/// Calls between clock reads in the in-process measurements.
const BATCH: u64 = 1000;
/// Value sizes: the postcard encoding of the `Payload` is exactly this many bytes. The size is
/// also the `id` the value is cached under.
const SIZES: [u64; 2] = [256, 4096];

/// Runs of the function body; only the preloading calls may run it.
static LOADS: AtomicU64 = AtomicU64::new(0);

// `compress = false`: the 4 KiB value is above cachette's default 1 KiB compression threshold;
// without it the stored entry would be deflated and A would read fewer bytes than the value.
#[cached(key = "bench:{id}", ttl = "1h", cache = cache, skip = [cache], compress = false)]
async fn get_value(cache: &Cache, id: u64) -> Result<Payload, std::io::Error> {
    LOADS.fetch_add(1, Ordering::Relaxed);
    Ok(make_payload(id))
}

/// Side B: `GET` with redis-rs, then postcard on the payload part of the entry.
async fn raw_get(conn: &mut ConnectionManager, id: u64, header_len: usize) -> Payload {
    let key = format!("bench:{id}");
    let bytes: Option<Vec<u8>> = redis::cmd("GET")
        .arg(&key)
        .query_async(conn)
        .await
        .expect("GET on the bench server");
    let bytes = bytes.expect("the preloaded key is present");
    postcard::from_bytes(&bytes[header_len..]).expect("the payload decodes")
}

/// One side of a comparison, cloned into every task.
#[derive(Clone)]
enum Side {
    Cached(Cache),
    Raw(ConnectionManager, usize),
}

impl Side {
    async fn hit(&mut self, id: u64) -> Payload {
        match self {
            Side::Cached(cache) => get_value(cache, id).await.expect("the cached call"),
            Side::Raw(conn, header_len) => raw_get(conn, id, *header_len).await,
        }
    }
}

/// A side reading one id, as the measuring loops run it.
#[derive(Clone)]
struct Hit(Side, u64);

impl cachette_benches::ab::Side for Hit {
    async fn call(&mut self) {
        black_box(self.0.hit(self.1).await);
    }
}

/// Per-repetition metrics of both sides of a sequential comparison.
#[derive(Default)]
struct SeqPairs {
    a: Vec<SeqRun>,
    b: Vec<SeqRun>,
}

/// Body runs, misses and errors of the Redis cache, to check a measurement was hits only.
fn misses(cache: &Cache) -> (u64, u64, u64) {
    let s = cache.stats().total;
    (LOADS.load(Ordering::Relaxed), s.misses, s.errors)
}

fn main() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let workers = runtime.metrics().num_workers();
    let started = Instant::now();
    let mut table = Vec::new();
    let mut notes = Vec::new();

    runtime.block_on(async {
        let cache = Cache::builder()
            .redis(server.url())
            .build()
            .expect("the Redis cache");
        // The raw side: the same settings as cachette's `RedisStore` defaults.
        let conn = cachette_benches::raw_connection(&server).await;

        // Preload every value with one call each and check what Redis holds.
        let mut sync_conn = server.conn();
        let mut header_lens = Vec::new();
        for &size in &SIZES {
            let value = get_value(&cache, size).await.expect("the preloading call");
            let stored: Vec<u8> = redis::cmd("GET")
                .arg(format!("bench:{size}"))
                .query(&mut sync_conn)
                .expect("the preloaded entry");
            // Header: version, flags, 3 × u64 times, u32 load time, u16 tag count, tags.
            assert_eq!(stored[0], 1, "entry format version");
            assert_eq!(stored[1], 0, "postcard, not deflated");
            let tags = u16::from_le_bytes([stored[30], stored[31]]);
            assert_eq!(tags, 0, "no tags");
            let header_len = 32;
            let encoded = postcard::to_allocvec(&value).expect("encodes");
            assert_eq!(encoded.len() as u64, size);
            assert_eq!(
                &stored[header_len..],
                &encoded[..],
                "payload = postcard(value)"
            );
            let raw = raw_get(&mut conn.clone(), size, header_len).await;
            assert_eq!(raw, value, "side B decodes the value side A returns");
            notes.push(format!(
                "`bench:{size}`: {} B stored in Redis = {header_len} B entry header + {} B \
                 postcard payload, uncompressed",
                stored.len(),
                encoded.len()
            ));
            header_lens.push(header_len);
        }
        let keys: u64 = redis::cmd("DBSIZE").query(&mut sync_conn).expect("DBSIZE");
        assert_eq!(keys, SIZES.len() as u64);
        assert_eq!(LOADS.load(Ordering::Relaxed), SIZES.len() as u64);
        let before = misses(&cache);

        for (&size, &header_len) in SIZES.iter().zip(&header_lens) {
            let a = Side::Cached(cache.clone());
            let b = Side::Raw(conn.clone(), header_len);
            let label = size_label(size);

            // Concurrency 1.
            run_sequential(&Hit(a.clone(), size), WARMUP).await;
            run_sequential(&Hit(b.clone(), size), WARMUP).await;
            let mut seq = SeqPairs::default();
            for rep in 0..REPS {
                if rep % 2 == 0 {
                    seq.a.push(run_sequential(&Hit(a.clone(), size), RUN).await);
                    seq.b.push(run_sequential(&Hit(b.clone(), size), RUN).await);
                } else {
                    seq.b.push(run_sequential(&Hit(b.clone(), size), RUN).await);
                    seq.a.push(run_sequential(&Hit(a.clone(), size), RUN).await);
                }
            }
            for metric in [Metric::P50, Metric::P99, Metric::Ops] {
                let [cell_a, cell_b, ratio] = metric.cells(&seq.a, &seq.b);
                table.push(format!(
                    "| {label} | 1 | {} | {cell_a} | {cell_b} | {ratio} |",
                    metric.name()
                ));
            }

            // Concurrency 64.
            run_concurrent(&Hit(a.clone(), size), TASKS, WARMUP).await;
            run_concurrent(&Hit(b.clone(), size), TASKS, WARMUP).await;
            let (mut ca, mut cb) = (Vec::new(), Vec::new());
            for rep in 0..REPS {
                if rep % 2 == 0 {
                    ca.push(run_concurrent(&Hit(a.clone(), size), TASKS, RUN).await);
                    cb.push(run_concurrent(&Hit(b.clone(), size), TASKS, RUN).await);
                } else {
                    cb.push(run_concurrent(&Hit(b.clone(), size), TASKS, RUN).await);
                    ca.push(run_concurrent(&Hit(a.clone(), size), TASKS, RUN).await);
                }
            }
            let r: Vec<f64> = ca.iter().zip(&cb).map(|(a, b)| a / b).collect();
            table.push(format!(
                "| {label} | {TASKS} | ops/s | {} | {} | {} |",
                ops_cell(&ca),
                ops_cell(&cb),
                cell(&r, 2)
            ));
        }

        let after = misses(&cache);
        assert_eq!(
            before, after,
            "(body runs, misses, errors) changed while measuring: every A call must be a hit"
        );
        notes.push(format!(
            "While measuring: {} body runs, {} misses, {} store errors on side A (checked equal \
             before and after).",
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2
        ));

        // The same function on the in-process store, one task.
        let memory = Cache::builder().build().expect("the memory cache");
        for &size in &SIZES {
            let value = get_value(&memory, size).await.expect("the preloading call");
            let loads = LOADS.load(Ordering::Relaxed);
            let mut runs = Vec::new();
            for _ in 0..REPS {
                let m = memory.clone();
                let ns = tokio::spawn(async move {
                    let start = Instant::now();
                    let mut calls = 0u64;
                    loop {
                        for _ in 0..BATCH {
                            black_box(get_value(&m, black_box(size)).await.expect("a hit"));
                        }
                        calls += BATCH;
                        let elapsed = start.elapsed();
                        if elapsed >= LOCAL_RUN {
                            return elapsed.as_nanos() as f64 / calls as f64;
                        }
                    }
                })
                .await
                .expect("the memory task");
                runs.push(ns);
            }
            assert_eq!(
                LOADS.load(Ordering::Relaxed),
                loads,
                "memory calls were hits"
            );
            assert_eq!(get_value(&memory, size).await.expect("a hit"), value);
            table.push(format!(
                "| {} | 1 | memory-store hit, ns/call | {} | — | — |",
                size_label(size),
                cell(&runs, 0)
            ));
        }

        // What both sides share: postcard decoding of the payload, alone.
        for &size in &SIZES {
            let encoded = postcard::to_allocvec(&make_payload(size)).expect("encodes");
            let mut runs = Vec::new();
            for _ in 0..REPS {
                let start = Instant::now();
                let mut calls = 0u64;
                let ns = loop {
                    for _ in 0..BATCH {
                        let p: Payload =
                            postcard::from_bytes(black_box(&encoded[..])).expect("decodes");
                        black_box(p);
                    }
                    calls += BATCH;
                    let elapsed = start.elapsed();
                    if elapsed >= LOCAL_RUN / 3 {
                        break elapsed.as_nanos() as f64 / calls as f64;
                    }
                };
                runs.push(ns);
            }
            table.push(format!(
                "| {} | 1 | postcard decode alone (no cache, no I/O), ns/call | {} | — | — |",
                size_label(size),
                cell(&runs, 0)
            ));
        }
    });

    println!("# redis_hit: `#[cached]` hit vs hand-written redis-rs GET + decode\n");
    println!(
        "redis-server on 127.0.0.1:{} (`--save \"\" --appendonly no`), Tokio multi-thread \
         runtime with {workers} workers, {REPS} repetitions × {} s per side, alternating which \
         side runs first; {TASKS} tasks in the concurrent rows.\n",
        server.port(),
        RUN.as_secs()
    );
    for n in &notes {
        println!("- {n}");
    }
    println!(
        "\nCells: median (min–max) over {REPS} repetitions. A/B: the ratio within each \
         repetition pair, then median (min–max) of those ratios: above 1 on an ops/s row or below 1 on \
         a latency row means side A did better.\n"
    );
    println!(
        "| value | concurrency | metric | A: `#[cached]` hit | B: raw redis-rs GET + postcard | A/B |"
    );
    println!("|---|---|---|---|---|---|");
    for row in &table {
        println!("{row}");
    }
    println!("\ntotal run time: {:.0} s", started.elapsed().as_secs_f64());
}
