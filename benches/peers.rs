//! cachette next to its peers: the `cached` crate 4.x (Redis and in-memory), moka, raw redis-rs,
//! `redis-benchmark`, and the codecs and compression a cached value goes through.
//!
//! Run with `cargo bench -p cachette-benches --bench peers` (release profile, about 2–3 minutes). No criterion: this
//! binary starts its own `redis-server` on a free loopback port (`--save "" --appendonly no`,
//! through the test helper; 127.0.0.1:6379 is never touched) and prints markdown tables.
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
//! 7. Codec: postcard vs serde_json vs MessagePack (`rmp-serde`, a dev-dependency used only
//!    here), encode/decode time and size.
//! 8. Compression through cachette (flate2 is not a direct dependency): stored sizes with and
//!    without compression (`STRLEN`), and the time of a write and of a hit.
//!
//! Each A/B comparison runs its sides alternately within each repetition; cells are median
//! (min–max) over the repetitions, and ratios are computed within each repetition first.

#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::collections::BTreeMap;
use std::future::Future;
use std::hint::black_box;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use cachette::Cache;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis_server::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

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

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// The cached value of the Redis and memory rows (as in `benches/redis_hit.rs`): an id and a
/// body of pseudo-random printable ASCII, sized so the postcard encoding is exactly `id` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payload {
    id: u64,
    body: String,
}

fn make_payload(id: u64) -> Payload {
    let target = usize::try_from(id).expect("a small size");
    let chars = random_ascii(id, target);
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

/// `n` characters of deterministic pseudo-random printable ASCII (xorshift64*).
fn random_ascii(seed: u64, n: usize) -> String {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| char::from(b' ' + (rng.next() % 95) as u8))
        .collect()
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() as usize) % from.len()]
    }
}

static PAYLOADS: LazyLock<Vec<Payload>> =
    LazyLock::new(|| SIZES.iter().map(|&s| make_payload(s)).collect());

fn payload(size: u64) -> &'static Payload {
    let i = SIZES
        .iter()
        .position(|&s| s == size)
        .expect("a benchmarked size");
    &PAYLOADS[i]
}

/// A structured value for the codec rows: numbers, booleans, strings, nested records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    email: String,
    paid: bool,
    total: f64,
    tags: Vec<String>,
    lines: Vec<Line>,
    note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: u32,
    name: String,
    qty: u16,
    price_cents: u64,
    discount: Option<f32>,
}

const FIRST: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const LAST: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
const PRODUCTS: [&str; 6] = [
    "stainless kettle 1.7 l",
    "espresso cups, set of 4",
    "linen tea towel",
    "cast iron pan 28 cm",
    "bamboo cutting board",
    "ceramic teapot",
];

/// An `Order` whose postcard encoding is exactly `target` bytes.
fn make_order(target: usize) -> Order {
    let mut rng = Rng::new(target as u64);
    let (first, last) = (rng.pick(&FIRST), rng.pick(&LAST));
    let mut order = Order {
        id: 4_000_000_123,
        customer: format!("{first} {last}"),
        email: format!(
            "{}.{}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        paid: true,
        total: 0.0,
        tags: vec!["priority".into(), "gift".into()],
        lines: Vec::new(),
        note: String::new(),
    };
    loop {
        let line = Line {
            sku: 100_000 + (rng.next() % 900_000) as u32,
            name: rng.pick(&PRODUCTS).to_owned(),
            qty: 1 + (rng.next() % 5) as u16,
            price_cents: 199 + rng.next() % 20_000,
            discount: (rng.next() % 3 == 0).then_some(0.15),
        };
        order.lines.push(line);
        if postcard::to_allocvec(&order).expect("encodes").len() + 60 > target {
            order.lines.pop();
            break;
        }
    }
    order.total = order
        .lines
        .iter()
        .map(|l| l.price_cents as f64 * f64::from(l.qty) / 100.0)
        .sum();
    let base = postcard::to_allocvec(&order).expect("encodes").len();
    for pad in 0..200 {
        order.note = "leave at the door, ring twice. "
            .chars()
            .cycle()
            .take(target.saturating_sub(base) + pad)
            .collect();
        order
            .note
            .truncate(target.saturating_sub(base).saturating_sub(pad / 2));
        let len = postcard::to_allocvec(&order).expect("encodes").len();
        if len == target {
            return order;
        }
    }
    panic!("could not size an order to {target} bytes");
}

/// JSON text of user records (an API response body), exactly `target` bytes.
fn make_json_text(target: usize) -> String {
    #[derive(Serialize)]
    struct User<'a> {
        id: u64,
        name: String,
        email: String,
        active: bool,
        roles: [&'a str; 2],
        created_at: String,
        score: f64,
    }
    let mut rng = Rng::new(7 + target as u64);
    let mut users = Vec::new();
    let mut out = String::new();
    while out.len() < target {
        let (first, last) = (rng.pick(&FIRST), rng.pick(&LAST));
        users.push(User {
            id: 10_000 + rng.next() % 90_000,
            name: format!("{first} {last}"),
            email: format!(
                "{}.{}{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                rng.next() % 100
            ),
            active: rng.next() % 4 != 0,
            roles: [
                rng.pick(&["reader", "editor", "admin"]),
                rng.pick(&["billing", "support", "ops"]),
            ],
            created_at: format!(
                "2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                1 + rng.next() % 12,
                1 + rng.next() % 28,
                rng.next() % 24,
                rng.next() % 60,
                rng.next() % 60
            ),
            score: (rng.next() % 10_000) as f64 / 100.0,
        });
        out = serde_json::to_string(&users).expect("serializes");
    }
    out.truncate(target);
    out
}

// ---------------------------------------------------------------------------------------------
// The functions under test
// ---------------------------------------------------------------------------------------------

// `compress = false`: the 4 KiB value is above cachette's default 1 KiB compression threshold,
// and `cached` never compresses; both sides then move about the same bytes.
#[cachette::cached(key = "peers:hit:{id}", ttl = "1h", cache = cache, skip = [cache], compress = false)]
async fn cachette_get(cache: &Cache, id: u64) -> Result<Payload, std::io::Error> {
    CACHETTE_LOADS.fetch_add(1, Relaxed);
    Ok(payload(id).clone())
}

/// An `AsyncRedisCache` on the bench server through a `ConnectionManager` (as cachette uses),
/// TTL 1 h.
async fn cached_redis_store(prefix: &str) -> cached::AsyncRedisCache<u64, Payload> {
    cached::AsyncRedisCache::builder(prefix)
        .ttl(HOUR)
        .connection_string(REDIS_URL.get().expect("the URL is set before any call"))
        .connection_manager(true)
        .build()
        .await
        .expect("an AsyncRedisCache on the bench server")
}

#[cached::macros::concurrent_cached(
    map_error = r##"|e| format!("{e:?}")"##,
    ty = "cached::AsyncRedisCache<u64, Payload>",
    create = r##"{ cached_redis_store("peers-hit").await }"##
)]
async fn cached_get(id: u64) -> Result<Payload, String> {
    CACHED_LOADS.fetch_add(1, Relaxed);
    Ok(payload(id).clone())
}

