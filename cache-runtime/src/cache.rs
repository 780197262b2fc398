//! The [`Cache`] handle and its service-level API.

mod batch;
pub(crate) mod builder;
pub(crate) mod call;
mod env;
mod health;
pub(crate) mod inspect;
mod invalidate;
mod lock;
pub(crate) mod options;
mod pending;
mod protected;
pub(crate) mod rate_limit;
mod service;
mod warming;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

pub use self::batch::BatchKey;
pub use self::builder::CacheBuilder;
pub use self::call::{
    Keep, KeepNone, KeepViaClone, Keeper, Outcome, Plain, Share, ShareNone, ShareViaClone, Sharer,
};
pub use self::env::{ENV_HOOKS, EnvHook};
pub use self::health::{Health, L1Health};
pub use self::invalidate::{Erasure, Invalidation, InvalidationReport};
pub use self::lock::{LockError, LockGuard};
pub use self::options::LoadOptions;
pub use self::rate_limit::{RateLimit, RateLimitError, RateLimitPolicy};
use crate::codec::Codec;
use crate::error::{CacheError, StoreError};
use crate::metrics::{self, Event};
use crate::registry::{FnSpec, registry};
use crate::stats::{Counters, Stats};
use crate::store::AnyStore;

/// A cache: a store plus the settings every call through it shares.
///
/// Cheap to clone (an `Arc`); clones share the store, settings and statistics. Build one with
/// [`Cache::builder`] or [`Cache::from_env`], or let the macros use the global one
/// ([`install`](crate::install), or lazily from the environment).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
///
/// let cache = cache_runtime::Cache::builder().prefix("app").build().unwrap();
/// let n: Result<u32, std::io::Error> = cache
///     .get_or_load("answer", &cache_runtime::LoadOptions::ttl(Duration::from_secs(60)), || async { Ok(42) })
///     .await;
/// assert_eq!(n.unwrap(), 42);
/// assert_eq!(cache.get::<u32>("answer").await.unwrap(), Some(42));
/// # }
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: AnyStore,
    /// The in-process tier in front of Redis, when configured.
    pub(crate) l1: Option<crate::l1::L1>,
    /// How long L1 keeps a copy at most, for functions that do not say.
    pub(crate) l1_ttl: Duration,
    pub(crate) prefix: String,
    pub(crate) default_ttl: Duration,
    pub(crate) codec: Codec,
    pub(crate) compression_threshold: Option<usize>,
    pub(crate) compression: crate::codec::Compression,
    /// Whether entries record and are checked against their value type's shape.
    pub(crate) value_shapes: bool,
    pub(crate) compression_level: u32,
    pub(crate) max_entry_bytes: usize,
    pub(crate) disabled: bool,
    /// Why nothing is cached, when `disabled`: for [`Health`].
    pub(crate) disabled_reason: Option<String>,
    /// The store and its address (passwords redacted): for [`Health`] and messages.
    pub(crate) store_label: String,
    /// How long a tag's version lives after an invalidation; tagged entries live no longer.
    pub(crate) tag_ttl: Duration,
    /// How long `invalidate(key)` keeps a tombstone: loads that take longer than this and
    /// started before the invalidation could still write.
    pub(crate) tombstone_ttl: Duration,
    pub(crate) limits: builder::Limits,
    pub(crate) phi: crate::phi::PhiHooks,
    pub(crate) warmers: crate::warm::Warmers,
    pub(crate) flights: Arc<crate::flight::Flights<call::Read>>,
    /// Reads of one key in flight, shared by the callers that arrive meanwhile.
    pub(crate) reads: Arc<crate::read_group::ReadGroups<call::SharedRead>>,
    pub(crate) refresher: Arc<crate::refresh_queue::Refresher>,
    pub(crate) events: invalidate::Rules,
    pub(crate) pending: pending::Pending,
    pub(crate) stats: Counters,
    pub(crate) last_error_log_ms: AtomicU64,
    /// The clock entries are judged by: the wall clock, or a test's virtual clock.
    pub(crate) clock: crate::clock::Clock,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.inner;
        f.debug_struct("Cache")
            .field("store", &i.store)
            .field("prefix", &i.prefix)
            .field("default_ttl", &i.default_ttl)
            .field("codec", &i.codec)
            .field("compression_threshold", &i.compression_threshold)
            .field("max_entry_bytes", &i.max_entry_bytes)
            .field("disabled", &i.disabled)
            .finish()
    }
}

pub(crate) use crate::clock::now_ms;

impl Cache {
    /// A builder; with no settings it builds an in-process cache.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// A cache configured from the environment; see [`CacheBuilder::from_env`] for the variables.
    pub fn from_env() -> Result<Cache, crate::BuildError> {
        CacheBuilder::from_env()?.build()
    }

    /// A cache that stores nothing: every call runs its function.
    pub fn disabled() -> Cache {
        CacheBuilder::new().build_disabled("built with Cache::disabled()".to_owned())
    }

