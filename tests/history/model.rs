//! The model the histories run against: a database whose rows carry versions (a `redis-server`
//! of its own, never faulted, so that every process of a run shares it), a clock every process
//! shares, and the `#[cached]` functions the readers call, one per read path.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cachette::{Cache, cached};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};

/// Rows of the database.
pub const ROWS: u64 = 6;

/// The cached functions, by number: every read path of a call.
pub const FUNCTIONS: [Function; 8] = [
    // A value and an error that reach waiting callers by clone.
    Function::new("fresh", 300, 0),
    // Stale-while-revalidate, refreshed in the background.
    Function::new("stale", 300, 0),
    // A loader timeout serving the expired value, and fail-safe.
    Function::new("safe", 30, 300),
    // The same, refreshed inline by one caller.
    Function::new("inline", 40, 200),
    // `None`, not cached, shared with the callers that waited.
    Function::new("maybe", 300, 0),
    // Values over `max_entry_bytes`, not cached, shared.
    Function::new("big", 300, 0),
    // Early refresh (XFetch) and jitter.
    Function::new("early", 300, 0),
    // A value and an error that cannot be cloned: shared as the entry, or not at all.
    Function::new("owned", 300, 0),
];

/// Largest entry the caches of a run store; `big` loads larger values now and then.
pub const MAX_ENTRY_BYTES: usize = 2048;

/// One cached function: its name (the first part of its keys) and how old a value it may
/// serve without any invalidation: `ttl` (counted from the start of the load) plus the
/// fail-safe grace.
pub struct Function {
    pub name: &'static str,
    pub ttl_ms: u64,
    pub grace_ms: u64,
}

impl Function {
    const fn new(name: &'static str, ttl_ms: u64, grace_ms: u64) -> Function {
        Function {
            name,
            ttl_ms,
            grace_ms,
        }
    }

    /// The key of `row`, as the function's template renders it.
    pub fn key(&self, row: u64) -> String {
        format!("{}:row:{row}", self.name)
    }
}

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process of the machine, so that the
/// events of all processes order by real time.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The database: one version per row, bumped by writers, read by loads.
pub struct Db {
    conn: MultiplexedConnection,
    /// Loads of each (function, row) running in this process now, and the most ever seen.
    running: Vec<AtomicU32>,
    most_running: AtomicU32,
}

impl Db {
    /// Connects to the database server at `url`.
    pub async fn connect(url: &str) -> Db {
        let conn = redis::Client::open(url)
            .expect("database URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the database server");
        Db {
            conn,
            running: (0..FUNCTIONS.len() as u64 * ROWS)
                .map(|_| AtomicU32::new(0))
                .collect(),
            most_running: AtomicU32::new(0),
        }
    }

    /// Gives every row its first version.
    pub async fn create(&self) {
        let mut conn = self.conn.clone();
        for row in 0..ROWS {
            let _: () = conn.set(row_key(row), 1u64).await.expect("create a row");
        }
    }

    pub async fn version(&self, row: u64) -> u64 {
        let mut conn = self.conn.clone();
        conn.get(row_key(row)).await.expect("read a row")
    }

    /// Writes a new version of `row`; returns it.
    pub async fn bump(&self, row: u64) -> u64 {
        let mut conn = self.conn.clone();
        conn.incr(row_key(row), 1u64).await.expect("write a row")
    }

    pub async fn versions(&self) -> Vec<u64> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = (0..ROWS).map(row_key).collect();
        conn.mget(keys).await.expect("read every row")
    }

    /// The most loads of one key that ran at once in this process.
    pub fn most_running(&self) -> u32 {
        self.most_running.load(SeqCst)
    }
}

fn row_key(row: u64) -> String {
    format!("row:{row}")
}

/// A load of a key, counted while it runs (a cancelled load stops counting when dropped).
struct Running<'a> {
    db: &'a Db,
    slot: usize,
}

impl<'a> Running<'a> {
    fn start(db: &'a Db, function: usize, row: u64) -> Self {
        let slot = function * ROWS as usize + row as usize;
        let now = db.running[slot].fetch_add(1, SeqCst) + 1;
        db.most_running.fetch_max(now, SeqCst);
        Running { db, slot }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.db.running[self.slot].fetch_sub(1, SeqCst);
    }
}

/// What a load returns: which function and row it is of (a value served to the wrong call
/// shows), the row's version when the load began, and when the load ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Val {
    pub function: usize,
    pub row: u64,
    pub version: u64,
    pub loaded_ns: u64,
    pad: Vec<u8>,
}

/// A failed load, of which function and row.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub function: usize,
    pub row: u64,
}

/// [`Val`] and [`Failure`] without `Clone`: shared with waiting callers only as the entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct OwnedVal(pub Val);
#[derive(Debug)]
pub struct OwnedFailure(pub Failure);

/// What one load does, drawn by the caller: how long it takes and how it ends.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub delay_us: u64,
    pub fails: bool,
    pub none: bool,
    /// Incompressible padding, in bytes (over [`MAX_ENTRY_BYTES`]: the value is not cached).
    pub pad: usize,
    pub pad_seed: u64,
}

/// The runs of this process, by number: the `#[cached]` functions find their cache and
/// database through the number they are passed (a `Copy` argument keeps their bodies owning
/// what they use, so refreshes run in the background).
#[derive(Debug, Clone, Copy)]
pub struct RunId(pub usize);

