//! The L1 tier: what an in-process hit costs, how fast an invalidation reaches the L1 of other
//! processes, and what L1 saves on a Zipf workload of three processes.
//!
//! Run with `cargo bench -p cachette-benches --bench l1` (release profile). It starts its own
//! `redis-server` on a free loopback port and, for the rows that need other processes, runs
//! this binary again as workers (`CACHETTE_L1_BENCH_WORKER`), talking to them over stdin and
//! stdout. Default settings throughout (compression on, postcard), except `l1_max_bytes`.
//!
//! - **Hit**: `#[cached]` functions returning an `Order` (strings and a `Vec` of structs,
//!   256 B in postcard), untagged and with two tags, and one returning `Arc<Order>`, all
//!   served by L1, against moka's `sync::Cache::get` of an `Arc<Order>` alone and with a clone
//!   of the `Order` (what an owned return needs anyway), and quick_cache's `get` (the map L1
//!   uses) with the same clone; ns per call on one thread, and on each of two threads at once.
//! - **Propagation**: one process invalidates a key that two worker processes hold in L1;
//!   each worker polls its copy (an L1 read every 20 µs) and reports when it is gone, on the
//!   monotonic clock all processes share. From the start of the `invalidate` call.
//! - **Zipf**: three worker processes call a tagged `#[cached]` function over 10 000 keys drawn
//!   from Zipf(1.0), with one key invalidated per 100 calls, L1 off and on alternately: Redis
//!   commands per 1000 calls (from `INFO commandstats`) and each call's p99.

#[allow(dead_code)]
#[path = "peers/values.rs"]
mod values;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachette::{Cache, cached};
use cachette_benches::RedisServer;
use cachette_benches::stats::{Rng, percentile, zipf_cdf};
use cachette_benches::table::{Table, cell};
use values::{Order, make_order};

/// Read by `peers/values.rs`.
pub(crate) const SIZES: [u64; 2] = [256, 4096];
const REPS: usize = 5;
const HIT_RUN: Duration = Duration::from_millis(500);
const BATCH: u64 = 1000;
const WORKER_ENV: &str = "CACHETTE_L1_BENCH_WORKER";
const PROPAGATIONS: usize = 300;
const ZIPF_KEYS: u64 = 10_000;
const ZIPF_RUN: Duration = Duration::from_secs(3);
const ZIPF_WARMUP: Duration = Duration::from_secs(3);

fn order() -> Order {
    make_order(256)
}

#[cached(key = "order:{id}", ttl = "1h", cache = cache, skip = [cache])]
async fn get_order(cache: &Cache, id: u64) -> Result<Order, std::io::Error> {
    Ok(Order { id, ..order() })
}

#[cached(key = "torder:{id}", ttl = "1h", tags = ["orders", "order:{id}"], cache = cache, skip = [cache])]
async fn get_tagged_order(cache: &Cache, id: u64) -> Result<Order, std::io::Error> {
    Ok(Order { id, ..order() })
}

#[cached(key = "aorder:{id}", ttl = "1h", cache = cache, skip = [cache])]
async fn get_shared_order(cache: &Cache, id: u64) -> Result<Arc<Order>, std::io::Error> {
    Ok(Arc::new(Order { id, ..order() }))
}

fn l1_cache(server: &RedisServer) -> Cache {
    Cache::builder()
        .redis(server.url())
        .prefix("b")
        .l1_max_bytes(64 * 1024 * 1024)
        .build()
        .expect("the L1 cache")
}

/// `CLOCK_MONOTONIC` in ns: the clock every process shares.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec; the call keeps no pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Until the cache serves from L1 (its channel is proven).
async fn serving(cache: &Cache) {
    let start = Instant::now();
    while !cache.health().await.l1.is_some_and(|l| l.serving) {
        assert!(start.elapsed() < Duration::from_secs(10), "L1 never served");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// ns per call of the operation `make` builds, on each of `threads` OS threads at once (each
/// with a current-thread runtime of its own), averaged over the threads.
fn ns_per_call<F, Fut>(threads: usize, make: &(impl Fn() -> F + Sync)) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let measure = || {
        let mut f = make();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let start = Instant::now();
            let mut calls = 0u64;
            loop {
                for _ in 0..BATCH {
                    f().await;
                }
                calls += BATCH;
                let elapsed = start.elapsed();
                if elapsed >= HIT_RUN {
                    return elapsed.as_nanos() as f64 / calls as f64;
                }
            }
        })
    };
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads).map(|_| s.spawn(measure)).collect();
        runs.into_iter()
            .map(|r| r.join().expect("a measuring thread"))
            .sum::<f64>()
            / threads as f64
    })
}

