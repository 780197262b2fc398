//! A store that fails when a test says so.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::cache::inspect::{KeyListing, StoreMemory};
use crate::error::StoreError;
use crate::store::breaker::Breaker;
use crate::store::{Deleted, MemoryStore, RedisStore, Store, WriteIf, gcra};

/// What an entry read through a [`Faults`] store reads as when it is garbled: bytes no entry
/// format version starts with.
const GARBAGE: &[u8] = b"\xfe\xfdcachette::testing garbage";

/// The faults one cache's store suffers, set by the test while it runs; build the cache with
/// [`CacheBuilder::faults`](crate::CacheBuilder::faults).
///
/// Every store call (a read, a write, a lease, an invalidation; one round trip each) goes
/// through it: first the injected latency, then, in this order, an outage, a timeout, an
/// error, a scheduled failure, or the real call; a read that got an entry may then be garbled.
/// Failures count in a circuit breaker of the fault store's own (with the cache's
/// [`circuit_breaker`](crate::CacheBuilder::circuit_breaker) settings), so an outage long
/// enough opens it, as it would a Redis store's: calls then skip the store until the cool-down
/// (real time) ends and a probe succeeds. [`Injected`] counts what happened.
/// [`Cache::health`](crate::Cache::health) pings through the faults too (and reports this
/// breaker); listing keys, the store's memory and [`stored_values_containing`](super::stored_values_containing)
/// go past them.
///
/// A cache with faults keeps the promise of every cache: a store that fails only costs the
/// caching, never the call.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use cache_runtime::{Cache, LoadOptions, testing::Faults};
///
/// let faults = Faults::new();
/// let cache = Cache::builder().faults(&faults).build().unwrap();
/// faults.start_outage();
/// let options = LoadOptions::ttl(Duration::from_secs(60));
/// let n = cache.get_or_load("k", &options, || async { Ok::<_, std::io::Error>(7) }).await;
/// assert_eq!(n.unwrap(), 7); // the loader's value, store or no store
/// assert!(faults.injected().errors > 0);
/// # }
/// ```
///
/// One `Faults` serves one cache: the breaker is set up by the first cache built with it.
/// Clones share the settings and the counters.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    plan: Mutex<Plan>,
    breaker: OnceLock<Breaker>,
    calls: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    delayed: AtomicU64,
    garbled: AtomicU64,
    skipped: AtomicU64,
    /// Calls since the schedule of [`Faults::fail_every`] was set.
    scheduled: AtomicU64,
}

/// What the next calls suffer.
#[derive(Debug, Default, Clone)]
struct Plan {
    outage: bool,
    errors: u64,
    timeouts: u64,
    garble: u64,
    garble_all: bool,
    latency: Duration,
    every: Option<u64>,
}

/// What a [`Faults`] store did, since it was made or [`reset`](Faults::reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Injected {
    /// Store calls made through it (skipped ones included).
    pub calls: u64,
    /// Calls failed with an error (an outage, [`fail_next`](Faults::fail_next),
    /// [`fail_every`](Faults::fail_every)).
    pub errors: u64,
    /// Calls failed as timeouts ([`time_out_next`](Faults::time_out_next)).
    pub timeouts: u64,
    /// Calls delayed ([`set_latency`](Faults::set_latency)).
    pub delayed: u64,
    /// Entries read back as garbage ([`garble_next_reads`](Faults::garble_next_reads)).
    pub garbled: u64,
    /// Calls the open circuit breaker refused without reaching the store.
    pub skipped: u64,
}

