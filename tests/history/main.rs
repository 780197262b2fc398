//! A seeded, randomized, concurrent history of reads, writes and invalidations, checked
//! against cachette's promises:
//!
//! - no read returns a row version older than the newest one whose invalidation completed
//!   before the read began;
//! - no read returns a value older than its function's `ttl` plus fail-safe grace allow;
//! - every call returns what its own loader could have (the same function and row; no cache
//!   error reaches a caller);
//! - in each process, loads of one key run one at a time.
//!
//! Readers call eight `#[cached]` functions over a model database whose rows carry versions
//! (tags, stale-while-revalidate refreshed in the background and inline, fail-safe, loader
//! timeouts, early refresh and jitter, failing loaders, `None` and oversized outcomes, values
//! that cannot be cloned), and some hang up mid-call. Writers bump a row and then invalidate
//! it by key, by tag, by pattern, by the tag of every row, or clear everything (some bump
//! without invalidating; some hang up mid-invalidation). On Redis, two OS processes share the
//! server and the database, and a fault task crashes and restarts the server, freezes it,
//! kills its connections and writes garbage over entries, while each process reaches it
//! through a link that delays replies in spells (so reads spend milliseconds in transit while
//! other processes invalidate); on a cluster it fails shards over.
//!
//! `CACHETTE_HISTORY_SEED=<n>` replays a seed; `CACHETTE_HISTORY_SECS=<s>` runs each store
//! that long (8 s by default). A violation prints the seed and the events of the row around it.

#[path = "../support/mod.rs"]
mod support;

mod check;
mod faults;
mod model;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachette::Cache;
use check::Event;
use faults::Injected;
use model::{Ctx, Db, FUNCTIONS, Failure, Got, MAX_ENTRY_BYTES, Plan, ROWS, RunId};
use support::rng::Rng;
use support::slow_link::SlowLink;
use support::{RedisCluster, RedisServer};

const READERS: usize = 8;
const WRITERS: usize = 2;
const PREFIX: &str = "h:";
/// The L1 propagation bound of the runs with L1.
const L1_BOUND: Duration = Duration::from_millis(50);
/// Names the worker a run starts in a second process, and what it is to do.
const WORKER_ENV: &str = "CACHETTE_HISTORY_WORKER";

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

/// Where a run's cache keeps its entries.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Store {
    Memory,
    Server,
    Cluster,
    /// One server, with an L1 tier in each of three processes.
    ServerL1,
    /// A cluster, with an L1 tier in each of three processes.
    ClusterL1,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Server => "server",
            Store::Cluster => "cluster",
            Store::ServerL1 => "server-l1",
            Store::ClusterL1 => "cluster-l1",
        }
    }

    fn parse(name: &str) -> Store {
        match name {
            "memory" => Store::Memory,
            "server" => Store::Server,
            "server-l1" => Store::ServerL1,
            "cluster-l1" => Store::ClusterL1,
            _ => Store::Cluster,
        }
    }

    fn l1(self) -> bool {
        matches!(self, Store::ServerL1 | Store::ClusterL1)
    }

    fn writer_pause(self) -> u64 {
        if self.l1() { 6 } else { 1 }
    }

    /// OS processes sharing the store.
    fn processes(self) -> u32 {
        match self {
            Store::Memory => 1,
            Store::Server | Store::Cluster => 2,
            Store::ServerL1 | Store::ClusterL1 => 3,
        }
    }

    /// How late another process may see an invalidation: the L1 propagation bound, plus what
    /// separates the clocks it is kept on (the coarse wall clock, whole milliseconds) from the
    /// monotonic clock of the events.
    fn bound_ns(self) -> u64 {
        if self.l1() {
            L1_BOUND.as_nanos() as u64 + 20_000_000
        } else {
            0
        }
    }

    /// The cache of one process. On one server it connects through a [`SlowLink`] of its own,
    /// whose spells of delayed replies (drawn from `rng`, until `until`) keep reads in transit
    /// while other processes invalidate; returned with the link's count of spells.
    async fn cache(self, urls: &[String], rng: Rng, until: Instant) -> (Cache, Arc<AtomicU64>) {
        let (url, spells) = match self {
            Store::Server | Store::ServerL1 => {
                let port = urls[0]
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("a loopback server's URL ends in its port");
                let link = SlowLink::start(port, rng, until).await;
                (link.url, link.spells)
            }
            _ => (String::new(), Arc::default()),
        };
        let builder = Cache::builder()
            .prefix(PREFIX)
            .max_entry_bytes(MAX_ENTRY_BYTES)
            .command_timeout(Duration::from_millis(50))
            .connection_timeout(Duration::from_millis(50))
            .circuit_breaker(3, Duration::from_millis(100));
        let builder = if self.l1() {
            // A bound shorter than the functions' freshness: a copy served past it would be
            // caught.
            builder
                .l1_max_bytes(8 * 1024 * 1024)
                .l1_propagation_bound(L1_BOUND)
        } else {
            builder
        };
        let builder = match self {
            Store::Memory => builder,
            Store::Server | Store::ServerL1 => builder.redis(url),
            Store::Cluster | Store::ClusterL1 => builder.redis_cluster(urls.iter().cloned()),
        };
        let cache = builder.build().expect("the history's cache builds");
        (cache, spells)
    }
}