/// One row: ns per call on one task, on each of two at once, and their ratio.
fn hit_row<F, Fut>(table: &mut Table, name: &str, make: impl Fn() -> F + Sync)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        one.push(ns_per_call(1, &make));
        two.push(ns_per_call(2, &make));
    }
    let ratio: Vec<f64> = one.iter().zip(&two).map(|(a, b)| b / a).collect();
    table.row(vec![
        name.to_owned(),
        cell(&one, 0),
        cell(&two, 0),
        cell(&ratio, 2),
    ]);
}

/// The hit rows: one task, then two tasks at once on the runtime's two workers.
fn hits(runtime: &tokio::runtime::Runtime, server: &RedisServer) -> Table {
    // 'static, so that the measured futures borrow it without an `Arc` clone per call.
    let cache: &'static Cache = Box::leak(Box::new(l1_cache(server)));
    runtime.block_on(async {
        serving(cache).await;
        for _ in 0..3 {
            get_order(cache, 1).await.expect("load");
            get_tagged_order(cache, 1).await.expect("load");
            get_shared_order(cache, 1).await.expect("load");
        }
    });
    // The in-process store of a cache without Redis: the L1 of its own process.
    let mem: &'static Cache = Box::leak(Box::new(Cache::builder().build().expect("a cache")));
    runtime.block_on(async {
        for _ in 0..3 {
            get_order(mem, 1).await.expect("load");
            get_tagged_order(mem, 1).await.expect("load");
            get_shared_order(mem, 1).await.expect("load");
        }
    });
    let hits_before = cache.stats().total.l1_hits;
    let moka: &'static moka::sync::Cache<u64, Arc<Order>> =
        Box::leak(Box::new(moka::sync::Cache::new(10_000)));
    moka.insert(1, Arc::new(order()));
    let quick: &'static quick_cache::sync::Cache<u64, Arc<Order>> =
        Box::leak(Box::new(quick_cache::sync::Cache::new(10_000)));
    quick.insert(1, Arc::new(order()));

    let mut table = Table::new(
        "L1 hit, 256 B `Order`, ns per call",
        &[
            "what",
            "1 thread",
            "2 threads (each)",
            "2 threads / 1 thread",
        ],
    );
    hit_row(
        &mut table,
        "`#[cached]` L1 hit, `Order` (a clone returned)",
        || {
            || async {
                black_box(get_order(cache, black_box(1)).await.ok());
            }
        },
    );
    hit_row(&mut table, "`#[cached]` L1 hit, `Order`, 2 tags", || {
        || async {
            black_box(get_tagged_order(cache, black_box(1)).await.ok());
        }
    });
    hit_row(&mut table, "`#[cached]` L1 hit, `Arc<Order>`", || {
        || async {
            black_box(get_shared_order(cache, black_box(1)).await.ok());
        }
    });
    hit_row(
        &mut table,
        "`#[cached]` in-process store hit, `Order` (a clone returned)",
        || {
            || async {
                black_box(get_order(mem, black_box(1)).await.ok());
            }
        },
    );
    hit_row(
        &mut table,
        "`#[cached]` in-process store hit, `Order`, 2 tags",
        || {
            || async {
                black_box(get_tagged_order(mem, black_box(1)).await.ok());
            }
        },
    );
    hit_row(
        &mut table,
        "`#[cached]` in-process store hit, `Arc<Order>`",
        || {
            || async {
                black_box(get_shared_order(mem, black_box(1)).await.ok());
            }
        },
    );
    hit_row(&mut table, "moka `get` (`Arc<Order>`)", || {
        || {
            black_box(moka.get(&black_box(1)));
            std::future::ready(())
        }
    });
    hit_row(&mut table, "quick_cache `get` (`Arc<Order>`)", || {
        || {
            black_box(quick.get(&black_box(1)));
            std::future::ready(())
        }
    });
    hit_row(&mut table, "moka `get` + clone of the `Order`", || {
        || {
            black_box(moka.get(&black_box(1)).map(|o| (*o).clone()));
            std::future::ready(())
        }
    });
    hit_row(
        &mut table,
        "quick_cache `get` + clone of the `Order`",
        || {
            || {
                black_box(quick.get(&black_box(1)).map(|o| (*o).clone()));
                std::future::ready(())
            }
        },
    );
    hit_row(&mut table, "clone of the `Order` alone", || {
        let o = order();
        move || {
            black_box(black_box(&o).clone());
            std::future::ready(())
        }
    });
    let s = cache.stats().total;
    assert_eq!(s.misses, 3, "every measured call was an L1 hit");
    table.note(format!(
        "{} L1 hits while measuring, 0 misses. Each row loops on OS threads, each with a \
         current-thread Tokio runtime of its own; \"2 threads\" runs two at once (the machine \
         has two cores).",
        s.l1_hits - hits_before
    ));
    table
}

