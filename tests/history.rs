//! A seeded, randomized, concurrent history of reads, writes and invalidations, checked
//! against cachette's promises: no read returns a row version older than the newest one whose
//! invalidation completed before the read began; every call returns what its loader would
//! (no cache error reaches a caller); loads of one key stay bounded.
//!
//! Readers call `get_or_load_owned` over a model database whose rows carry versions (tags,
//! stale-while-revalidate, fail-safe, loader timeouts, failing loaders, callers cancelled at
//! random); writers bump a row and then invalidate it by key, by its tag or by the tag of
//! every row. On Redis a fault task freezes the server (SIGSTOP/SIGCONT), kills the cache's
//! connections (`CLIENT KILL`) and writes garbage over entries.
//!
//! `CACHETTE_HISTORY_SEED=<n>` replays a seed; `CACHETTE_HISTORY_SECS=<s>` runs longer (each
//! store runs that long). A violation prints the seed and the events of the offending row.

mod support;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachette::{Cache, LoadOptions};
use support::RedisServer;
use support::rng::Rng;

const ROWS: u64 = 6;
const READERS: usize = 8;
const WRITERS: usize = 2;

/// The model database: one version per row, bumped by writers.
struct Db {
    versions: Vec<AtomicU64>,
    /// Loads of each row running now, and the most ever seen at once.
    running: Vec<AtomicU32>,
    most_running: AtomicU32,
}

/// A load of a row, counted while it runs (a cancelled load stops counting when dropped).
struct Running<'a> {
    db: &'a Db,
    row: u64,
}

impl<'a> Running<'a> {
    fn start(db: &'a Db, row: u64) -> Self {
        let now = db.running[row as usize].fetch_add(1, SeqCst) + 1;
        db.most_running.fetch_max(now, SeqCst);
        Running { db, row }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.db.running[self.row as usize].fetch_sub(1, SeqCst);
    }
}

/// One event of the history, stamped with a global sequence (a linearization of the calls).
#[derive(Debug, Clone)]
enum Event {
    Read {
        row: u64,
        start: u64,
        end: u64,
        version: u64,
    },
    /// An invalidation of `rows` that began after their versions reached `versions`.
    Invalidated {
        rows: Vec<u64>,
        versions: Vec<u64>,
        start: u64,
        end: u64,
        #[allow(dead_code)] // read through Debug, in a violation's excerpt
        how: &'static str,
    },
}

struct Run {
    db: Db,
    clock: AtomicU64,
    events: Mutex<Vec<Event>>,
    /// Calls that returned something their loader could not have returned.
    wrong: Mutex<Vec<String>>,
    reads: AtomicU64,
    invalidations: AtomicU64,
    faults: AtomicU64,
}

impl Run {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, SeqCst)
    }
}