/// A run's cache and database.
pub struct Ctx {
    pub cache: Cache,
    pub db: Db,
}

static RUNS: [OnceLock<Arc<Ctx>>; 6] = [const { OnceLock::new() }; 6];

impl RunId {
    /// Registers `ctx` as run `self`.
    pub fn register(self, ctx: Ctx) -> Arc<Ctx> {
        let ctx = Arc::new(ctx);
        assert!(
            RUNS[self.0].set(ctx.clone()).is_ok(),
            "run {} registered twice",
            self.0
        );
        ctx
    }

    pub fn ctx(self) -> &'static Ctx {
        RUNS[self.0].get().expect("the run is registered")
    }

    pub fn cache(self) -> &'static Cache {
        &self.ctx().cache
    }

    async fn load(self, function: usize, row: u64, plan: Plan) -> Option<Val> {
        let db = &self.ctx().db;
        let _running = Running::start(db, function, row);
        // The version is read as the load begins: a load older than an invalidation returns
        // an older version.
        let version = db.version(row).await;
        tokio::time::sleep(Duration::from_micros(plan.delay_us)).await;
        if plan.fails {
            return None;
        }
        let mut pad = Vec::with_capacity(plan.pad);
        let mut x = plan.pad_seed | 1;
        for _ in 0..plan.pad {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pad.push(x as u8);
        }
        Some(Val {
            function,
            row,
            version,
            loaded_ns: now_ns(),
            pad,
        })
    }
}

/// What a call returned, whatever the function's type.
pub enum Got {
    Val(Val),
    Failed(Failure),
    Nothing,
}

impl From<Result<Val, Failure>> for Got {
    fn from(r: Result<Val, Failure>) -> Got {
        match r {
            Ok(v) => Got::Val(v),
            Err(f) => Got::Failed(f),
        }
    }
}

/// Calls function `function` for `row`.
pub async fn call(run: RunId, function: usize, plan: Plan, row: u64) -> Got {
    match function {
        0 => fresh(run, plan, row).await.into(),
        1 => stale(run, plan, row).await.into(),
        2 => safe(run, plan, row).await.into(),
        3 => inline(run, plan, row).await.into(),
        4 => maybe(run, plan, row).await.map_or(Got::Nothing, Got::Val),
        5 => big(run, plan, row).await.into(),
        6 => early(run, plan, row).await.into(),
        _ => match owned(run, plan, row).await {
            Ok(v) => Got::Val(v.0),
            Err(f) => Got::Failed(f.0),
        },
    }
}

async fn result(run: RunId, function: usize, plan: Plan, row: u64) -> Result<Val, Failure> {
    run.load(function, row, plan)
        .await
        .ok_or(Failure { function, row })
}

#[cached(key = "fresh:row:{row}", ttl = "300ms", tags = ["row:{row}", "rows"], cache = run.cache(), skip = [run, plan])]
async fn fresh(run: RunId, plan: Plan, row: u64) -> Result<Val, Failure> {
    result(run, 0, plan, row).await
}

#[cached(key = "stale:row:{row}", ttl = "300ms", stale = "100ms", tags = ["row:{row}", "rows"], cache = run.cache(), skip = [run, plan])]
async fn stale(run: RunId, plan: Plan, row: u64) -> Result<Val, Failure> {
    result(run, 1, plan, row).await
}

#[cached(key = "safe:row:{row}", ttl = "30ms", fail_safe = "300ms", timeout = "10ms", tags = ["row:{row}", "rows"], cache = run.cache(), skip = [run, plan])]
async fn safe(run: RunId, plan: Plan, row: u64) -> Result<Val, Failure> {
    result(run, 2, plan, row).await
}

#[cached(key = "inline:row:{row}", ttl = "40ms", stale = "15ms", fail_safe = "200ms", timeout = "10ms", refresh = "inline", tags = ["row:{row}", "rows"], cache = run.cache(), skip = [run, plan])]
async fn inline(run: RunId, plan: Plan, row: u64) -> Result<Val, Failure> {
    result(run, 3, plan, row).await
}

#[cached(key = "maybe:row:{row}", ttl = "300ms", tags = ["row:{row}", "rows"], cache = run.cache(), skip = [run, plan])]
async fn maybe(run: RunId, plan: Plan, row: u64) -> Option<Val> {
    let v = run.load(4, row, plan).await;
    if plan.none { None } else { v }
}

#[cached(key = "big:row:{row}", ttl = "300ms", tags = ["row:{row}", "rows"], cache = run.cache(), skip = [run, plan])]
async fn big(run: RunId, plan: Plan, row: u64) -> Result<Val, Failure> {
    result(run, 5, plan, row).await
}

#[cached(key = "early:row:{row}", ttl = "300ms", early = true, beta = 1.0, jitter = 20, tags = ["row:{row}", "rows"], cache = run.cache(), skip = [run, plan])]
async fn early(run: RunId, plan: Plan, row: u64) -> Result<Val, Failure> {
    result(run, 6, plan, row).await
}

#[cached(key = "owned:row:{row}", ttl = "300ms", tags = ["row:{row}", "rows"], cache = run.cache(), skip = [run, plan])]
async fn owned(run: RunId, plan: Plan, row: u64) -> Result<OwnedVal, OwnedFailure> {
    match run.load(7, row, plan).await {
        Some(v) => Ok(OwnedVal(v)),
        None => Err(OwnedFailure(Failure { function: 7, row })),
    }
}