#[cachette::cached(key = "peers:miss:{id}", ttl = "1h", cache = cache, skip = [cache, size], compress = false)]
async fn cachette_miss(cache: &Cache, id: u64, size: u64) -> Result<Payload, std::io::Error> {
    Ok(payload(size).clone())
}

#[cached::macros::concurrent_cached(
    map_error = r##"|e| format!("{e:?}")"##,
    ty = "cached::AsyncRedisCache<u64, Payload>",
    create = r##"{ cached_redis_store("peers-miss").await }"##
)]
async fn cached_miss(id: u64) -> Result<Payload, String> {
    black_box(id);
    Ok(payload(256).clone())
}

#[cachette::cached(key = "peers:stampede:{id}", ttl = "1h", cache = cache, skip = [cache])]
async fn cachette_slow(cache: &Cache, id: u64) -> Result<Payload, std::io::Error> {
    STAMPEDE_CACHETTE_RUNS.fetch_add(1, Relaxed);
    tokio::time::sleep(STAMPEDE_BODY).await;
    Ok(Payload {
        id,
        body: "slow".into(),
    })
}

#[cached::macros::concurrent_cached(
    map_error = r##"|e| format!("{e:?}")"##,
    ty = "cached::AsyncRedisCache<u64, Payload>",
    create = r##"{ cached_redis_store("peers-stampede").await }"##
)]
async fn cached_slow(id: u64) -> Result<Payload, String> {
    STAMPEDE_CACHED_RUNS.fetch_add(1, Relaxed);
    tokio::time::sleep(STAMPEDE_BODY).await;
    Ok(Payload {
        id,
        body: "slow".into(),
    })
}

/// `cached`'s own `#[cached]` on an async fn: a global `UnboundCache` behind an async mutex.
#[cached::macros::cached]
async fn cached_mem(id: u64) -> Payload {
    CACHED_MEM_LOADS.fetch_add(1, Relaxed);
    payload(id).clone()
}

#[cachette::cached(key = "peers:json:c:{size}", ttl = "1h", cache = cache, skip = [cache], compress = true)]
async fn json_compressed(cache: &Cache, size: usize) -> Result<String, std::io::Error> {
    Ok(make_json_text(size))
}

#[cachette::cached(key = "peers:json:p:{size}", ttl = "1h", cache = cache, skip = [cache], compress = false)]
async fn json_plain(cache: &Cache, size: usize) -> Result<String, std::io::Error> {
    Ok(make_json_text(size))
}

// ---------------------------------------------------------------------------------------------
// Runners
// ---------------------------------------------------------------------------------------------

/// One side of a Redis comparison, cloned into every task.
#[derive(Clone)]
enum Op {
    CachetteHit(Cache),
    CachedHit,
    CachetteMiss(Cache),
    CachedMiss,
    /// `GET` (absent) then `SET .. PX` of these bytes, on a fresh key.
    RawMiss(ConnectionManager, Arc<Vec<u8>>),
}

impl Op {
    async fn run(&mut self, size: u64) {
        match self {
            Op::CachetteHit(cache) => {
                black_box(cachette_get(cache, size).await.expect("a cachette hit"));
            }
            Op::CachedHit => {
                black_box(cached_get(size).await.expect("a cached hit"));
            }
            Op::CachetteMiss(cache) => {
                black_box(
                    cachette_miss(cache, fresh_id(), size)
                        .await
                        .expect("a cachette miss"),
                );
            }
            Op::CachedMiss => {
                black_box(cached_miss(fresh_id()).await.expect("a cached miss"));
            }
            Op::RawMiss(conn, bytes) => {
                let key = format!("peers:raw:{}", fresh_id());
                let found: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(conn)
                    .await
                    .expect("GET");
                assert!(found.is_none(), "a fresh key");
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(bytes.as_slice())
                    .arg("PX")
                    .arg(HOUR.as_millis() as u64)
                    .query_async(conn)
                    .await
                    .expect("SET");
            }
        }
    }
}

