//! The hit path as users run it: default settings (compression on), an `Order` value (strings
//! and a `Vec` of structs) of 256 B and 4 KiB in postcard, untagged and with two tags, against
//! raw redis-rs and the `cached` crate in the same run; the compression algorithms side by
//! side; a cold-key stampede; a read that would take the lease in the same round trip.
//!
//! Run with `cargo bench -p cachette-benches --bench hits`. It starts its own `redis-server` on
//! a free loopback port (127.0.0.1:6379 is never touched) and prints markdown tables.
//!
//! Sides of the Redis hit rows, per operation, 64 tasks on a 2-worker runtime:
//!
//! * **raw**: `GET` of a key holding the value's postcard bytes on one redis-rs
//!   `MultiplexedConnection` (cloned per task), then `postcard::from_bytes::<Order>`.
//! * **cachette**: a `#[cached]` function on a cache built with the defaults (LZ4 from 1 KiB),
//!   untagged, with two tags, and on a cache set to deflate (the previous default).
//! * **`cached`**: `cached` 4.1's `#[concurrent_cached]` on an `AsyncRedisCache<u64, Order>`.
//!
//! In the first table all 64 tasks read one key (callers of a hot key share reads); in the
//! second each task reads a key of its own (every call sends its own read).
//!
//! Every repetition runs all sides one after another, starting with a different side each
//! time; ratios are taken within a repetition against the raw side, then the median (min–max)
//! over repetitions is shown.

#[allow(dead_code)]
#[path = "peers/values.rs"]
mod values;

use std::hint::black_box;
use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachette::{Cache, Compression, LoadOptions, cached};
use cachette_benches::RedisServer;
use cachette_benches::ab::{Side, run_concurrent};
use cachette_benches::table::{Table, cell, ops_cell};
use redis::aio::MultiplexedConnection;
use values::{Order, make_order};

/// Read by `peers/values.rs`.
pub(crate) const SIZES: [u64; 2] = [256, 4096];
const REPS: usize = 5;
const RUN: Duration = Duration::from_millis(1500);
const TASKS: usize = 64;
const HOUR: Duration = Duration::from_secs(3600);

static LOADS: AtomicU64 = AtomicU64::new(0);
static REDIS_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn order(size: u64) -> Order {
    make_order(size as usize)
}

#[cached(key = "h:{size}", ttl = "1h", cache = cache, skip = [cache])]
async fn plain(cache: &Cache, size: u64) -> Result<Order, std::io::Error> {
    LOADS.fetch_add(1, Relaxed);
    Ok(order(size))
}

#[cached(key = "t:{size}", ttl = "1h", tags = ["orders", "order:{size}"], cache = cache, skip = [cache])]
async fn tagged(cache: &Cache, size: u64) -> Result<Order, std::io::Error> {
    LOADS.fetch_add(1, Relaxed);
    Ok(order(size))
}

/// An `AsyncRedisCache` on the bench server, TTL 1 h.
async fn cached_store() -> cached::AsyncRedisCache<u64, Order> {
    cached::AsyncRedisCache::builder("cached-hits")
        .ttl(HOUR)
        .connection_string(REDIS_URL.get().expect("set before any call"))
        .connection_manager(true)
        .build()
        .await
        .expect("an AsyncRedisCache on the bench server")
}

#[cached::macros::concurrent_cached(
    map_error = r##"|e| format!("{e:?}")"##,
    ty = "cached::AsyncRedisCache<u64, Order>",
    create = r##"{ cached_store().await }"##
)]
async fn rival(size: u64) -> Result<Order, String> {
    LOADS.fetch_add(1, Relaxed);
    Ok(order(size))
}

#[cached(key = "s:{size}:{task}", ttl = "1h", cache = cache, skip = [cache])]
async fn spread(cache: &Cache, size: u64, task: u64) -> Result<Order, std::io::Error> {
    LOADS.fetch_add(1, Relaxed);
    Ok(order(size))
}

#[cached(key = "st:{size}:{task}", ttl = "1h", tags = ["orders", "order:{size}"], cache = cache, skip = [cache])]
async fn spread_tagged(cache: &Cache, size: u64, task: u64) -> Result<Order, std::io::Error> {
    LOADS.fetch_add(1, Relaxed);
    Ok(order(size))
}