fn seed() -> u64 {
    std::env::var("CACHETTE_HISTORY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC4C4_E77E_5EED_0011)
}

fn budget() -> Duration {
    std::env::var("CACHETTE_HISTORY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(8))
}

/// The options of a read of `row`: every read path, chosen per call.
fn options(row: u64, rng: &mut Rng) -> LoadOptions {
    let mut o = LoadOptions::ttl(Duration::from_millis(200 + rng.below(400)))
        .tag(format!("row:{row}"))
        .tag("rows");
    match rng.below(4) {
        0 => o = o.stale(Duration::from_millis(20 + rng.below(100))),
        1 => {
            o = o
                .fail_safe(Duration::from_millis(300))
                .timeout(Duration::from_millis(5 + rng.below(20)))
        }
        2 => o = o.jitter(20),
        _ => {}
    }
    o
}

async fn reader(run: Arc<Run>, cache: Cache, mut rng: Rng, until: Instant) {
    while Instant::now() < until {
        let row = rng.below(ROWS);
        let o = options(row, &mut rng);
        let delay = Duration::from_micros(rng.below(3000));
        let fails = rng.below(10) == 0;
        let loader = {
            let run = run.clone();
            move || async move {
                let _running = Running::start(&run.db, row);
                // The version is read at the start of the load: a load older than an
                // invalidation returns an older version.
                let version = run.db.versions[row as usize].load(SeqCst);
                tokio::time::sleep(delay).await;
                if fails {
                    Err(format!("row {row} unavailable"))
                } else {
                    Ok(version)
                }
            }
        };
        let start = run.tick();
        let key = format!("row:{row}");
        let call = cache.get_or_load_owned(&key, &o, loader);
        // Some callers hang up: their future is dropped mid-call.
        let got = if rng.below(8) == 0 {
            let limit = Duration::from_micros(rng.below(2000));
            match tokio::time::timeout(limit, call).await {
                Ok(got) => got,
                Err(_) => continue,
            }
        } else {
            call.await
        };
        let end = run.tick();
        run.reads.fetch_add(1, SeqCst);
        match got {
            Ok(version) => run.events.lock().unwrap().push(Event::Read {
                row,
                start,
                end,
                version,
            }),
            Err(e) if e == format!("row {row} unavailable") => {}
            Err(e) => run.wrong.lock().unwrap().push(e),
        }
    }
}

async fn writer(run: Arc<Run>, cache: Cache, mut rng: Rng, until: Instant) {
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_micros(500 + rng.below(3000))).await;
        let row = rng.below(ROWS);
        run.db.versions[row as usize].fetch_add(1, SeqCst);
        let (rows, how): (Vec<u64>, _) = match rng.below(3) {
            0 => (vec![row], "key"),
            1 => (vec![row], "tag"),
            _ => ((0..ROWS).collect(), "all"),
        };
        let versions = rows
            .iter()
            .map(|r| run.db.versions[*r as usize].load(SeqCst))
            .collect();
        let start = run.tick();
        // An invalidation that fails (the store is away) is queued and applied before any
        // later read reaches the store: it counts as completed when the call returns.
        let _ = match how {
            "key" => cache.invalidate(&format!("row:{row}")).await.map(|_| ()),
            "tag" => cache
                .invalidate_tag(&format!("row:{row}"))
                .await
                .map(|_| ()),
            _ => cache.invalidate_tag("rows").await.map(|_| ()),
        };
        let end = run.tick();
        run.invalidations.fetch_add(1, SeqCst);
        run.events.lock().unwrap().push(Event::Invalidated {
            rows,
            versions,
            start,
            end,
            how,
        });
    }
}

/// Freezes the server, kills the cache's connections and writes garbage over entries.
async fn faults(run: Arc<Run>, server: Arc<RedisServer>, mut rng: Rng, until: Instant) {
    let url = server.url();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(300))).await;
        run.faults.fetch_add(1, SeqCst);
        match rng.below(3) {
            0 => {
                server.pause();
                tokio::time::sleep(Duration::from_millis(20 + rng.below(300))).await;
                server.resume();
            }
            1 => {
                let url = url.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let mut admin = redis::Client::open(url)?.get_connection()?;
                    redis::cmd("CLIENT")
                        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
                        .query::<i64>(&mut admin)
                })
                .await;
            }
            _ => {
                let (url, row) = (url.clone(), rng.below(ROWS));
                let _ = tokio::task::spawn_blocking(move || {
                    let mut admin = redis::Client::open(url)?.get_connection()?;
                    redis::cmd("SET")
                        .arg(format!("h:row:{row}"))
                        .arg(&b"\x01garbage that is no entry at all, 32 bytes and more"[..])
                        .query::<()>(&mut admin)
                })
                .await;
            }
        }
    }
}