/// What one process of a run saw.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<Event>>,
    /// Calls that returned something their own loader could not have returned.
    wrong: Mutex<Vec<String>>,
    reads: AtomicU64,
    invalidations: AtomicU64,
}

async fn reader(run: RunId, process: u32, seen: Arc<Seen>, mut rng: Rng, until: Instant) {
    while Instant::now() < until {
        // A third of the calls go to one hot key, as a popular record's do: its callers
        // meet in read groups and flights, where a read sent before an invalidation could be
        // shared with a caller that arrived after it.
        let (function, row) = match rng.below(3) {
            0 => (0, 0),
            _ => (rng.below(FUNCTIONS.len() as u64) as usize, rng.below(ROWS)),
        };
        let slow = matches!(FUNCTIONS[function].name, "safe" | "inline");
        let plan = Plan {
            delay_us: rng.below(if slow { 20_000 } else { 3_000 }),
            fails: rng.below(10) == 0,
            none: rng.below(4) == 0,
            pad: if FUNCTIONS[function].name == "big" && rng.below(4) == 0 {
                2 * MAX_ENTRY_BYTES
            } else {
                rng.below(200) as usize
            },
            pad_seed: rng.next(),
        };
        let start = model::now_ns();
        let call = model::call(run, function, plan, row);
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
        let end = model::now_ns();
        seen.reads.fetch_add(1, SeqCst);
        let name = FUNCTIONS[function].name;
        match got {
            Got::Val(v) if v.function == function && v.row == row => {
                seen.events.lock().unwrap().push(Event::Read {
                    process,
                    function,
                    row,
                    start,
                    end,
                    version: v.version,
                    loaded: v.loaded_ns,
                });
            }
            Got::Val(v) => seen.wrong.lock().unwrap().push(format!(
                "{name} of row {row} returned {} of row {}",
                FUNCTIONS[v.function].name, v.row
            )),
            Got::Failed(f) if f == Failure { function, row } => {}
            Got::Failed(f) => seen.wrong.lock().unwrap().push(format!(
                "{name} of row {row} failed as {} of row {}",
                FUNCTIONS[f.function].name, f.row
            )),
            Got::Nothing if name == "maybe" => {}
            Got::Nothing => seen
                .wrong
                .lock()
                .unwrap()
                .push(format!("{name} of row {row} returned None")),
        }
    }
}

/// How much longer writers pause between invalidations: with L1, copies must live long enough
/// to be served (and caught if served late), which every `rows` tag and `clear` ends.
static WRITER_PAUSE: AtomicU64 = AtomicU64::new(1);

async fn writer(run: RunId, process: u32, seen: Arc<Seen>, mut rng: Rng, until: Instant) {
    let (cache, db) = (run.cache(), &run.ctx().db);
    while Instant::now() < until {
        let scale = WRITER_PAUSE.load(SeqCst);
        tokio::time::sleep(Duration::from_micros((1000 + rng.below(8000)) * scale)).await;
        let row = rng.below(ROWS);
        let version = db.bump(row).await;
        let how = match rng.below(24) {
            0..=5 => "key",
            6..=11 => "tag",
            12..=16 => "pattern",
            17..=20 => "rows",
            21 | 22 => continue, // written without invalidating: only ttl bounds it
            _ => "clear",
        };
        let (rows, versions) = match how {
            "rows" | "clear" => ((0..ROWS).collect(), db.versions().await),
            _ => (vec![row], vec![version]),
        };
        let start = model::now_ns();
        // An invalidation that returns `Ok` is complete for every process. One that fails (the
        // store is away) is queued and applied before any later read of this process reaches
        // the store: for this process it is complete when the call returns; for the others,
        // only once it is applied, at a time no caller learns.
        let invalidation = async {
            match how {
                "key" => {
                    let keys: Vec<String> = FUNCTIONS.iter().map(|f| f.key(row)).collect();
                    cache.invalidate_many(&keys).await.map(|_| ())
                }
                "tag" => cache.invalidate_tag(&format!("row:{row}")).await,
                "pattern" => cache
                    .invalidate_pattern(&format!("*:row:{row}"))
                    .await
                    .map(|_| ()),
                "rows" => cache.invalidate_tag("rows").await,
                _ => cache.clear().await.map(|_| ()),
            }
        };
        // Some writers hang up mid-invalidation: it did not complete, and owes nothing.
        let done = if rng.below(16) == 0 {
            let limit = Duration::from_micros(rng.below(1000));
            match tokio::time::timeout(limit, invalidation).await {
                Ok(done) => done,
                Err(_) => continue,
            }
        } else {
            invalidation.await
        };
        let end = model::now_ns();
        seen.invalidations.fetch_add(1, SeqCst);
        seen.events.lock().unwrap().push(Event::Invalidated {
            process,
            everywhere: done.is_ok(),
            rows,
            versions,
            start,
            end,
            how: how.into(),
        });
    }
}