/// A worker process and its pipes.
struct Worker {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Worker {
    fn spawn(job: &str) -> Worker {
        let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
            .env(WORKER_ENV, job)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("a worker process");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Worker { child, out }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the worker");
        stdin.flush().expect("flush");
    }

    fn recv(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read from the worker");
        assert!(!line.is_empty(), "the worker exited");
        line.trim().to_owned()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn propagation(runtime: &tokio::runtime::Runtime, server: &RedisServer) -> Table {
    let mut workers: Vec<Worker> = (0..2)
        .map(|_| Worker::spawn(&format!("watch {}", server.url())))
        .collect();
    for w in &mut workers {
        assert_eq!(w.recv(), "ready");
    }
    let cache = l1_cache(server);
    let mut from_call = Vec::new();
    runtime.block_on(serving(&cache));
    for i in 0..PROPAGATIONS {
        let id = i as u64;
        for w in &mut workers {
            w.send(&format!("hold {id}"));
        }
        for w in &mut workers {
            assert_eq!(w.recv(), "held");
        }
        let start = mono_ns();
        runtime
            .block_on(cache.invalidate(&format!("order:{id}")))
            .expect("the invalidation");
        for w in &mut workers {
            let gone: u64 = w.recv().parse().expect("a time");
            from_call.push(gone.saturating_sub(start));
        }
    }
    from_call.sort_unstable();
    let us = |q| percentile(&from_call, q) / 1e3;
    let mut table = Table::new(
        "L1 propagation: an invalidation in one process reaching the L1 of two others",
        &["samples", "p50", "p99", "max"],
    );
    table.row(vec![
        from_call.len().to_string(),
        format!("{:.0} µs", us(0.50)),
        format!("{:.0} µs", us(0.99)),
        format!("{:.0} µs", us(1.0)),
    ]);
    table.note(
        "From the start of `invalidate` in the first process to the moment a worker process \
         finds its copy gone (the start of the read that found none); the workers read their \
         copy every 200 µs (a sleep, about 260 µs in practice), so each sample is late by up \
         to that."
            .to_owned(),
    );
    table
}

/// The two ways to learn of a change, measured at the transport: a pub/sub message from
/// `PUBLISH` to its arrival at a subscriber, and a server-assisted client-side caching
/// invalidation (`CLIENT TRACKING` on a RESP3 connection) from the `SET` of a tracked key to
/// the arrival of its push.
fn channels(runtime: &tokio::runtime::Runtime, server: &RedisServer) -> Table {
    const SAMPLES: usize = 2000;
    let (pubsub, tracking) = runtime.block_on(async {
        use futures_util::StreamExt as _;
        let client = server.client();
        let mut publisher = client
            .get_multiplexed_async_connection()
            .await
            .expect("a connection");
        let mut subscriber = client
            .get_async_pubsub()
            .await
            .expect("a pub/sub connection");
        subscriber.subscribe("bench:l1").await.expect("SUBSCRIBE");
        let mut messages = subscriber.into_on_message();
        let mut pubsub = Vec::with_capacity(SAMPLES);
        for i in 0..SAMPLES {
            let start = Instant::now();
            let _: i64 = redis::cmd("PUBLISH")
                .arg("bench:l1")
                .arg(i)
                .query_async(&mut publisher)
                .await
                .expect("PUBLISH");
            messages.next().await.expect("a message");
            pubsub.push(start.elapsed().as_nanos() as u64);
        }

        let resp3 = redis::Client::open(format!("{}?protocol=resp3", server.url()))
            .expect("a RESP3 client");
        let (tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
        let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
        let mut tracked = resp3
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("a RESP3 connection");
        let _: () = redis::cmd("CLIENT")
            .arg(&["TRACKING", "ON"])
            .query_async(&mut tracked)
            .await
            .expect("CLIENT TRACKING ON");
        let mut tracking = Vec::with_capacity(SAMPLES);
        for i in 0..SAMPLES {
            let key = format!("bench:tracked:{i}");
            let _: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut tracked)
                .await
                .expect("GET");
            let start = Instant::now();
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .query_async(&mut publisher)
                .await
                .expect("SET");
            loop {
                let push = pushes.recv().await.expect("a push");
                if push.kind == redis::PushKind::Invalidate {
                    break;
                }
            }
            tracking.push(start.elapsed().as_nanos() as u64);
        }
        (pubsub, tracking)
    });
    let mut table = Table::new(
        "Coherence channel at the transport: pub/sub against CLIENT TRACKING, one process",
        &["channel", "p50", "p99"],
    );
    for (name, mut v) in [
        ("`PUBLISH` → message at a subscriber", pubsub),
        ("`SET` of a tracked key → invalidation push", tracking),
    ] {
        v.sort_unstable();
        table.row(vec![
            name.to_owned(),
            format!("{:.0} µs", percentile(&v, 0.5) / 1e3),
            format!("{:.0} µs", percentile(&v, 0.99) / 1e3),
        ]);
    }
    table.note(format!(
        "{SAMPLES} samples each, loopback, from the command's send to the arrival."
    ));
    table
}

/// `INFO commandstats` calls, summed over every command.
fn commands(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .expect("INFO");
    info.lines()
        .filter_map(|l| l.split("calls=").nth(1))
        .filter_map(|l| l.split(',').next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

fn zipf(server: &RedisServer) -> Table {
    let mut table = Table::new(
        "Zipf(1.0) over 10 000 keys, three processes, 1 invalidation per 100 calls",
        &[
            "L1",
            "operations/s (3 processes)",
            "Redis commands per 1000 operations",
            "p99 of a read",
        ],
    );
    let (mut rows_off, mut rows_on): (Vec<[f64; 3]>, Vec<[f64; 3]>) = (Vec::new(), Vec::new());
    for rep in 0..REPS {
        for l1 in if rep % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let _: () = redis::cmd("FLUSHALL")
                .query(&mut server.conn())
                .expect("FLUSHALL");
            let mut workers: Vec<Worker> = (0..3)
                .map(|i| Worker::spawn(&format!("zipf {} {l1} {}", server.url(), rep * 10 + i)))
                .collect();
            for w in &mut workers {
                assert_eq!(w.recv(), "ready");
                w.send("warm");
            }
            for w in &mut workers {
                assert_eq!(w.recv(), "warmed");
            }
            let before = commands(server);
            for w in &mut workers {
                w.send("go");
            }
            let (mut calls, mut p99s, mut secs) = (0u64, Vec::new(), 0.0);
            for w in &mut workers {
                let r: Vec<f64> = w
                    .recv()
                    .split(' ')
                    .map(|n| n.parse().expect("a number"))
                    .collect();
                calls += r[0] as u64;
                p99s.push(r[1]);
                secs += r[2] / 3.0;
            }
            let after = commands(server);
            // The commands of reading INFO itself are not the workload's.
            let per_1000 = (after - before).saturating_sub(1) as f64 * 1000.0 / calls as f64;
            let row = [
                calls as f64 / secs,
                per_1000,
                p99s.iter().copied().fold(0.0, f64::max),
            ];
            if l1 {
                rows_on.push(row)
            } else {
                rows_off.push(row)
            }
        }
    }
    for (name, rows) in [("off", &rows_off), ("on", &rows_on)] {
        let col = |i: usize| rows.iter().map(|r| r[i]).collect::<Vec<_>>();
        table.row(vec![
            name.to_owned(),
            cell(&col(0), 0),
            cell(&col(1), 1),
            format!("{} µs", cell(&col(2), 0)),
        ]);
    }
    table.note(format!(
        "Each process: 16 tasks, each calling a `#[cached]` function with two tags (or, one \
         time in 100, invalidating a key) once a millisecond (16 000 operations/s per process, \
         the same with L1 off and on), for {} s after an unmeasured {} s; p99 of the reads, \
         the largest of the three processes' p99s. Commands include the backplane's \
         PUBLISHes (five per propagation bound per process, and one per invalidation or write).",
        ZIPF_RUN.as_secs(),
        ZIPF_WARMUP.as_secs()
    ));
    table
}

/// The Zipf workload of one process for `run`: 16 tasks, one operation a millisecond each
/// (the same offered load with L1 off and on), one in 100 an invalidation; returns the
/// operations, the latencies of the reads, and the seconds it took.
async fn zipf_calls(
    cache: &Cache,
    cdf: &Arc<Vec<f64>>,
    seed: u64,
    run: Duration,
) -> (usize, Vec<u64>, f64) {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16u64 {
        let (cache, cdf) = (cache.clone(), cdf.clone());
        tasks.spawn(async move {
            let mut rng = Rng::new(seed * 100 + t + 1);
            let (mut ops, mut lat) = (0usize, Vec::with_capacity(8_000));
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while start.elapsed() < run {
                tick.tick().await;
                let u = rng.unit();
                let id = cdf.partition_point(|&c| c < u) as u64;
                ops += 1;
                if rng.next() % 100 == 0 {
                    let _ = cache.invalidate(&format!("torder:{id}")).await;
                } else {
                    let t0 = Instant::now();
                    black_box(get_tagged_order(&cache, id).await.ok());
                    lat.push(t0.elapsed().as_nanos() as u64);
                }
            }
            (ops, lat)
        });
    }
    let (mut ops, mut all) = (0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (n, lat) = done.expect("a task");
        ops += n;
        all.extend(lat);
    }
    (ops, all, start.elapsed().as_secs_f64())
}

/// A worker process: `watch <url>` holds keys in L1 and reports when their copies are gone;
/// `zipf <url> <l1> <seed>` runs the Zipf workload and reports calls, p99 (µs) and seconds.
fn worker(job: &str) {
    let parts: Vec<&str> = job.split(' ').collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if parts[0] == "watch" { 1 } else { 2 })
        .enable_all()
        .build()
        .expect("a runtime");
    let server_url = parts[1].to_owned();
    let build = |l1: bool| {
        let b = Cache::builder().redis(server_url.clone()).prefix("b");
        let b = if l1 {
            b.l1_max_bytes(64 * 1024 * 1024)
        } else {
            b
        };
        b.build().expect("the worker's cache")
    };
    let mut stdin = std::io::stdin().lock().lines();
    let mut stdout = std::io::stdout().lock();
    match parts[0] {
        "watch" => {
            let cache = build(true);
            runtime.block_on(serving(&cache));
            writeln!(stdout, "ready").expect("stdout");
            stdout.flush().expect("flush");
            while let Some(Ok(line)) = stdin.next() {
                let id: u64 = line
                    .strip_prefix("hold ")
                    .and_then(|n| n.parse().ok())
                    .expect("hold <id>");
                let l1_hit = |cache: &Cache| {
                    let before = cache.stats().total.l1_hits;
                    runtime.block_on(get_order(cache, id)).expect("a call");
                    cache.stats().total.l1_hits > before
                };
                while !l1_hit(&cache) {}
                writeln!(stdout, "held").expect("stdout");
                stdout.flush().expect("flush");
                // The time a read that found no copy began: the copy was gone by then (the
                // read itself goes on to Redis and loads, which is not propagation).
                let gone = loop {
                    std::thread::sleep(Duration::from_micros(200));
                    let at = mono_ns();
                    if !l1_hit(&cache) {
                        break at;
                    }
                };
                writeln!(stdout, "{gone}").expect("stdout");
                stdout.flush().expect("flush");
            }
        }
        _ => {
            let l1 = parts[2] == "true";
            let seed: u64 = parts[3].parse().expect("a seed");
            let cache = build(l1);
            if l1 {
                runtime.block_on(serving(&cache));
            }
            writeln!(stdout, "ready").expect("stdout");
            stdout.flush().expect("flush");
            let cdf = Arc::new(zipf_cdf(ZIPF_KEYS));
            // Unmeasured: every process's L1 (and Redis) reaches its steady state first.
            let _ = stdin.next();
            runtime.block_on(zipf_calls(&cache, &cdf, seed, ZIPF_WARMUP));
            writeln!(stdout, "warmed").expect("stdout");
            stdout.flush().expect("flush");
            let _ = stdin.next();
            let (calls, mut lat, secs) =
                runtime.block_on(zipf_calls(&cache, &cdf, seed + 1, ZIPF_RUN));
            lat.sort_unstable();
            writeln!(stdout, "{calls} {} {secs}", percentile(&lat, 0.99) / 1e3).expect("stdout");
            stdout.flush().expect("flush");
        }
    }
}

fn main() {
    if let Ok(job) = std::env::var(WORKER_ENV) {
        worker(&job);
        return;
    }
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    println!("# l1: the in-process tier in front of Redis\n");
    println!(
        "redis-server on 127.0.0.1:{} (`--save \"\" --appendonly no`); {REPS} repetitions; \
         cells are median (min–max) over repetitions. Default settings (compression on, \
         postcard), `l1_max_bytes` 64 MiB, propagation bound 500 ms.\n",
        server.port()
    );
    hits(&runtime, &server).print();
    println!();
    channels(&runtime, &server).print();
    println!();
    propagation(&runtime, &server).print();
    println!();
    zipf(&server).print();
    println!("\ntotal run time: {:.0} s", started.elapsed().as_secs_f64());
}