/// The side of a row where each task reads a key of its own (nothing for callers to share):
/// the tasks take their numbers from `next` on their first call.
#[derive(Clone)]
struct OwnKey {
    next: std::sync::Arc<AtomicU64>,
    task: Option<u64>,
}

impl OwnKey {
    fn new() -> OwnKey {
        OwnKey {
            next: std::sync::Arc::new(AtomicU64::new(0)),
            task: None,
        }
    }

    fn task(&mut self) -> u64 {
        let next = &self.next;
        *self
            .task
            .get_or_insert_with(|| next.fetch_add(1, Relaxed) % TASKS as u64)
    }
}

/// One multiplexed connection to `server`, cloned per task by the sides that use it.
async fn multiplexed(server: &RedisServer) -> MultiplexedConnection {
    server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("a multiplexed connection")
}

/// The raw side's hit: `GET` on the multiplexed connection, then postcard.
async fn raw_get(conn: &mut MultiplexedConnection, key: &str) -> Order {
    let bytes: Vec<u8> = redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .expect("GET");
    postcard::from_bytes(&bytes).expect("decodes")
}

/// One side of the Redis hit rows where each task reads its own key.
#[derive(Clone)]
enum OwnHit {
    Raw(MultiplexedConnection, u64, OwnKey),
    Plain(Cache, u64, OwnKey),
    Tagged(Cache, u64, OwnKey),
}

impl Side for OwnHit {
    async fn call(&mut self) {
        match self {
            OwnHit::Raw(conn, size, own) => {
                black_box(raw_get(conn, &format!("raw:{size}:{}", own.task())).await);
            }
            OwnHit::Plain(cache, size, own) => {
                let task = own.task();
                black_box(spread(cache, *size, task).await.expect("hit"));
            }
            OwnHit::Tagged(cache, size, own) => {
                let task = own.task();
                black_box(spread_tagged(cache, *size, task).await.expect("hit"));
            }
        }
    }
}

/// One side of the Redis hit rows.
#[derive(Clone)]
enum Hit {
    Raw(MultiplexedConnection, u64),
    Plain(Cache, u64),
    Tagged(Cache, u64),
    Rival(u64),
}

impl Side for Hit {
    async fn call(&mut self) {
        match self {
            Hit::Raw(conn, size) => {
                // The key is rendered per call, as the macro does.
                black_box(raw_get(conn, &format!("raw:{size}")).await);
            }
            Hit::Plain(cache, size) => {
                black_box(plain(cache, *size).await.expect("hit"));
            }
            Hit::Tagged(cache, size) => {
                black_box(tagged(cache, *size).await.expect("hit"));
            }
            Hit::Rival(size) => {
                black_box(rival(*size).await.expect("hit"));
            }
        }
    }
}

/// Runs `sides` `REPS` times each, interleaved; ops/s per side per repetition.
async fn interleaved<S: Side>(sides: &[S]) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); sides.len()];
    for side in sides {
        run_concurrent(side, TASKS, Duration::from_millis(300)).await;
    }
    for rep in 0..REPS {
        for k in 0..sides.len() {
            let i = (rep + k) % sides.len();
            out[i].push(run_concurrent(&sides[i], TASKS, RUN).await);
        }
    }
    out
}

fn ratio_cell(a: &[f64], b: &[f64]) -> String {
    let r: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    cell(&r, 2)
}

fn stored_len(server: &RedisServer, key: &str) -> usize {
    let v: Vec<u8> = redis::cmd("GET")
        .arg(key)
        .query(&mut server.conn())
        .expect("GET");
    v.len()
}