struct SeqRun {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Sequential awaits on one spawned task: every operation's latency.
async fn run_sequential(op: &Op, size: u64, dur: Duration) -> SeqRun {
    let mut op = op.clone();
    tokio::spawn(async move {
        let mut lat: Vec<u64> = Vec::with_capacity(200_000);
        let start = Instant::now();
        let deadline = start + dur;
        let last = loop {
            let t0 = Instant::now();
            op.run(size).await;
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
async fn run_concurrent(op: &Op, size: u64, dur: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(TASKS + 1));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let mut op = op.clone();
            let stop = stop.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut ops = 0u64;
                while !stop.load(Relaxed) {
                    op.run(size).await;
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    tokio::time::sleep(dur).await;
    stop.store(true, Relaxed);
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

/// `FLUSHDB` on the bench server (between miss runs, outside the timing).
fn flush(server: &RedisServer) {
    let () = redis::cmd("FLUSHDB")
        .query(&mut server.conn())
        .expect("FLUSHDB");
}

/// Sequential A/B over `REPS`, alternating which side goes first.
async fn seq_ab(
    server: &RedisServer,
    a: &Op,
    b: &Op,
    size: u64,
    dur: Duration,
    flush_after: bool,
) -> (Vec<SeqRun>, Vec<SeqRun>) {
    run_sequential(a, size, WARMUP).await;
    run_sequential(b, size, WARMUP).await;
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for rep in 0..REPS {
        for first in [rep % 2 == 0, rep % 2 == 1] {
            let r = run_sequential(if first { a } else { b }, size, dur).await;
            if flush_after {
                flush(server);
            }
            if first { ra.push(r) } else { rb.push(r) }
        }
    }
    (ra, rb)
}

// ---------------------------------------------------------------------------------------------
// Summaries and formatting
// ---------------------------------------------------------------------------------------------

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

fn median(values: &[f64]) -> f64 {
    summary(values).0
}

/// `median (min–max)` with `decimals` decimals.
fn cell(values: &[f64], decimals: usize) -> String {
    let (med, min, max) = summary(values);
    format!("{med:.decimals$} ({min:.decimals$}–{max:.decimals$})")
}

/// Like [`cell`], whole numbers with thousands separators.
fn ops_cell(values: &[f64]) -> String {
    let (med, min, max) = summary(values);
    format!("{} ({}–{})", group(med), group(min), group(max))
}

fn group(v: f64) -> String {
    let digits = format!("{v:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a / b).collect()
}

fn size_label(size: u64) -> String {
    match size {
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

/// A markdown table: a title, a header row, rows, and notes under it.
struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    fn new(title: &str, header: &[&str]) -> Self {
        Table {
            title: title.to_owned(),
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }
    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
    fn note(&mut self, note: String) {
        self.notes.push(note);
    }
    fn print(&self) {
        println!("### {}\n", self.title);
        println!("| {} |", self.header.join(" | "));
        println!("|{}", "---|".repeat(self.header.len()));
        for r in &self.rows {
            println!("| {} |", r.join(" | "));
        }
        if !self.notes.is_empty() {
            println!();
            for n in &self.notes {
                println!("- {n}");
            }
        }
        println!();
    }
}

// ---------------------------------------------------------------------------------------------
// Redis-side accounting: INFO, MONITOR, redis-benchmark
// ---------------------------------------------------------------------------------------------

/// `INFO <section>` as `field -> value`.
fn info(server: &RedisServer, section: &str) -> BTreeMap<String, String> {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query(&mut server.conn())
        .expect("INFO");
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// `cmdstat_<name>` calls, by lower-case command name.
fn commandstats(server: &RedisServer) -> BTreeMap<String, u64> {
    info(server, "commandstats")
        .into_iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("cmdstat_")?.to_owned();
            let calls = v.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name, calls.parse().ok()?))
        })
        .collect()
}

fn keyspace_hits(server: &RedisServer) -> u64 {
    info(server, "stats")["keyspace_hits"]
        .parse()
        .expect("keyspace_hits")
}

/// What the server did while a piece of code ran.
#[derive(Default)]
struct Counted {
    /// `INFO commandstats` calls delta (client commands and commands run inside scripts), by
    /// command, without the INFO calls of the accounting itself.
    stats: BTreeMap<String, u64>,
    /// Commands clients sent, from `MONITOR`, by upper-case command name.
    sent: BTreeMap<String, u64>,
    /// Commands Lua scripts ran, from `MONITOR`.
    scripted: BTreeMap<String, u64>,
}

impl Counted {
    fn total_sent(&self) -> u64 {
        self.sent.values().sum()
    }
    fn total_stats(&self) -> u64 {
        self.stats.values().sum()
    }
}

/// `name×n` pairs, each divided by `per` (0 decimals when whole).
fn per_op(map: &BTreeMap<String, u64>, per: u64) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| {
            let x = *v as f64 / per as f64;
            if (x - x.round()).abs() < 1e-9 {
                format!("{k} {x:.0}")
            } else {
                format!("{k} {x:.3}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `f` while `redis-cli monitor` records every command, and takes `INFO commandstats`
/// before and after.
async fn count_commands<T>(server: &RedisServer, f: impl Future<Output = T>) -> (T, Counted) {
    let mut child = Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "monitor"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli on PATH (it comes with redis-server)");
    let stdout = child.stdout.take().expect("piped stdout");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("MONITOR started");
    let before = commandstats(server);
    let out = f.await;
    // Let the tail of the trace reach redis-cli.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = commandstats(server);
    let _ = child.kill();
    let _ = child.wait();
    let lines = reader.join().expect("the MONITOR reader");

    let mut counted = Counted::default();
    for (name, calls) in &after {
        let delta = calls - before.get(name).copied().unwrap_or(0);
        if delta > 0 && name != "info" && name != "monitor" {
            counted.stats.insert(name.clone(), delta);
        }
    }
    for line in lines {
        // `1700000000.123456 [0 127.0.0.1:50000] "GET" "key"`, or `[0 lua]` inside a script.
        let (Some(open), Some(close)) = (line.find('['), line.find(']')) else {
            continue;
        };
        let origin = &line[open + 1..close];
        let rest = &line[close + 1..];
        let Some(cmd) = rest.split('"').nth(1) else {
            continue;
        };
        let cmd = cmd.to_uppercase();
        if cmd == "INFO" || cmd == "MONITOR" {
            continue;
        }
        let map = if origin.ends_with("lua") {
            &mut counted.scripted
        } else {
            &mut counted.sent
        };
        *map.entry(cmd).or_default() += 1;
    }
    (out, counted)
}

/// `redis-benchmark -p PORT -t get -d SIZE -c 64 -n 200000 -q [-P 16]`: requests/s and p50 ms.
fn redis_benchmark(port: u16, size: u64, pipeline: Option<u32>) -> (f64, f64) {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args([
        "-p",
        &port.to_string(),
        "-t",
        "get",
        "-d",
        &size.to_string(),
    ])
    .args([
        "-c",
        &TASKS.to_string(),
        "-n",
        &RB_REQUESTS.to_string(),
        "-q",
    ]);
    if let Some(p) = pipeline {
        cmd.args(["-P", &p.to_string()]);
    }
    let out = cmd.output().expect("redis-benchmark on PATH");
    assert!(out.status.success(), "redis-benchmark failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .split(['\r', '\n'])
        .rfind(|l| l.contains("requests per second"))
        .unwrap_or_else(|| panic!("no result in redis-benchmark output: {text}"));
    let rps = line
        .split_once(':')
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"));
    let p50 = line
        .split_once("p50=")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(f64::NAN);
    (rps, p50)
}

// ---------------------------------------------------------------------------------------------
// In-process rows
// ---------------------------------------------------------------------------------------------

/// One side of the in-process hit rows.
enum Mem {
    Cachette(Cache),
    Moka(moka::future::Cache<u64, Payload>),
    Cached,
}

impl Mem {
    async fn hit(&self, id: u64) -> Payload {
        match self {
            Mem::Cachette(cache) => cachette_get(cache, id).await.expect("a memory hit"),
            Mem::Moka(cache) => cache.get(&id).await.expect("a moka hit"),
            Mem::Cached => cached_mem(id).await,
        }
    }
}

/// This thread's time on a CPU, in ns (`/proc/thread-self/schedstat`, first field). Yielding
/// first makes the kernel bring the running thread's sum up to date.
fn thread_cpu_ns() -> u64 {
    std::thread::yield_now();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat")
}

/// ns per call of one in-process measurement, averaged over its threads.
struct MemRun {
    /// Wall time / calls: includes time the thread waited for a CPU.
    wall: f64,
    /// Time on a CPU / calls: what the calls cost, whether or not the thread had a core to
    /// itself.
    cpu: f64,
}

/// `threads` OS threads (each with its own current-thread Tokio runtime) calling `side` on the
/// same key for `dur`.
fn run_mem(side: &Mem, id: u64, threads: usize, dur: Duration) -> MemRun {
    let barrier = std::sync::Barrier::new(threads);
    let per_thread: Vec<(f64, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    rt.block_on(async {
                        barrier.wait();
                        let cpu0 = thread_cpu_ns();
                        let start = Instant::now();
                        let mut calls = 0u64;
                        loop {
                            for _ in 0..BATCH {
                                black_box(side.hit(black_box(id)).await);
                            }
                            calls += BATCH;
                            let elapsed = start.elapsed();
                            if elapsed >= dur {
                                let cpu = thread_cpu_ns() - cpu0;
                                return (
                                    elapsed.as_nanos() as f64 / calls as f64,
                                    cpu as f64 / calls as f64,
                                );
                            }
                        }
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a memory thread"))
            .collect()
    });
    let n = per_thread.len() as f64;
    MemRun {
        wall: per_thread.iter().map(|r| r.0).sum::<f64>() / n,
        cpu: per_thread.iter().map(|r| r.1).sum::<f64>() / n,
    }
}

/// ns per call of `f`, run in batches for `CPU_RUN`.
fn time_ns(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..BATCH {
            f();
        }
        calls += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= CPU_RUN {
            return elapsed.as_nanos() as f64 / calls as f64;
        }
    }
}

/// ns per call of an async `f` on the current runtime, in batches for `CPU_RUN`.
async fn time_ns_async<Fut: Future<Output = ()>>(mut f: impl FnMut() -> Fut) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..BATCH {
            f().await;
        }
        calls += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= CPU_RUN {
            return elapsed.as_nanos() as f64 / calls as f64;
        }
    }
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
        // The raw side's connection: the same settings as cachette's `RedisStore` defaults.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(250)))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let raw = ConnectionManager::new_with_config(server.client(), config)
            .await
            .expect("a connection manager to the bench server");
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

        // ---- 1 and 2: Redis hits, and redis-benchmark on the same bytes
        if enabled("1") || enabled("2") {
            let mut t1 = Table::new(
                "1. Redis hit: cachette `#[cached]` vs `cached` `#[concurrent_cached]` \
             (AsyncRedisCache)",
                &[
                    "value",
                    "tasks",
                    "metric",
                    "A: cachette",
                    "B: cached 4.1",
                    "A/B",
                ],
            );
            let mut t2 = Table::new(
                "2. Redis hit at 64 tasks vs `redis-benchmark -t get -c 64 -n 200000` \
             (same server, same bytes)",
                &[
                    "value",
                    "cachette `#[cached]`, ops/s",
                    "redis-benchmark, req/s",
                    "redis-benchmark -P 16, req/s",
                    "cachette / redis-benchmark",
                    "cachette / redis-benchmark -P 16",
                ],
            );
            let a = Op::CachetteHit(cache.clone());
            let b = Op::CachedHit;
            let loads_before = (CACHETTE_LOADS.load(Relaxed), CACHED_LOADS.load(Relaxed));
            let mut rb_p50 = Vec::new();
            for &size in &SIZES {
                let label = size_label(size);
                // What redis-benchmark reads: the cachette entry, under its fixed key.
                let () = redis::cmd("SET")
                    .arg("key:__rand_int__")
                    .arg(&entries[&size])
                    .query(&mut sync_conn)
                    .expect("SET for redis-benchmark");

                let (sa, sb) = seq_ab(&server, &a, &b, size, RUN, false).await;
                let p50 = |v: &[SeqRun]| v.iter().map(|r| r.p50_us).collect::<Vec<_>>();
                let p99 = |v: &[SeqRun]| v.iter().map(|r| r.p99_us).collect::<Vec<_>>();
                let ops = |v: &[SeqRun]| v.iter().map(|r| r.ops_per_s).collect::<Vec<_>>();
                t1.row(vec![
                    label.clone(),
                    "1".into(),
                    "p50 latency, µs".into(),
                    cell(&p50(&sa), 1),
                    cell(&p50(&sb), 1),
                    cell(&ratios(&p50(&sa), &p50(&sb)), 2),
                ]);
                t1.row(vec![
                    label.clone(),
                    "1".into(),
                    "p99 latency, µs".into(),
                    cell(&p99(&sa), 1),
                    cell(&p99(&sb), 1),
                    cell(&ratios(&p99(&sa), &p99(&sb)), 2),
                ]);
                t1.row(vec![
                    label.clone(),
                    "1".into(),
                    "ops/s".into(),
                    ops_cell(&ops(&sa)),
                    ops_cell(&ops(&sb)),
                    cell(&ratios(&ops(&sa), &ops(&sb)), 2),
                ]);

                run_concurrent(&a, size, WARMUP).await;
                run_concurrent(&b, size, WARMUP).await;
                let (mut ca, mut cb, mut r1, mut r16) = (vec![], vec![], vec![], vec![]);
                for rep in 0..REPS {
                    if rep % 2 == 0 {
                        ca.push(run_concurrent(&a, size, RUN).await);
                        cb.push(run_concurrent(&b, size, RUN).await);
                    } else {
                        cb.push(run_concurrent(&b, size, RUN).await);
                        ca.push(run_concurrent(&a, size, RUN).await);
                    }
                    let hits = keyspace_hits(&server);
                    let (rps, p50) = redis_benchmark(server.port(), size, None);
                    r1.push(rps);
                    rb_p50.push((size, p50));
                    let (rps16, _) = redis_benchmark(server.port(), size, Some(16));
                    r16.push(rps16);
                    let got = keyspace_hits(&server) - hits;
                    assert!(
                        got >= 2 * RB_REQUESTS,
                        "redis-benchmark's GETs were hits ({got})"
                    );
                }
                t1.row(vec![
                    label.clone(),
                    TASKS.to_string(),
                    "ops/s".into(),
                    ops_cell(&ca),
                    ops_cell(&cb),
                    cell(&ratios(&ca, &cb), 2),
                ]);
                t2.row(vec![
                    label.clone(),
                    ops_cell(&ca),
                    ops_cell(&r1),
                    ops_cell(&r16),
                    cell(&ratios(&ca, &r1), 2),
                    cell(&ratios(&ca, &r16), 2),
                ]);
            }
            assert_eq!(
                loads_before,
                (CACHETTE_LOADS.load(Relaxed), CACHED_LOADS.load(Relaxed)),
                "every measured call was a hit"
            );
            let stats = cache.stats().total;
            t1.note(format!(
                "Checked: no body ran on either side while measuring; cachette counted {} misses \
             and {} store errors in total (the 2 misses are the preloading calls).",
                stats.misses, stats.errors
            ));
            t1.note(
                "A/B above 1 on an ops/s row, or below 1 on a latency row, means cachette did \
             better."
                    .into(),
            );
            for &size in &SIZES {
                let p: Vec<f64> = rb_p50
                    .iter()
                    .filter(|(s, _)| *s == size)
                    .map(|(_, p)| *p)
                    .collect();
                t2.note(format!(
                    "{}: redis-benchmark (64 connections, one GET in flight per connection) \
                 p50 {} ms.",
                    size_label(size),
                    cell(&p, 3)
                ));
            }
            t2.note(
                "redis-benchmark GETs `key:__rand_int__` (without `-r` the key is literal), which \
             the harness sets to the cachette entry's exact bytes first, so every request is a \
             hit of the same size as cachette's (checked with `keyspace_hits`); `-d` only sizes \
             SET values and does not matter for `-t get`. redis-benchmark is one C process \
             with 64 connections; cachette uses one multiplexed connection and decodes every \
             value. Both share the 2 cores with redis-server."
                    .into(),
            );
            tables.push(t1);
            tables.push(t2);
        }

        // ---- 3: commands per hit and per miss
        if enabled("3") {
            let mut t3 = Table::new(
                "3. Redis commands per operation (INFO commandstats delta and MONITOR), 256 B",
                &[
                    "operation",
                    "client commands per op (MONITOR)",
                    "of which",
                    "run inside Lua scripts per op",
                    "INFO commandstats delta per op",
                ],
            );
            let raw_bytes = Arc::new(entries[&256].clone());
            let cases: Vec<(&str, Op)> = vec![
                ("cachette hit", Op::CachetteHit(cache.clone())),
                ("cached hit", Op::CachedHit),
                ("cachette miss + write", Op::CachetteMiss(cache.clone())),
                ("cached miss + write", Op::CachedMiss),
                (
                    "raw redis-rs GET + SET",
                    Op::RawMiss(raw.clone(), raw_bytes.clone()),
                ),
            ];
            for (name, op) in &cases {
                // One call first, so any connection setup is not counted.
                op.clone().run(256).await;
                let ((), c) = count_commands(&server, async {
                    let mut op = op.clone();
                    for _ in 0..COUNT_OPS {
                        op.run(256).await;
                    }
                })
                .await;
                t3.row(vec![
                    (*name).to_owned(),
                    format!("{:.2}", c.total_sent() as f64 / COUNT_OPS as f64),
                    per_op(&c.sent, COUNT_OPS),
                    per_op(&c.scripted, COUNT_OPS),
                    format!(
                        "{:.2}: {}",
                        c.total_stats() as f64 / COUNT_OPS as f64,
                        per_op(&c.stats, COUNT_OPS)
                    ),
                ]);
            }
            t3.note(format!(
                "{COUNT_OPS} sequential operations per row. No pipelines are involved on these \
             paths, so client commands = round trips. `INFO commandstats` also counts the \
             commands a script runs (its `get`/`set`/`del` inside `evalsha`), which is why its \
             totals are larger than the MONITOR count."
            ));
            tables.push(t3);
            flush(&server);
        }

        // ---- 4: miss + write
        if enabled("4") {
            let mut t4 = Table::new(
                "4. Miss + write: cachette miss (fresh key, loader returns at once) \
             vs raw redis-rs GET then SET of the same bytes",
                &[
                    "value",
                    "tasks",
                    "metric",
                    "A: cachette miss",
                    "B: raw GET + SET",
                    "A/B",
                ],
            );
            let loads_hit_before = CACHETTE_LOADS.load(Relaxed);
            for &size in &SIZES {
                let label = size_label(size);
                let a = Op::CachetteMiss(cache.clone());
                let b = Op::RawMiss(raw.clone(), Arc::new(entries[&size].clone()));
                let (sa, sb) = seq_ab(&server, &a, &b, size, MISS_RUN, true).await;
                let p50 = |v: &[SeqRun]| v.iter().map(|r| r.p50_us).collect::<Vec<_>>();
                let ops = |v: &[SeqRun]| v.iter().map(|r| r.ops_per_s).collect::<Vec<_>>();
                t4.row(vec![
                    label.clone(),
                    "1".into(),
                    "p50 latency, µs".into(),
                    cell(&p50(&sa), 1),
                    cell(&p50(&sb), 1),
                    cell(&ratios(&p50(&sa), &p50(&sb)), 2),
                ]);
                t4.row(vec![
                    label.clone(),
                    "1".into(),
                    "ops/s".into(),
                    ops_cell(&ops(&sa)),
                    ops_cell(&ops(&sb)),
                    cell(&ratios(&ops(&sa), &ops(&sb)), 2),
                ]);
                run_concurrent(&a, size, WARMUP).await;
                run_concurrent(&b, size, WARMUP).await;
                flush(&server);
                let (mut ca, mut cb) = (vec![], vec![]);
                for rep in 0..REPS {
                    for first in [rep % 2 == 0, rep % 2 == 1] {
                        let r = run_concurrent(if first { &a } else { &b }, size, MISS_RUN).await;
                        flush(&server);
                        if first { ca.push(r) } else { cb.push(r) }
                    }
                }
                t4.row(vec![
                    label.clone(),
                    TASKS.to_string(),
                    "ops/s".into(),
                    ops_cell(&ca),
                    ops_cell(&cb),
                    cell(&ratios(&ca, &cb), 2),
                ]);
            }
            assert_eq!(CACHETTE_LOADS.load(Relaxed), loads_hit_before);
            t4.note(
            "Every call of both sides is a miss on a key never used before (checked on the raw \
             side: the GET finds nothing). The raw side writes the bytes of a real cachette \
             entry (header + postcard) with `PX` 1 h; it takes no lease and does not compare \
             before writing. FLUSHDB after every side-run, outside the timing."
                .into(),
        );
            tables.push(t4);
        }

        // ---- 5: stampede
        if enabled("5") {
            let mut t5 = Table::new(
                "5. Stampede: 1000 concurrent callers of one cold key, body sleeps 50 ms",
                &[
                    "side",
                    "body runs",
                    "client commands (MONITOR)",
                    "INFO commandstats delta",
                    "wall time until all 1000 returned, ms",
                ],
            );
            for side in ["cachette", "cached"] {
                let (mut runs, mut sent, mut stats, mut wall) = (vec![], vec![], vec![], vec![]);
                let mut detail = (String::new(), String::new());
                for _ in 0..REPS {
                    let id = fresh_id();
                    let before = (
                        STAMPEDE_CACHETTE_RUNS.load(Relaxed),
                        STAMPEDE_CACHED_RUNS.load(Relaxed),
                    );
                    let (ms, c) = count_commands(&server, async {
                        let barrier = Arc::new(Barrier::new(STAMPEDE_CALLERS));
                        let start = Instant::now();
                        let tasks: Vec<_> = (0..STAMPEDE_CALLERS)
                            .map(|_| {
                                let barrier = barrier.clone();
                                let cache = cache.clone();
                                tokio::spawn(async move {
                                    barrier.wait().await;
                                    let v = if side == "cachette" {
                                        cachette_slow(&cache, id).await.expect("cachette")
                                    } else {
                                        cached_slow(id).await.expect("cached")
                                    };
                                    assert_eq!(v.id, id);
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.expect("a caller");
                        }
                        start.elapsed().as_secs_f64() * 1e3
                    })
                    .await;
                    let after = (
                        STAMPEDE_CACHETTE_RUNS.load(Relaxed),
                        STAMPEDE_CACHED_RUNS.load(Relaxed),
                    );
                    let n = if side == "cachette" {
                        after.0 - before.0
                    } else {
                        after.1 - before.1
                    };
                    runs.push(n as f64);
                    sent.push(c.total_sent() as f64);
                    stats.push(c.total_stats() as f64);
                    wall.push(ms);
                    detail = (per_op(&c.sent, 1), per_op(&c.stats, 1));
                }
                t5.row(vec![
                    side.into(),
                    cell(&runs, 0),
                    format!("{} (last: {})", cell(&sent, 0), detail.0),
                    format!("{} (last: {})", cell(&stats, 0), detail.1),
                    cell(&wall, 1),
                ]);
            }
            t5.note(format!(
                "{REPS} repetitions per side, a fresh key each. cachette: `#[cached]` with a \
             `&Cache` parameter (the caller that wins the flight loads; a lease in Redis guards \
             other processes). cached: `#[concurrent_cached]` on `AsyncRedisCache`, which has \
             no single flight (`sync_writes` is rejected on `#[concurrent_cached]`)."
            ));
            tables.push(t5);
            flush(&server);
        }

        // ---- 8 (ratio part): compression, stored sizes in Redis
        let mut sizes_compressed = BTreeMap::new();
        let memory = Cache::builder().build().expect("the memory cache");
        if enabled("8") {
            for size in [4096usize, 65536] {
                let c = json_compressed(&cache, size).await.expect("json");
                let p = json_plain(&cache, size).await.expect("json");
                assert_eq!(c, p);
                assert_eq!(c.len(), size);
                let mut lens = Vec::new();
                for key in [
                    format!("peers:json:c:{size}"),
                    format!("peers:json:p:{size}"),
                ] {
                    let stored: Vec<u8> = redis::cmd("GET")
                        .arg(&key)
                        .query(&mut sync_conn)
                        .expect("GET");
                    let strlen: usize = redis::cmd("STRLEN")
                        .arg(&key)
                        .query(&mut sync_conn)
                        .expect("STRLEN");
                    assert_eq!(strlen, stored.len());
                    lens.push((strlen, stored[1] & 0b100 != 0));
                }
                assert!(lens[0].1, "the compress = true entry is deflated");
                assert!(!lens[1].1, "the compress = false entry is not");
                sizes_compressed.insert(size, (lens[0].0, lens[1].0));
            }
        }

        // ---- 6: in-process hits
        if enabled("6") {
            let mut t6 = Table::new(
                "6. In-process hit, ns per call (per thread), same key on every thread",
                &[
                    "value",
                    "threads",
                    "ns per call",
                    "cachette `#[cached]`, memory store",
                    "moka `future::Cache::get`",
                    "cached `#[cached]` (UnboundCache)",
                    "cachette / moka",
                    "cachette / cached",
                ],
            );
            let moka_cache: moka::future::Cache<u64, Payload> = moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(HOUR)
                .build();
            for &size in &SIZES {
                cachette_get(&memory, size).await.expect("preload");
                moka_cache.insert(size, payload(size).clone()).await;
                cached_mem(size).await;
            }
            let sides = [
                Mem::Cachette(memory.clone()),
                Mem::Moka(moka_cache.clone()),
                Mem::Cached,
            ];
            let mem_loads = (CACHETTE_LOADS.load(Relaxed), CACHED_MEM_LOADS.load(Relaxed));
            for &size in &SIZES {
                for threads in [1usize, 2] {
                    let mut cpu: [Vec<f64>; 3] = Default::default();
                    let mut wall: [Vec<f64>; 3] = Default::default();
                    for side in &sides {
                        run_mem(side, size, threads, WARMUP / 2);
                    }
                    for rep in 0..REPS {
                        for k in 0..3 {
                            let i = (rep + k) % 3;
                            let r = run_mem(&sides[i], size, threads, LOCAL_RUN);
                            cpu[i].push(r.cpu);
                            wall[i].push(r.wall);
                        }
                    }
                    for (metric, ns) in [("on-CPU", &cpu), ("wall", &wall)] {
                        t6.row(vec![
                            size_label(size),
                            threads.to_string(),
                            metric.into(),
                            cell(&ns[0], 0),
                            cell(&ns[1], 0),
                            cell(&ns[2], 0),
                            cell(&ratios(&ns[0], &ns[1]), 2),
                            cell(&ratios(&ns[0], &ns[2]), 2),
                        ]);
                    }
                }
            }
            assert_eq!(
                mem_loads,
                (CACHETTE_LOADS.load(Relaxed), CACHED_MEM_LOADS.load(Relaxed)),
                "every in-process call was a hit"
            );
            t6.note(
                "Each thread is an OS thread with its own current-thread Tokio runtime; all \
             threads call the same key. ns per call is per thread, averaged over threads: \
             *on-CPU* is the thread's CPU time (`/proc/thread-self/schedstat`) / its calls, \
             *wall* is wall time / its calls, which also counts time spent waiting for a core \
             (another process on the machine, or the other thread). Equal numbers on 1 and 2 \
             threads mean perfect scaling. Every side returns an owned `Payload`: cachette decodes its stored \
             postcard bytes, moka and cached clone the stored value (a `String` allocation and \
             copy)."
                    .into(),
            );
            t6.note(
                "cachette's memory store is a moka `sync::Cache` of encoded entries; on a hit it \
             also renders the key into a `String`, parses the 32 B entry header, checks \
             freshness and records the hit in its statistics (latency included)."
                    .into(),
            );
            tables.push(t6);
        }

        // ---- 7: codecs
        if enabled("7") {
            let mut t7 = Table::new(
                "7. Codec: postcard vs serde_json vs MessagePack on a structured value \
             (`Order` with nested `Line`s)",
                &[
                    "value (postcard size)",
                    "codec",
                    "encoded bytes",
                    "encode, ns",
                    "decode, ns",
                ],
            );
            for target in [256usize, 4096] {
                let order = make_order(target);
                let pc = postcard::to_allocvec(&order).expect("postcard");
                let js = serde_json::to_vec(&order).expect("json");
                // Field names included, as `cached` and most MessagePack users store structs.
                let mp = rmp_serde::to_vec_named(&order).expect("msgpack");
                assert_eq!(pc.len(), target);
                assert_eq!(postcard::from_bytes::<Order>(&pc).expect("pc"), order);
                assert_eq!(serde_json::from_slice::<Order>(&js).expect("js"), order);
                assert_eq!(rmp_serde::from_slice::<Order>(&mp).expect("mp"), order);
                let mut m: [Vec<f64>; 6] = Default::default();
                for rep in 0..REPS {
                    for k in 0..6 {
                        let i = (rep + k) % 6;
                        let ns = match i {
                            0 => time_ns(|| {
                                black_box(postcard::to_allocvec(black_box(&order)).expect("e"));
                            }),
                            1 => time_ns(|| {
                                let v: Order = postcard::from_bytes(black_box(&pc)).expect("d");
                                black_box(v);
                            }),
                            2 => time_ns(|| {
                                black_box(serde_json::to_vec(black_box(&order)).expect("e"));
                            }),
                            3 => time_ns(|| {
                                let v: Order = serde_json::from_slice(black_box(&js)).expect("d");
                                black_box(v);
                            }),
                            4 => time_ns(|| {
                                black_box(rmp_serde::to_vec_named(black_box(&order)).expect("e"));
                            }),
                            _ => time_ns(|| {
                                let v: Order = rmp_serde::from_slice(black_box(&mp)).expect("d");
                                black_box(v);
                            }),
                        };
                        m[i].push(ns);
                    }
                }
                t7.row(vec![
                    size_label(target as u64),
                    "postcard".into(),
                    pc.len().to_string(),
                    cell(&m[0], 0),
                    cell(&m[1], 0),
                ]);
                t7.row(vec![
                    size_label(target as u64),
                    "serde_json".into(),
                    js.len().to_string(),
                    cell(&m[2], 0),
                    cell(&m[3], 0),
                ]);
                t7.row(vec![
                    size_label(target as u64),
                    "MessagePack (rmp-serde, named fields)".into(),
                    mp.len().to_string(),
                    cell(&m[4], 0),
                    cell(&m[5], 0),
                ]);
                t7.note(format!(
                    "{}: {} lines; serde_json / postcard: {:.2}× the bytes, \
                 {:.2}× the decode time; MessagePack / postcard: {:.2}× the bytes, {:.2}× the \
                 decode time.",
                    size_label(target as u64),
                    order.lines.len(),
                    js.len() as f64 / pc.len() as f64,
                    median(&m[3]) / median(&m[1]),
                    mp.len() as f64 / pc.len() as f64,
                    median(&m[5]) / median(&m[1])
                ));
            }
            t7.note(
                "MessagePack is what `cached` stores its Redis values in (so its Redis hits in \
             table 1 include a MessagePack decode)."
                    .into(),
            );
            tables.push(t7);
        }

        // ---- 8: compression
        if enabled("8") {
            let mut t8 = Table::new(
                "8. Compression through cachette (deflate level 6): JSON text value",
                &[
                    "value",
                    "stored, compressed / plain, B",
                    "payload ratio",
                    "write (`Cache::set`, memory), compressed / plain, µs",
                    "hit (`#[cached]`, memory), compressed / plain, µs",
                    "deflate cost (write difference), µs",
                    "inflate cost (hit difference), µs",
                ],
            );
            let mem_comp = Cache::builder().build().expect("memory cache");
            let mem_plain = Cache::builder()
                .compression_threshold(None)
                .build()
                .expect("memory cache");
            for size in [4096usize, 65536] {
                let text = make_json_text(size);
                let c = json_compressed(&memory, size).await.expect("json");
                let p = json_plain(&memory, size).await.expect("json");
                assert_eq!((c.len(), p.len()), (size, size));
                let mut m: [Vec<f64>; 4] = Default::default();
                for rep in 0..REPS {
                    for k in 0..4 {
                        let i = (rep + k) % 4;
                        let ns = match i {
                            0 => {
                                time_ns_async(|| async {
                                    mem_comp
                                        .set("peers:json:set", black_box(&text), HOUR)
                                        .await
                                        .expect("set");
                                })
                                .await
                            }
                            1 => {
                                time_ns_async(|| async {
                                    mem_plain
                                        .set("peers:json:set", black_box(&text), HOUR)
                                        .await
                                        .expect("set");
                                })
                                .await
                            }
                            2 => {
                                time_ns_async(|| async {
                                    black_box(json_compressed(&memory, size).await.expect("hit"));
                                })
                                .await
                            }
                            _ => {
                                time_ns_async(|| async {
                                    black_box(json_plain(&memory, size).await.expect("hit"));
                                })
                                .await
                            }
                        };
                        m[i].push(ns / 1e3);
                    }
                }
                let (sc, sp) = sizes_compressed[&size];
                t8.row(vec![
                    size_label(size as u64),
                    format!("{sc} / {sp}"),
                    format!("{:.3}", (sc - 32) as f64 / (sp - 32) as f64),
                    format!("{} / {}", cell(&m[0], 1), cell(&m[1], 1)),
                    format!("{} / {}", cell(&m[2], 1), cell(&m[3], 1)),
                    cell(&(0..REPS).map(|i| m[0][i] - m[1][i]).collect::<Vec<_>>(), 1),
                    cell(&(0..REPS).map(|i| m[2][i] - m[3][i]).collect::<Vec<_>>(), 1),
                ]);
            }
            t8.note(
                "Stored sizes are `STRLEN` of the entries two `#[cached]` functions (`compress = \
             true` / `compress = false`) wrote to Redis for the same value; payload ratio \
             excludes the 32 B entry header. The value is a `String` of JSON text (user \
             records), postcard-encoded (length prefix + bytes) before deflate. Writes and \
             hits are timed on in-process caches so no network is involved; the differences \
             are the deflate / inflate cost as cachette pays it (flate2 is not a direct \
             dependency, so it is not timed alone)."
                    .into(),
            );
            tables.push(t8);
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