/// Checks the history; on a violation, the seed and the offending row's events.
fn check(run: &Run, store: &str, seed: u64) {
    let wrong = run.wrong.lock().unwrap();
    assert!(
        wrong.is_empty(),
        "{store}, seed {seed}: callers got errors no loader returned: {:?}",
        &wrong[..wrong.len().min(5)]
    );
    let events = run.events.lock().unwrap();
    // Per row: (end of an invalidation, the newest version it covers so far), by end.
    let mut owed_by_row: Vec<Vec<(u64, u64)>> = vec![Vec::new(); ROWS as usize];
    for event in events.iter() {
        if let Event::Invalidated {
            rows,
            versions,
            end,
            ..
        } = event
        {
            for (row, version) in rows.iter().zip(versions) {
                owed_by_row[*row as usize].push((*end, *version));
            }
        }
    }
    for owed in &mut owed_by_row {
        owed.sort_unstable();
        let mut newest = 0;
        for (_, version) in owed.iter_mut() {
            newest = newest.max(*version);
            *version = newest;
        }
    }
    for event in events.iter() {
        let Event::Read {
            row,
            start,
            version,
            ..
        } = event
        else {
            continue;
        };
        // The newest version whose invalidation completed before this read began.
        let owed = &owed_by_row[*row as usize];
        let before = owed.partition_point(|(end, _)| end < start);
        let owed = if before == 0 { 0 } else { owed[before - 1].1 };
        if *version < owed {
            let mut excerpt: Vec<&Event> = events
                .iter()
                .filter(|e| match e {
                    Event::Read { row: r, .. } => r == row,
                    Event::Invalidated { rows, .. } => rows.contains(row),
                })
                .filter(|e| match e {
                    Event::Read { start: s, end, .. }
                    | Event::Invalidated { start: s, end, .. } => {
                        end + 60 >= *start && *s <= start + 5
                    }
                })
                .collect();
            excerpt.sort_by_key(|e| match e {
                Event::Read { start, .. } | Event::Invalidated { start, .. } => *start,
            });
            panic!(
                "{store}, seed {seed} (rerun with CACHETTE_HISTORY_SEED={seed}): a read of row \
                 {row} that began at {start} returned version {version}, older than version \
                 {owed} whose invalidation had completed; the row's events around it:\n{excerpt:#?}"
            );
        }
    }
    // Loads of one key at once are bounded by the callers, not by one: a follower whose
    // leader's result does not hold for it (the key was invalidated meanwhile) goes round at
    // most three times and then loads itself. Reported, not asserted.
    eprintln!(
        "{store}, seed {seed}: at most {} loads of one key ran at once",
        run.db.most_running.load(SeqCst)
    );
}

async fn history(cache: Cache, server: Option<Arc<RedisServer>>, store: &str) {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let run = Arc::new(Run {
        db: Db {
            versions: (0..ROWS).map(|_| AtomicU64::new(1)).collect(),
            running: (0..ROWS).map(|_| AtomicU32::new(0)).collect(),
            most_running: AtomicU32::new(0),
        },
        clock: AtomicU64::new(0),
        events: Mutex::new(Vec::new()),
        wrong: Mutex::new(Vec::new()),
        reads: AtomicU64::new(0),
        invalidations: AtomicU64::new(0),
        faults: AtomicU64::new(0),
    });
    let until = Instant::now() + budget();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..READERS {
        tasks.spawn(reader(
            run.clone(),
            cache.clone(),
            rng.fork(i as u64),
            until,
        ));
    }
    for i in 0..WRITERS {
        tasks.spawn(writer(
            run.clone(),
            cache.clone(),
            rng.fork(100 + i as u64),
            until,
        ));
    }
    if let Some(server) = server {
        tasks.spawn(faults(run.clone(), server, rng.fork(200), until));
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    check(&run, store, seed);
    eprintln!(
        "{store}, seed {seed}: {} reads checked, {} invalidations, {} faults, 0 violations",
        run.reads.load(SeqCst),
        run.invalidations.load(SeqCst),
        run.faults.load(SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_in_memory() {
    let cache = Cache::builder().prefix("h").build().unwrap();
    history(cache, None, "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_on_redis_with_faults() {
    let server = Arc::new(RedisServer::start());
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("h")
        .command_timeout(Duration::from_millis(50))
        .connection_timeout(Duration::from_millis(50))
        .circuit_breaker(3, Duration::from_millis(100))
        .build()
        .unwrap();
    history(cache, Some(server), "redis").await;
}