async fn redis_hits(server: &RedisServer, defaults: &Cache, deflate: &Cache) {
    let mut table = Table::new(
        "Redis hit, 64 tasks, ops/s (ratio: within each repetition, to raw)",
        &[
            "value",
            "side",
            "stored, B",
            "ops/s",
            "/ raw",
            "/ cachette untagged",
        ],
    );
    let conn = multiplexed(server).await;
    for size in SIZES {
        let raw_key = format!("raw:{size}");
        let bytes = postcard::to_allocvec(&order(size)).expect("encodes");
        assert_eq!(bytes.len() as u64, size);
        let _: () = redis::cmd("SET")
            .arg(&raw_key)
            .arg(&bytes)
            .query(&mut server.conn())
            .expect("SET");
        plain(defaults, size).await.expect("fills");
        tagged(defaults, size).await.expect("fills");
        plain(deflate, size).await.expect("fills");
        rival(size).await.expect("fills");
        let loads = LOADS.load(Relaxed);
        let sides = [
            Hit::Raw(conn.clone(), size),
            Hit::Plain(defaults.clone(), size),
            Hit::Tagged(defaults.clone(), size),
            Hit::Plain(deflate.clone(), size),
            Hit::Rival(size),
        ];
        let got = interleaved(&sides).await;
        assert_eq!(LOADS.load(Relaxed), loads, "no body ran while measuring");
        let names = [
            ("raw redis-rs GET + postcard", raw_key),
            (
                "cachette, defaults",
                "hits:h:".to_owned() + &size.to_string(),
            ),
            ("cachette, defaults, 2 tags", format!("hits:t:{size}")),
            ("cachette, deflate", format!("hits-deflate:h:{size}")),
            (
                "`cached` 4.1",
                format!("cached-redis-store:cached-hits:{size}"),
            ),
        ];
        for (i, (name, key)) in names.iter().enumerate() {
            table.row(vec![
                format!("{size} B"),
                name.to_string(),
                stored_len(server, key).to_string(),
                ops_cell(&got[i]),
                ratio_cell(&got[i], &got[0]),
                ratio_cell(&got[i], &got[1]),
            ]);
        }
    }
    table.note(format!(
        "{TASKS} tasks, {REPS} repetitions × {} ms per side, sides interleaved; cells median \
         (min–max) over repetitions; no function body ran while measuring (checked).",
        RUN.as_millis()
    ));
    table.print();
}

/// The Redis hit rows again with a key per task: every call sends its own read, as callers of
/// different keys do (the rows above share reads between the callers of their one key).
async fn own_key_hits(server: &RedisServer, defaults: &Cache) {
    let mut table = Table::new(
        "Redis hit, 64 tasks, each reading a key of its own, ops/s (ratio: within each repetition)",
        &["value", "side", "ops/s", "/ raw", "/ cachette untagged"],
    );
    let conn = multiplexed(server).await;
    for size in SIZES {
        let bytes = postcard::to_allocvec(&order(size)).expect("encodes");
        for task in 0..TASKS as u64 {
            let _: () = redis::cmd("SET")
                .arg(format!("raw:{size}:{task}"))
                .arg(&bytes)
                .query(&mut server.conn())
                .expect("SET");
            spread(defaults, size, task).await.expect("fills");
            spread_tagged(defaults, size, task).await.expect("fills");
        }
        let loads = LOADS.load(Relaxed);
        let sides = [
            OwnHit::Raw(conn.clone(), size, OwnKey::new()),
            OwnHit::Plain(defaults.clone(), size, OwnKey::new()),
            OwnHit::Tagged(defaults.clone(), size, OwnKey::new()),
        ];
        let got = interleaved(&sides).await;
        assert_eq!(LOADS.load(Relaxed), loads, "no body ran while measuring");
        let names = [
            "raw redis-rs GET + postcard",
            "cachette, defaults",
            "cachette, defaults, 2 tags",
        ];
        for (i, name) in names.iter().enumerate() {
            table.row(vec![
                format!("{size} B"),
                name.to_string(),
                ops_cell(&got[i]),
                ratio_cell(&got[i], &got[0]),
                ratio_cell(&got[i], &got[1]),
            ]);
        }
    }
    table.note(format!(
        "{TASKS} tasks, task i reading key i of 64 on every call, {REPS} repetitions × {} ms per \
         side, sides interleaved; no function body ran while measuring (checked).",
        RUN.as_millis()
    ));
    table.print();
}