    pub(crate) fn from_inner(inner: Inner) -> Cache {
        Cache {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn from_arc(inner: Arc<Inner>) -> Cache {
        Cache { inner }
    }

    /// Unix time in ms as this cache sees it (see [`Clock`](crate::clock::Clock)).
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// The key prefix every key of this cache starts with (empty, or ending in `:`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The TTL used where none is given.
    pub fn default_ttl(&self) -> Duration {
        self.inner.default_ttl
    }

    /// Whether this cache stores nothing (`CACHE_DISABLED`).
    pub fn is_disabled(&self) -> bool {
        self.inner.disabled
    }

    /// Statistics: this cache's totals and each registered function's counters.
    pub fn stats(&self) -> Stats {
        let per_function = registry()
            .iter()
            .map(|s| (s.path(), s.stats.snapshot()))
            .filter(|(_, s)| s.hits + s.misses + s.loads + s.errors > 0)
            .collect();
        Stats {
            total: self.inner.stats.snapshot(),
            refreshes_dropped: self.inner.refresher.dropped(),
            per_function,
        }
    }

    /// Checks that the store answers (a `PING` on Redis).
    pub async fn ping(&self) -> Result<(), CacheError> {
        match &self.inner.store {
            AnyStore::Memory(_) => Ok(()),
            AnyStore::Redis(r) => Ok(r.ping().await?),
            #[cfg(feature = "testing")]
            AnyStore::Faulty(f) => Ok(f.ping().await?),
        }
    }

    /// How long one store command may take.
    pub(crate) fn command_timeout(&self) -> Duration {
        match &self.inner.store {
            AnyStore::Memory(_) => Duration::from_millis(250),
            AnyStore::Redis(r) => r.command_timeout(),
            #[cfg(feature = "testing")]
            AnyStore::Faulty(f) => f.command_timeout(),
        }
    }

    fn full_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len() + key.len());
        k.push_str(&self.inner.prefix);
        k.push_str(key);
        k
    }

    /// Counts a store error and logs it, at most once a second per cache so an outage does not
    /// flood the logs; the first one of the process also goes to stderr when nothing would log
    /// it.
    fn store_error(&self, spec: Option<&FnSpec>, op: &'static str, err: &StoreError) {
        self.count_error(spec);
        if !matches!(err, StoreError::BacklogLost | StoreError::BacklogApplying) {
            crate::notice::unheard(crate::notice::Cause::Store, || {
                let what = if err.answered() {
                    "refused a command"
                } else {
                    "is unreachable"
                };
                format!(
                    "the store {} {what} ({err}); calls run uncached until it answers, and \
                     further store errors are reported through `tracing` only",
                    self.inner.store_label
                )
            });
        }
        let now = now_ms();
        let last = self.inner.last_error_log_ms.load(Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .inner
                .last_error_log_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(target: "cachette", op, error = %err, "cache store failed; running uncached");
        }
    }
}

/// Counting: every counter is kept twice, for the cache and for the function of the call
/// (when it is a `#[cached]` one), so each event is one call here.
impl Cache {
    fn counters<'a>(&'a self, spec: Option<&'a FnSpec>) -> impl Iterator<Item = &'a Counters> {
        std::iter::once(&self.inner.stats).chain(spec.map(|s| &s.stats))
    }

    /// A lookup: a hit or a miss, and how long it took (when sampled).
    pub(crate) fn count_lookup(&self, spec: Option<&FnSpec>, hit: bool, took: Option<Duration>) {
        for c in self.counters(spec) {
            if hit { c.hit(took) } else { c.miss(took) }
        }
        metrics::record(spec, Event::Lookup { hit, took });
    }

    /// A hit answered by the L1 tier.
    pub(crate) fn count_l1_hit(&self, spec: Option<&FnSpec>) {
        self.counters(spec).for_each(Counters::l1_hit);
        metrics::record(spec, Event::L1Hit);
    }

    pub(crate) fn count_stale_hit(&self, spec: Option<&FnSpec>) {
        self.counters(spec).for_each(Counters::stale_hit);
        metrics::record(spec, Event::StaleHit);
    }

    pub(crate) fn count_error(&self, spec: Option<&FnSpec>) {
        self.counters(spec).for_each(Counters::error);
        metrics::record(spec, Event::Error);
    }

    pub(crate) fn count_load(&self, spec: Option<&FnSpec>) {
        self.counters(spec).for_each(Counters::load);
        metrics::record(spec, Event::Load);
    }

    /// How long a load took (after [`count_load`](Self::count_load)).
    pub(crate) fn count_load_took(&self, spec: Option<&FnSpec>, took: Duration) {
        self.counters(spec).for_each(|c| c.load_took(took));
        metrics::record(spec, Event::LoadTook(took));
    }

    /// A background or inline refresh: a load, and whether it succeeded.
    pub(crate) fn count_refresh(&self, spec: Option<&FnSpec>, ok: bool) {
        for c in self.counters(spec) {
            c.load();
            c.refresh(ok);
        }
        metrics::record(spec, Event::Load);
        metrics::record(spec, Event::Refresh { ok });
    }

    /// A caller that waited for another caller's load.
    pub(crate) fn count_waited(&self, spec: Option<&FnSpec>) {
        self.counters(spec).for_each(Counters::waited);
        metrics::record(spec, Event::Waited);
    }

    /// A fail-safe value served in place of a failed or slow load.
    pub(crate) fn count_fail_safe(&self, spec: Option<&FnSpec>) {
        self.counters(spec).for_each(Counters::fail_safe);
        metrics::record(spec, Event::FailSafe);
    }
}