/// Runs this process's readers and writers until the budget is spent.
async fn run_process(run: RunId, process: u32, seed: u64, budget: Duration) -> Arc<Seen> {
    let mut rng = Rng::new(seed).fork(u64::from(process));
    let seen = Arc::new(Seen::default());
    let until = Instant::now() + budget;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..READERS {
        tasks.spawn(reader(
            run,
            process,
            seen.clone(),
            rng.fork(i as u64),
            until,
        ));
    }
    for i in 0..WRITERS {
        tasks.spawn(writer(
            run,
            process,
            seen.clone(),
            rng.fork(100 + i as u64),
            until,
        ));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a reader or writer panicked");
    }
    seen
}

/// A second process of a run: this test binary again, running [`history_worker`].
struct Worker {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Worker {
    fn spawn(
        store: Store,
        process: u32,
        urls: &[String],
        db_url: &str,
        seed: u64,
        budget: Duration,
    ) -> Worker {
        let out = std::env::temp_dir().join(format!("cachette-history-{}", uuid::Uuid::new_v4()));
        let job = format!(
            "{} {} {db_url} {seed} {} {} {process}",
            store.name(),
            urls.join(","),
            budget.as_millis(),
            out.display()
        );
        let child = Command::new(std::env::current_exe().expect("the test binary's path"))
            .args(["history_worker", "--exact", "--ignored", "--test-threads=1"])
            .env(WORKER_ENV, job)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a worker process");
        Worker { child, out }
    }