/// ns per call of `f`, repeated over about `dur`.
fn time_ns(dur: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// One direction of a compression algorithm.
type Codec = Box<dyn Fn(&[u8]) -> Vec<u8>>;

fn compression() {
    let mut table = Table::new(
        "Compression of the postcard `Order`: size, and µs to compress and to decompress",
        &[
            "value",
            "algorithm",
            "compressed / plain",
            "compress, µs",
            "decompress, µs",
        ],
    );
    for size in [4096u64, 65536] {
        let plain = postcard::to_allocvec(&order(size)).expect("encodes");
        let algorithms: [(&str, Codec, Codec); 5] = [
            (
                "lz4 (lz4_flex, block)",
                Box::new(lz4_flex::block::compress_prepend_size),
                Box::new(|c| lz4_flex::block::decompress_size_prepended(c).expect("lz4")),
            ),
            (
                "deflate level 1",
                Box::new(|p| deflate(p, 1)),
                Box::new(inflate),
            ),
            (
                "deflate level 6 (flate2)",
                Box::new(|p| deflate(p, 6)),
                Box::new(inflate),
            ),
            (
                "zstd level 1",
                Box::new(|p| zstd::bulk::compress(p, 1).expect("zstd")),
                Box::new(|c| zstd::bulk::decompress(c, 1 << 20).expect("zstd")),
            ),
            (
                "zstd level 3",
                Box::new(|p| zstd::bulk::compress(p, 3).expect("zstd")),
                Box::new(|c| zstd::bulk::decompress(c, 1 << 20).expect("zstd")),
            ),
        ];
        for (name, compress, decompress) in &algorithms {
            let packed = compress(&plain);
            assert_eq!(decompress(&packed), plain);
            let (mut c, mut d) = (Vec::new(), Vec::new());
            for _ in 0..REPS {
                c.push(
                    time_ns(Duration::from_millis(200), || {
                        black_box(compress(black_box(&plain)));
                    }) / 1e3,
                );
                d.push(
                    time_ns(Duration::from_millis(200), || {
                        black_box(decompress(black_box(&packed)));
                    }) / 1e3,
                );
            }
            table.row(vec![
                format!("{} KiB", size / 1024),
                name.to_string(),
                format!("{:.3}", packed.len() as f64 / plain.len() as f64),
                cell(&c, 2),
                cell(&d, 2),
            ]);
        }
    }
    table.print();
}

fn deflate(p: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(p).expect("deflate");
    e.finish().expect("deflate")
}

fn inflate(c: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(c)
        .read_to_end(&mut out)
        .expect("inflate");
    out
}

/// Hits of a 64 KiB value by compression setting.
async fn large_hits(server: &RedisServer) {
    let mut table = Table::new(
        "Redis hit of a 64 KiB `Order`, 64 tasks, by compression (ratio to no compression)",
        &["compression", "stored, B", "ops/s", "/ none"],
    );
    let caches: Vec<(&str, Cache)> = vec![
        (
            "none",
            builder(server, "big-none").compression_threshold(None),
        ),
        ("lz4 (default)", builder(server, "big-lz4")),
        (
            "deflate level 6",
            builder(server, "big-deflate").compression(Compression::Deflate),
        ),
    ]
    .into_iter()
    .map(|(n, b)| (n, b.build().expect("cache")))
    .collect();
    let size = 65536;
    for (_, c) in &caches {
        plain(c, size).await.expect("fills");
    }
    let sides: Vec<Hit> = caches
        .iter()
        .map(|(_, c)| Hit::Plain(c.clone(), size))
        .collect();
    let got = interleaved(&sides).await;
    for (i, (name, _)) in caches.iter().enumerate() {
        let prefix = ["big-none", "big-lz4", "big-deflate"][i];
        table.row(vec![
            name.to_string(),
            stored_len(server, &format!("{prefix}:h:{size}")).to_string(),
            ops_cell(&got[i]),
            ratio_cell(&got[i], &got[0]),
        ]);
    }
    table.print();
}

fn builder(server: &RedisServer, prefix: &str) -> cachette::CacheBuilder {
    Cache::builder().redis(server.url()).prefix(prefix)
}

/// `calls` per command from `INFO commandstats`.
fn command_counts(server: &RedisServer) -> Vec<(String, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .expect("INFO");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .filter(|(name, _)| !matches!(name.as_str(), "info" | "config" | "client" | "hello"))
        .collect()
}

async fn stampede(server: &RedisServer, cache: &Cache) {
    let mut table = Table::new(
        "Stampede: 1000 tasks call one cold key at once (a 20 ms load)",
        &[
            "repetition",
            "loads",
            "commands (INFO commandstats, scripts' inner commands included)",
            "took, ms",
        ],
    );
    let o = LoadOptions::ttl(HOUR);
    for rep in 0..REPS {
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut server.conn())
            .expect("RESETSTAT");
        let loads = std::sync::Arc::new(AtomicU64::new(0));
        let key = format!("cold:{rep}");
        let started = Instant::now();
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (cache, o, key, loads) = (cache.clone(), o.clone(), key.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(&key, &o, || async move {
                            loads.fetch_add(1, Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, String>(order(256))
                        })
                        .await
                        .expect("a value")
                })
            })
            .collect();
        for t in tasks {
            black_box(t.await.expect("a task"));
        }
        let took = started.elapsed();
        let counts = command_counts(server);
        table.row(vec![
            rep.to_string(),
            loads.load(Relaxed).to_string(),
            counts
                .iter()
                .map(|(n, c)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", "),
            format!("{:.1}", took.as_secs_f64() * 1e3),
        ]);
    }
    table.print();
}