impl Faults {
    /// No faults yet: every call reaches the store.
    pub fn new() -> Faults {
        Faults::default()
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.state
            .plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails the next `n` store calls with a connection error.
    pub fn fail_next(&self, n: u64) {
        self.plan().errors = n;
    }

    /// Fails the next `n` store calls as timeouts, at once (the caller does not wait the
    /// command timeout out; [`set_latency`](Self::set_latency) makes calls slow).
    pub fn time_out_next(&self, n: u64) {
        self.plan().timeouts = n;
    }

    /// Fails one store call in `n` (the `n`th, the `2n`th, …, counted from now); `0` stops it.
    pub fn fail_every(&self, n: u64) {
        self.state.scheduled.store(0, Relaxed);
        self.plan().every = (n > 0).then_some(n);
    }

    /// Every store call fails with a connection error until [`end_outage`](Self::end_outage):
    /// long enough, it opens the circuit breaker.
    pub fn start_outage(&self) {
        self.plan().outage = true;
    }

    /// Ends an outage: calls reach the store again (once the breaker, if open, has let a
    /// probe through).
    pub fn end_outage(&self) {
        self.plan().outage = false;
    }

    /// Delays every store call by `latency` (a tokio sleep; `Duration::ZERO` stops it).
    pub fn set_latency(&self, latency: Duration) {
        self.plan().latency = latency;
    }

    /// The next `n` entries read (by a lookup or [`Cache::get`](crate::Cache::get)) come
    /// back as garbage: bytes that do not decode.
    pub fn garble_next_reads(&self, n: u64) {
        self.plan().garble = n;
    }

    /// Every entry read comes back as garbage, until [`clear`](Self::clear).
    pub fn garble_all_reads(&self) {
        self.plan().garble_all = true;
    }

    /// Stops every fault (an open breaker still waits for its probe).
    pub fn clear(&self) {
        *self.plan() = Plan::default();
    }

    /// [`clear`](Self::clear)s the faults and zeroes the counters.
    pub fn reset(&self) {
        self.clear();
        let s = &self.state;
        for c in [
            &s.calls,
            &s.errors,
            &s.timeouts,
            &s.delayed,
            &s.garbled,
            &s.skipped,
            &s.scheduled,
        ] {
            c.store(0, Relaxed);
        }
    }

    /// What was injected so far.
    pub fn injected(&self) -> Injected {
        let s = &self.state;
        Injected {
            calls: s.calls.load(Relaxed),
            errors: s.errors.load(Relaxed),
            timeouts: s.timeouts.load(Relaxed),
            delayed: s.delayed.load(Relaxed),
            garbled: s.garbled.load(Relaxed),
            skipped: s.skipped.load(Relaxed),
        }
    }

    /// Where the fault store's circuit breaker stands (closed before any cache is built).
    pub fn breaker_state(&self) -> crate::BreakerState {
        self.state
            .breaker
            .get()
            .map_or(crate::BreakerState::Closed, Breaker::state)
    }

    /// Wraps `inner` for a cache whose breaker opens after `threshold` consecutive failures
    /// for `cool_down`.
    pub(crate) fn wrap(&self, inner: Wrapped, threshold: u32, cool_down: Duration) -> FaultStore {
        let _ = self
            .state
            .breaker
            .get_or_init(|| Breaker::new(threshold, cool_down));
        FaultStore {
            inner,
            faults: self.clone(),
        }
    }

    /// Decides the fate of one call: `Err` to fail it, `Ok` to make it.
    fn decide(&self) -> Result<(), StoreError> {
        let s = &self.state;
        s.calls.fetch_add(1, Relaxed);
        let call = s.scheduled.fetch_add(1, Relaxed) + 1;
        if self.breaker().is_some_and(|b| !b.allow()) {
            s.skipped.fetch_add(1, Relaxed);
            return Err(StoreError::CircuitOpen);
        }
        let mut plan = self.plan();
        let timeout = if plan.outage {
            false
        } else if plan.timeouts > 0 {
            plan.timeouts -= 1;
            true
        } else if plan.errors > 0 {
            plan.errors -= 1;
            false
        } else if plan.every.is_some_and(|n| call % n == 0) {
            false
        } else {
            return Ok(());
        };
        drop(plan);
        if let Some(b) = self.breaker() {
            b.failure(timeout);
        }
        if timeout {
            s.timeouts.fetch_add(1, Relaxed);
            Err(StoreError::Timeout(Duration::ZERO))
        } else {
            s.errors.fetch_add(1, Relaxed);
            Err(injected_error())
        }
    }

    fn breaker(&self) -> Option<&Breaker> {
        self.state.breaker.get()
    }

    /// Whether the next entry read comes back as garbage (and counts it).
    fn garble(&self) -> bool {
        let mut plan = self.plan();
        let garble = plan.garble_all || plan.garble > 0;
        if garble {
            plan.garble = plan.garble.saturating_sub(1);
            self.state.garbled.fetch_add(1, Relaxed);
        }
        garble
    }
}

/// The error an injected failure returns: a refused connection, as an unreachable store gives.
fn injected_error() -> StoreError {
    StoreError::Redis(redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "fault injected by cachette::testing",
    )))
}

/// The store under a [`FaultStore`]: the real ones only (a fault store in a fault store would
/// make a recursive future).
#[derive(Clone, Debug)]
pub(crate) enum Wrapped {
    Memory(MemoryStore),
    Redis(RedisStore),
}

macro_rules! inner {
    ($self:ident, $s:ident => $e:expr) => {
        match &$self.inner {
            Wrapped::Memory($s) => $e,
            Wrapped::Redis($s) => $e,
        }
    };
}

/// A store whose calls go through a [`Faults`] first.
#[derive(Clone, Debug)]
pub(crate) struct FaultStore {
    pub(crate) inner: Wrapped,
    faults: Faults,
}

