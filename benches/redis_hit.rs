//! What a `#[cached]` hit on Redis costs next to the same read written by hand with redis-rs.
//!
//! Run with `cargo bench -p cachette-benches --bench redis_hit` (release profile). No criterion: this binary starts
//! its own `redis-server` on a free loopback port (`--save "" --appendonly no`, through the test
//! helper; 127.0.0.1:6379 is never touched), runs every comparison interleaved in one process
//! on a multi-thread Tokio runtime, and prints a markdown table to stdout.
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

#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cachette::{Cache, cached};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis_server::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

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

/// The cached value: an id and a body of pseudo-random printable ASCII, sized so the postcard
/// encoding of the whole struct is exactly `id` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payload {
    id: u64,
    body: String,
}

/// The value for `id`: deterministic, and `id` bytes long in postcard.
fn make_payload(id: u64) -> Payload {
    let target = usize::try_from(id).expect("a small size");
    let mut state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chars = String::with_capacity(target);
    while chars.len() < target {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        chars.push(char::from(b' ' + ((r >> 32) % 95) as u8));
    }
    // The varint lengths make the overhead depend on the body length: find the body that fits.
    for len in (0..=target).rev() {
        let candidate = Payload {
            id,
            body: chars[..len].to_owned(),
        };
        if postcard::to_allocvec(&candidate).expect("encodes").len() == target {
            return candidate;
        }
    }
    panic!("no body length gives a {target}-byte encoding");
}

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

/// Sequential awaits on one task: every operation's latency.
struct SeqRun {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn run_sequential(side: &Side, id: u64, dur: Duration) -> SeqRun {
    let mut side = side.clone();
    tokio::spawn(async move {
        let mut lat: Vec<u64> = Vec::with_capacity(400_000);
        let start = Instant::now();
        let deadline = start + dur;
        let last = loop {
            let t0 = Instant::now();
            black_box(side.hit(id).await);
            let t1 = Instant::now();
            lat.push((t1 - t0).as_nanos() as u64);
            if t1 >= deadline {
                break t1;
            }
        };
        let ops = lat.len();
        lat.sort_unstable();
        SeqRun {
            ops_per_s: ops as f64 / (last - start).as_secs_f64(),
            p50_us: percentile(&lat, 0.50) / 1e3,
            p99_us: percentile(&lat, 0.99) / 1e3,
        }
    })
    .await
    .expect("the sequential task")
}

/// `TASKS` tasks calling in a loop until told to stop; operations per second over all of them.
async fn run_concurrent(side: &Side, id: u64, dur: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(TASKS + 1));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let mut side = side.clone();
            let stop = stop.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    black_box(side.hit(id).await);
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("a concurrent task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// The value at `q` of sorted nanoseconds (nearest rank).
fn percentile(sorted: &[u64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// Median, min and max.
fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// `median (min–max)` with `decimals` decimals.
fn cell(values: &[f64], decimals: usize) -> String {
    let (med, min, max) = summary(values);
    format!("{med:.decimals$} ({min:.decimals$}–{max:.decimals$})")
}

/// Like [`cell`], for operations per second: whole numbers with thin groups.
fn ops_cell(values: &[f64]) -> String {
    let (med, min, max) = summary(values);
    format!("{} ({}–{})", group(med), group(min), group(max))
}

fn group(v: f64) -> String {
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn size_label(size: u64) -> &'static str {
    match size {
        256 => "256 B",
        4096 => "4 KiB",
        _ => "?",
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
        // The same settings as cachette's `RedisStore` with its defaults.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(250)))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(server.client(), config)
            .await
            .expect("a connection manager to the bench server");

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
            run_sequential(&a, size, WARMUP).await;
            run_sequential(&b, size, WARMUP).await;
            let mut seq = SeqPairs::default();
            for rep in 0..REPS {
                if rep % 2 == 0 {
                    seq.a.push(run_sequential(&a, size, RUN).await);
                    seq.b.push(run_sequential(&b, size, RUN).await);
                } else {
                    seq.b.push(run_sequential(&b, size, RUN).await);
                    seq.a.push(run_sequential(&a, size, RUN).await);
                }
            }
            let pick = |runs: &[SeqRun], f: fn(&SeqRun) -> f64| -> Vec<f64> {
                runs.iter().map(f).collect()
            };
            let ratio = |f: fn(&SeqRun) -> f64| -> Vec<f64> {
                seq.a.iter().zip(&seq.b).map(|(a, b)| f(a) / f(b)).collect()
            };
            let p50 = |r: &SeqRun| r.p50_us;
            let p99 = |r: &SeqRun| r.p99_us;
            let ops = |r: &SeqRun| r.ops_per_s;
            table.push(format!(
                "| {label} | 1 | p50 latency, µs | {} | {} | {} |",
                cell(&pick(&seq.a, p50), 1),
                cell(&pick(&seq.b, p50), 1),
                cell(&ratio(p50), 2)
            ));
            table.push(format!(
                "| {label} | 1 | p99 latency, µs | {} | {} | {} |",
                cell(&pick(&seq.a, p99), 1),
                cell(&pick(&seq.b, p99), 1),
                cell(&ratio(p99), 2)
            ));
            table.push(format!(
                "| {label} | 1 | ops/s | {} | {} | {} |",
                ops_cell(&pick(&seq.a, ops)),
                ops_cell(&pick(&seq.b, ops)),
                cell(&ratio(ops), 2)
            ));

            // Concurrency 64.
            run_concurrent(&a, size, WARMUP).await;
            run_concurrent(&b, size, WARMUP).await;
            let (mut ca, mut cb) = (Vec::new(), Vec::new());
            for rep in 0..REPS {
                if rep % 2 == 0 {
                    ca.push(run_concurrent(&a, size, RUN).await);
                    cb.push(run_concurrent(&b, size, RUN).await);
                } else {
                    cb.push(run_concurrent(&b, size, RUN).await);
                    ca.push(run_concurrent(&a, size, RUN).await);
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