/// A hit read by a script that would also take the lease on a miss, against a plain `GET`.
async fn read_with_lease(server: &RedisServer) {
    const SCRIPT: &str = "local v = redis.call('GET', KEYS[1]) \
        if v then return v end \
        redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', 2000) return false";
    let conn = multiplexed(server).await;
    let bytes = postcard::to_allocvec(&order(256)).expect("encodes");
    let _: () = redis::cmd("SET")
        .arg("lease-read")
        .arg(&bytes)
        .query(&mut server.conn())
        .expect("SET");
    let script = redis::Script::new(SCRIPT);
    #[derive(Clone)]
    enum Read {
        Get(MultiplexedConnection),
        Script(MultiplexedConnection, redis::Script),
    }
    impl Side for Read {
        async fn call(&mut self) {
            let v: Vec<u8> = match self {
                Read::Get(c) => redis::cmd("GET").arg("lease-read").query_async(c).await,
                Read::Script(c, s) => {
                    s.key("lease-read")
                        .key("lease-read:lease")
                        .arg("token")
                        .invoke_async(c)
                        .await
                }
            }
            .expect("a hit");
            black_box(v);
        }
    }
    let sides = [Read::Get(conn.clone()), Read::Script(conn, script)];
    let mut got = [Vec::new(), Vec::new()];
    for side in &sides {
        run_concurrent(side, TASKS, Duration::from_millis(300)).await;
    }
    for rep in 0..REPS {
        for k in 0..2 {
            let i = (rep + k) % 2;
            got[i].push(run_concurrent(&sides[i], TASKS, RUN).await);
        }
    }
    let mut table = Table::new(
        "A hit read by `GET` or by a script that would take the lease on a miss, 256 B, 64 tasks",
        &["read", "ops/s", "/ GET"],
    );
    table.row(vec!["GET".into(), ops_cell(&got[0]), "1".into()]);
    table.row(vec![
        "EVALSHA (GET, or SET NX PX of the lease)".into(),
        ops_cell(&got[1]),
        ratio_cell(&got[1], &got[0]),
    ]);
    table.print();
}

fn main() {
    let server = RedisServer::start();
    REDIS_URL.set(server.url()).expect("once");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    println!("redis-server on {}\n", server.url());
    rt.block_on(async {
        let defaults = builder(&server, "hits").build().expect("cache");
        let deflate = builder(&server, "hits-deflate")
            .compression(Compression::Deflate)
            .build()
            .expect("cache");
        // `HITS_ONLY=redis` runs the two Redis hit tables alone, `HITS_ONLY=own` the second
        // (for profiling).
        let only = std::env::var("HITS_ONLY").ok();
        if only.as_deref() != Some("own") {
            redis_hits(&server, &defaults, &deflate).await;
        }
        own_key_hits(&server, &defaults).await;
        if only.is_some() {
            return;
        }
        large_hits(&server).await;
        stampede(&server, &defaults).await;
        read_with_lease(&server).await;
    });
    if std::env::var_os("HITS_ONLY").is_none() {
        compression();
    }
    println!("total run time: {:.0} s", started.elapsed().as_secs_f64());
}