impl FaultStore {
    /// Runs one store call through the faults.
    async fn run<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let latency = self.faults.plan().latency;
        if !latency.is_zero() {
            self.faults.state.delayed.fetch_add(1, Relaxed);
            tokio::time::sleep(latency).await;
        }
        self.faults.decide()?;
        let started = Instant::now();
        let out = call.await;
        if let Some(b) = self.faults.breaker() {
            match &out {
                Err(StoreError::Redis(r)) if crate::store::unreachable(r) => {
                    b.failure(r.is_timeout());
                }
                Err(StoreError::Timeout(_)) => {
                    b.failure(true);
                }
                _ => b.success(started),
            }
        }
        out
    }

    fn garbled(&self, entry: Option<Bytes>) -> Option<Bytes> {
        match entry {
            Some(_) if self.faults.garble() => Some(Bytes::from_static(GARBAGE)),
            other => other,
        }
    }

    /// The breaker of the fault store.
    pub(crate) fn breaker(&self) -> &Breaker {
        self.faults
            .state
            .breaker
            .get_or_init(|| Breaker::new(5, Duration::from_secs(2)))
    }

    /// A ping through the faults (always answered by the in-process store).
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.run(async {
            match &self.inner {
                Wrapped::Memory(_) => Ok(()),
                Wrapped::Redis(r) => r.ping().await,
            }
        })
        .await
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        match &self.inner {
            Wrapped::Memory(_) => Duration::from_millis(250),
            Wrapped::Redis(r) => r.command_timeout(),
        }
    }

    /// Lists keys of the store under it, without faults: inspection is the test's own.
    pub(crate) async fn list_keys(
        &self,
        pattern: &str,
        limit: usize,
    ) -> Result<KeyListing, StoreError> {
        match &self.inner {
            Wrapped::Memory(m) => Ok(m.list_keys(pattern, limit)),
            Wrapped::Redis(r) => r.list_keys(pattern, limit).await,
        }
    }

    pub(crate) async fn memory(&self) -> Result<StoreMemory, StoreError> {
        match &self.inner {
            Wrapped::Memory(m) => Ok(m.memory()),
            Wrapped::Redis(r) => r.memory().await,
        }
    }

    /// The raw values under `keys`, read past the faults: for probes.
    pub(crate) async fn get_many_unfaulted(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<Bytes>>, StoreError> {
        inner!(self, s => s.get_many(keys).await)
    }
}

impl Store for FaultStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let entry = self
            .run(async { inner!(self, s => s.get(key).await) })
            .await?;
        Ok(self.garbled(entry))
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), StoreError> {
        self.run(async { inner!(self, s => s.set(key, value, ttl).await) })
            .await
    }
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        self.run(async { inner!(self, s => s.ttl(key).await) })
            .await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, StoreError> {
        self.run(async { inner!(self, s => s.get_many(keys).await) })
            .await
    }
    async fn set_many(&self, items: Vec<(String, Bytes, Duration)>) -> Result<(), StoreError> {
        self.run(async { inner!(self, s => s.set_many(items).await) })
            .await
    }
    async fn read_tagged(
        &self,
        key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Bytes>, Vec<Option<Bytes>>), StoreError> {
        let (entry, versions) = self
            .run(async { inner!(self, s => s.read_tagged(key, tag_keys).await) })
            .await?;
        Ok((self.garbled(entry), versions))
    }
    async fn write_if(&self, write: WriteIf<'_>) -> Result<bool, StoreError> {
        self.run(async { inner!(self, s => s.write_if(write).await) })
            .await
    }
    async fn write_tombstones(&self, keys: &[String], ttl: Duration) -> Result<u64, StoreError> {
        self.run(async { inner!(self, s => s.write_tombstones(keys, ttl).await) })
            .await
    }
    async fn bump_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        self.run(async { inner!(self, s => s.bump_versions(tag_keys, ttl).await) })
            .await
    }
    async fn extend_versions(&self, tag_keys: &[String], ttl: Duration) -> Result<(), StoreError> {
        self.run(async { inner!(self, s => s.extend_versions(tag_keys, ttl).await) })
            .await
    }
    async fn delete_matching(&self, pattern: &str, keep: &[String]) -> Result<Deleted, StoreError> {
        self.run(async { inner!(self, s => s.delete_matching(pattern, keep).await) })
            .await
    }
    async fn set_nx(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        self.run(async { inner!(self, s => s.set_nx(key, token, ttl).await) })
            .await
    }
    async fn delete_if_equals(&self, key: &str, token: &[u8]) -> Result<bool, StoreError> {
        self.run(async { inner!(self, s => s.delete_if_equals(key, token).await) })
            .await
    }
    async fn lock_fenced(
        &self,
        lock_key: &str,
        fence_key: &str,
        token: &[u8],
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        self.run(async { inner!(self, s => s.lock_fenced(lock_key, fence_key, token, ttl).await) })
            .await
    }
    async fn rate_limit(&self, key: &str, quota: gcra::Quota) -> Result<gcra::Verdict, StoreError> {
        self.run(async { inner!(self, s => s.rate_limit(key, quota).await) })
            .await
    }
}