    /// Waits for the worker; returns its events, reads, invalidations, most loads of one key
    /// at once, and the wrong results it saw.
    fn finish(self) -> (Vec<Event>, u64, u64, u32, Vec<String>, u64, u64) {
        let output = self.child.wait_with_output().expect("wait for the worker");
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        assert!(
            output.status.success() && text.lines().any(|l| l.starts_with("S ")),
            "the worker process failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let (mut events, mut wrong) = (Vec::new(), Vec::new());
        let (mut reads, mut invalidations, mut most, mut l1_hits, mut spells) = (0, 0, 0, 0, 0);
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("S ") {
                let n: Vec<u64> = rest.split(' ').filter_map(|n| n.parse().ok()).collect();
                (reads, invalidations, most, l1_hits, spells) =
                    (n[0], n[1], n[2] as u32, n[3], n[4]);
            } else if let Some(w) = line.strip_prefix("W ") {
                wrong.push(w.to_owned());
            } else {
                events.push(Event::from_line(line).expect("a worker's event line"));
            }
        }
        (events, reads, invalidations, most, wrong, l1_hits, spells)
    }
}

/// One run: this process (and, on Redis, a worker process) against `store`, with faults.
async fn history(run: RunId, store: Store) {
    let (seed, budget) = (seed(), budget());
    WRITER_PAUSE.store(store.writer_pause(), SeqCst);
    let db_server = RedisServer::start();
    let db = Db::connect(&db_server.url()).await;
    db.create().await;
    let injected = Arc::new(Injected::default());
    let rng = Rng::new(seed).fork(1000);
    // The store's servers, then the budget (a cluster takes seconds to form), then the faults.
    let (urls, server, cluster) = match store {
        Store::Memory => (Vec::new(), None, None),
        Store::Server | Store::ServerL1 => {
            let server = Arc::new(Mutex::new(RedisServer::start()));
            let urls = vec![server.lock().unwrap().url()];
            (urls, Some(server), None)
        }
        Store::Cluster | Store::ClusterL1 => {
            let cluster = Arc::new(RedisCluster::start(3, 1));
            (cluster.urls(), None, Some(cluster))
        }
    };
    let until = Instant::now() + budget;
    let faults = match (&server, &cluster) {
        (Some(server), _) => Some(tokio::spawn(faults::on_server(
            server.clone(),
            PREFIX,
            injected.clone(),
            rng,
            until,
        ))),
        (_, Some(cluster)) => Some(tokio::spawn(faults::on_cluster(
            cluster.clone(),
            PREFIX,
            injected.clone(),
            rng,
            until,
        ))),
        _ => None,
    };
    let workers: Vec<Worker> = (1..store.processes())
        .map(|p| Worker::spawn(store, p, &urls, &db_server.url(), seed, budget))
        .collect();
    let (cache, spells) = store.cache(&urls, Rng::new(seed).fork(2000), until).await;
    let ctx = run.register(Ctx { cache, db });
    let seen = run_process(run, 0, seed, budget).await;
    injected.spells.fetch_add(spells.load(SeqCst), SeqCst);
    if let Some(faults) = faults {
        faults.await.expect("the fault task panicked");
    }
    let mut events = std::mem::take(&mut *seen.events.lock().unwrap());
    let mut wrong = std::mem::take(&mut *seen.wrong.lock().unwrap());
    let mut reads = seen.reads.load(SeqCst);
    let mut invalidations = seen.invalidations.load(SeqCst);
    let mut most = vec![ctx.db.most_running()];
    let mut l1_hits = ctx.cache.stats().total.l1_hits;
    for worker in workers {
        let w = tokio::task::spawn_blocking(move || worker.finish())
            .await
            .expect("the worker's wait");
        events.extend(w.0);
        reads += w.1;
        invalidations += w.2;
        most.push(w.3);
        l1_hits += w.5;
        injected.spells.fetch_add(w.6, SeqCst);
        wrong.extend(w.4);
    }
    let name = store.name();
    assert!(
        wrong.is_empty(),
        "{name}, seed {seed}: calls returned what their loader could not have: {:?}",
        &wrong[..wrong.len().min(5)]
    );
    if let Err(violation) = check::check(&events, name, seed, store.bound_ns()) {
        panic!("{violation}");
    }
    assert!(
        most.iter().all(|m| *m <= 1),
        "{name}, seed {seed}: loads of one key ran side by side in one process (most at once, \
         per process: {most:?})"
    );
    eprintln!(
        "{name}, seed {seed}, {} process(es): {reads} reads and {invalidations} invalidations \
         checked ({l1_hits} of the reads from L1), {} faults ({}), at most {most:?} loads of \
         one key at once per process, 0 violations",
        most.len(),
        injected.total(),
        injected.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_in_memory() {
    history(RunId(0), Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_on_one_server_with_faults() {
    history(RunId(1), Store::Server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_on_a_cluster_with_failovers() {
    history(RunId(2), Store::Cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_on_one_server_with_l1_in_three_processes() {
    history(RunId(4), Store::ServerL1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_on_a_cluster_with_l1_in_three_processes() {
    history(RunId(5), Store::ClusterL1).await;
}

/// The second process of the runs on Redis: started by them with the job in
/// `CACHETTE_HISTORY_WORKER`, it runs readers and writers against the same store and
/// database and writes what it saw to a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a worker process of the histories on Redis; they start it"]
async fn history_worker() {
    let job = std::env::var(WORKER_ENV).expect("started by a history, with its job");
    let parts: Vec<&str> = job.split(' ').collect();
    let store = Store::parse(parts[0]);
    let urls: Vec<String> = parts[1].split(',').map(str::to_owned).collect();
    let db = Db::connect(parts[2]).await;
    let seed: u64 = parts[3].parse().expect("seed");
    let budget = Duration::from_millis(parts[4].parse().expect("budget"));
    let out = parts[5];
    let process: u32 = parts[6].parse().expect("process");
    WRITER_PAUSE.store(store.writer_pause(), SeqCst);
    let run = RunId(3);
    let until = Instant::now() + budget;
    let rng = Rng::new(seed).fork(2000 + u64::from(process));
    let (cache, spells) = store.cache(&urls, rng, until).await;
    let ctx = run.register(Ctx { cache, db });
    let seen = run_process(run, process, seed, budget).await;
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).expect("the worker's file"));
    for e in seen.events.lock().unwrap().iter() {
        writeln!(file, "{}", e.to_line()).expect("write an event");
    }
    for w in seen.wrong.lock().unwrap().iter() {
        writeln!(file, "W {w}").expect("write a wrong result");
    }
    writeln!(
        file,
        "S {} {} {} {} {}",
        seen.reads.load(SeqCst),
        seen.invalidations.load(SeqCst),
        ctx.db.most_running(),
        ctx.cache.stats().total.l1_hits,
        spells.load(SeqCst)
    )
    .expect("write the summary");
    file.flush().expect("flush the worker's file");
}
