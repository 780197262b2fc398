//! Building a [`Cache`]: settings, validation, the choice of store.

use std::time::Duration;

use std::sync::Arc;

use std::sync::atomic::AtomicU64;

use super::invalidate::Rules;
use super::pending::Pending;
use super::rate_limit::RateLimitPolicy;
use super::{Cache, Inner};
use crate::codec::{Codec, Compression};
use crate::error::BuildError;
use crate::phi::{AuditSink, IdHasher, PhiHooks, Sealer};
use crate::refresh_queue::Refresher;
use crate::stats::Counters;
use crate::store::{AnyStore, MemoryStore, RedisStore, RedisStoreConfig};
use crate::warm::{Warmer, Warmers};

/// The default TTL, as in the NestJS original: one hour.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Payloads of at least this many bytes are compressed by default.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;
/// Entries larger than this are not cached by default: 1 MiB keeps one value from occupying
/// Redis' single thread for long or a memory store's budget.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;
/// The in-process store's byte budget by default.
pub const DEFAULT_MEMORY_BYTES: u64 = 128 * 1024 * 1024;
/// How long L1 keeps a copy at most, unless a function says otherwise.
pub const DEFAULT_L1_TTL: Duration = Duration::from_secs(30);
/// How long a key's tombstone outlives `invalidate(key)` by default.
pub const DEFAULT_TOMBSTONE_TTL: Duration = Duration::from_secs(300);

/// Settings of a [`Cache`]; `build()` validates them.
///
/// ```
/// use std::time::Duration;
///
/// let cache = cache_runtime::Cache::builder()
///     .prefix("myapp")
///     .default_ttl(Duration::from_secs(300))
///     .build()
///     .unwrap();
/// assert_eq!(cache.prefix(), "myapp:");
/// ```
#[derive(Clone)]
#[must_use]
pub struct CacheBuilder {
    redis_url: Option<String>,
    redis_cluster: Option<Vec<String>>,
    redis: RedisStoreConfig,
    memory: Option<MemoryStore>,
    memory_bytes: u64,
    l1_max_bytes: u64,
    l1_ttl: Duration,
    l1_bound: Duration,
    allow_plaintext_phi: bool,
    prefix: String,
    default_ttl: Duration,
    codec: Codec,
    compression_threshold: Option<usize>,
    compression: Compression,
    value_shapes: bool,
    compression_level: u32,
    max_entry_bytes: usize,
    disabled: bool,
    tag_ttl: Option<Duration>,
    tombstone_ttl: Duration,
    limits: Limits,
    phi: PhiHooks,
    warmers: Warmers,
    clock: crate::clock::Clock,
    #[cfg(feature = "testing")]
    faults: Option<crate::testing::Faults>,
}

/// Redis URLs carry passwords (and Upstash tokens): they are shown redacted.
impl std::fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("store", &self.store_label())
            .field("redis", &self.redis)
            .field("memory_bytes", &self.memory_bytes)
            .field("l1_max_bytes", &self.l1_max_bytes)
            .field("l1_ttl", &self.l1_ttl)
            .field("l1_bound", &self.l1_bound)
            .field("allow_plaintext_phi", &self.allow_plaintext_phi)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("codec", &self.codec)
            .field("compression_threshold", &self.compression_threshold)
            .field("compression", &self.compression)
            .field("value_shapes", &self.value_shapes)
            .field("compression_level", &self.compression_level)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("disabled", &self.disabled)
            .field("tag_ttl", &self.tag_ttl)
            .field("tombstone_ttl", &self.tombstone_ttl)
            .field("limits", &self.limits)
            .field("phi", &self.phi)
            .finish()
    }
}

/// Bounds of the call path: leases, waiting, fail-safe retries, the refresh queue, the backlog
/// of invalidations kept through an outage, and load shedding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How long a load's lease lasts: another process waits at most this long for the holder.
    pub lease_ttl: Duration,
    /// How long a caller waits for another process's load before loading itself.
    pub lease_wait: Duration,
    /// After a failed load served a fail-safe value, how long before the loader is tried again.
    pub fail_safe_throttle: Duration,
    /// Background refreshes queued at most.
    pub refresh_queue: usize,
    /// Background refreshes running at once at most.
    pub refresh_workers: usize,
    /// Invalidations kept while the store is unreachable, at most.
    pub pending_invalidations: usize,
    /// Store latency above which background refreshes (below high priority) and low-priority
    /// writes are dropped.
    pub shed_latency: Duration,
    /// What a rate limit decides while the store cannot be asked.
    pub rate_limit_policy: RateLimitPolicy,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            lease_ttl: Duration::from_secs(5),
            lease_wait: Duration::from_secs(5),
            fail_safe_throttle: Duration::from_secs(5),
            refresh_queue: 4096,
            refresh_workers: 64,
            pending_invalidations: 10_000,
            shed_latency: Duration::from_millis(100),
            rate_limit_policy: RateLimitPolicy::FailOpen,
        }
    }
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheBuilder {
    /// Defaults: in-process store of 128 MiB, no prefix, TTL 1 h, postcard, compression from
    /// 1 KiB at level 6, entries up to 1 MiB.
    pub fn new() -> Self {
        CacheBuilder {
            redis_url: None,
            redis_cluster: None,
            redis: RedisStoreConfig::default(),
            memory: None,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            l1_max_bytes: 0,
            l1_ttl: DEFAULT_L1_TTL,
            l1_bound: crate::l1::L1_PROPAGATION_BOUND,
            allow_plaintext_phi: false,
            prefix: String::new(),
            default_ttl: DEFAULT_TTL,
            codec: Codec::Postcard,
            compression_threshold: Some(DEFAULT_COMPRESSION_THRESHOLD),
            compression: Compression::default(),
            value_shapes: true,
            compression_level: 6,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            disabled: false,
            tag_ttl: None,
            tombstone_ttl: DEFAULT_TOMBSTONE_TTL,
            limits: Limits::default(),
            phi: PhiHooks::default(),
            warmers: Warmers::new(),
            clock: crate::clock::Clock::default(),
            #[cfg(feature = "testing")]
            faults: None,
        }
    }

    /// Uses the Redis server at `url` (`redis://[user:password@]host[:port][/db]`).
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self.redis_cluster = None;
        self
    }

    /// Uses the Redis Cluster that these nodes belong to (`redis://host:port` URLs of some of
    /// its masters or replicas, or `rediss://` for TLS; the other nodes are discovered).
    /// Every feature works on a cluster; see [`RedisStore::open_cluster`].
    ///
    /// ```
    /// let cache = cache_runtime::Cache::builder()
    ///     .redis_cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
    ///     .prefix("myapp")
    ///     .build()
    ///     .unwrap();
    /// # let _ = cache;
    /// ```
    pub fn redis_cluster<S: Into<String>>(mut self, nodes: impl IntoIterator<Item = S>) -> Self {
        self.redis_cluster = Some(nodes.into_iter().map(Into::into).collect());
        self.redis_url = None;
        self
    }

    /// Trusts this CA certificate (PEM) for `rediss://` connections instead of the system's
    /// roots: for servers whose certificate an internal CA signed. Needs the `tls` feature.
    pub fn redis_tls_ca(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.redis.tls_ca = Some(pem.into());
        self
    }

    /// Uses this in-process store (and no Redis).
    pub fn memory_store(mut self, store: MemoryStore) -> Self {
        self.redis_url = None;
        self.redis_cluster = None;
        self.memory = Some(store);
        self
    }

    /// The in-process store's budget in bytes of keys and values.
    pub fn memory_capacity(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// A prefix for every key; a `:` is added when it does not end in one.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The TTL of functions that set none. Zero disables caching of those functions.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The codec new entries are written with.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Compress payloads of at least this many bytes; `None` disables compression by default.
    pub fn compression_threshold(mut self, bytes: Option<usize>) -> Self {
        self.compression_threshold = bytes;
        self
    }

    /// The algorithm that compresses payloads over the threshold: [`Compression::Lz4`] by
    /// default; entries written with another stay readable.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Whether `#[cached]` entries record the shape of their value's type, so that a deploy
    /// that changes the type reads the old entries as misses instead of decoding them as the
    /// new type (on by default). Off: entries carry no shape and none is checked, so two
    /// versions of a program that share a Redis read each other's entries whatever their
    /// types (a field renamed but of the same type then decodes into the wrong field).
    /// `value_shape = false` on a function turns the check off for that function alone.
    ///
    /// ```
    /// let cache = cache_runtime::Cache::builder().value_shapes(false).build().unwrap();
    /// # drop(cache);
    /// ```
    pub fn value_shapes(mut self, on: bool) -> Self {
        self.value_shapes = on;
        self
    }

    /// The deflate level, 0 (none) to 9 (smallest), for [`Compression::Deflate`].
    pub fn compression_level(mut self, level: u32) -> Self {
        self.compression_level = level;
        self
    }

    /// Entries larger than this (encoded) are returned but not cached.
    pub fn max_entry_bytes(mut self, bytes: usize) -> Self {
        self.max_entry_bytes = bytes;
        self
    }

    /// With `true`, nothing is cached: every call runs its function.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Judges freshness by `clock`, a test's virtual clock, instead of the wall clock (feature
    /// `testing`); see [`TestClock`](crate::testing::TestClock).
    ///
    /// ```
    /// use cache_runtime::{Cache, testing::TestClock};
    ///
    /// let clock = TestClock::new();
    /// let cache = Cache::builder().clock(&clock).build().unwrap();
    /// # drop(cache);
    /// ```
    #[cfg(feature = "testing")]
    pub fn clock(mut self, clock: &crate::testing::TestClock) -> Self {
        self.clock = clock.clock();
        self
    }

    /// Sends every store call through `faults`, which a test sets to make the store fail,
    /// stall or return garbage (feature `testing`); see [`Faults`](crate::testing::Faults).
    /// Works over the in-process store and over Redis; a cache with faults keeps no L1 tier.
    ///
    /// ```
    /// use cache_runtime::{Cache, testing::Faults};
    ///
    /// let faults = Faults::new();
    /// let cache = Cache::builder().faults(&faults).build().unwrap();
    /// faults.fail_next(3);
    /// # drop(cache);
    /// ```
    #[cfg(feature = "testing")]
    pub fn faults(mut self, faults: &crate::testing::Faults) -> Self {
        self.faults = Some(faults.clone());
        self
    }

    /// What the cache will be built on, with any password or token redacted: for `Debug`,
    /// [`Health`](crate::Health) and messages.
    fn store_label(&self) -> String {
        let redact = |url: &String| crate::store::redact_url(url.trim());
        match (&self.redis_url, &self.redis_cluster) {
            (Some(url), _) => redact(url),
            (None, Some(nodes)) => {
                let nodes: Vec<String> = nodes.iter().map(redact).collect();
                format!("cluster {}", nodes.join(","))
            }
            (None, None) => "in-process memory".to_owned(),
        }
    }

    /// How long a tag's version is kept after the tag is invalidated; entries carrying tags
    /// live at most this long. Default: the longest TTL of any registered function or the
    /// default TTL, whichever is longer.
    pub fn tag_ttl(mut self, ttl: Duration) -> Self {
        self.tag_ttl = Some(ttl);
        self
    }

    /// How long `invalidate(key)` keeps its tombstone (default 5 minutes): a load that started
    /// before the invalidation and takes longer than this could still write its value.
    pub fn tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.tombstone_ttl = ttl;
        self
    }

    /// How long a load's lease lasts (default 5 s). Other processes that miss the same key wait
    /// for the lease holder's value instead of loading; a holder that dies frees the key when
    /// its lease expires. Make it longer than your slowest load.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.limits.lease_ttl = ttl;
        self
    }

    /// What [`Cache::rate_limit`](crate::Cache::rate_limit) decides while the store cannot be
    /// asked: allow (the default, [`RateLimitPolicy::FailOpen`]) or deny
    /// ([`RateLimitPolicy::FailClosed`]). Either way the decision says it was not enforced,
    /// and [`Health`](crate::Health) names the policy.
    ///
    /// ```
    /// use cache_runtime::{Cache, RateLimitPolicy};
    ///
    /// let cache = Cache::builder().rate_limit_policy(RateLimitPolicy::FailClosed).build().unwrap();
    /// assert_eq!(cache.rate_limit_policy(), RateLimitPolicy::FailClosed);
    /// ```
    pub fn rate_limit_policy(mut self, policy: RateLimitPolicy) -> Self {
        self.limits.rate_limit_policy = policy;
        self
    }

    /// How long a caller waits for another process's load before loading itself (default 5 s).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.limits.lease_wait = wait;
        self
    }

    /// After the loader failed and a fail-safe value was served, how long that value is served
    /// before the loader is tried again (default 5 s).
    pub fn fail_safe_throttle(mut self, throttle: Duration) -> Self {
        self.limits.fail_safe_throttle = throttle;
        self
    }

    /// Bounds background refreshes: at most `queued` waiting and `running` at once (defaults
    /// 4096 and 64: refreshes mostly wait on the database, so more run at once than there
    /// are cores). When the queue is full, low-priority refreshes are dropped first.
    pub fn refresh_limits(mut self, queued: usize, running: usize) -> Self {
        self.limits.refresh_queue = queued;
        self.limits.refresh_workers = running;
        self
    }

    /// Seals protected values (required when any `#[patient_cache]` function is linked in).
    pub fn sealer(mut self, sealer: Arc<dyn Sealer>) -> Self {
        self.phi.sealer = Some(sealer);
        self
    }

    /// Hashes identifiers in key names (required when any `#[patient_cache]` function is
    /// linked in).
    pub fn id_hasher(mut self, hasher: Arc<dyn IdHasher>) -> Self {
        self.phi.hasher = Some(hasher);
        self
    }

    /// Adds a sink for audit events of protected data.
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.phi.audit.push(sink);
        self
    }

    /// How many invalidations to keep while the store is unreachable (default 10,000); past
    /// that, the whole prefix is cleared when it is back.
    pub fn pending_invalidations(mut self, max: usize) -> Self {
        self.limits.pending_invalidations = max;
        self
    }

    /// The store latency above which background refreshes and low-priority writes are dropped
    /// (default 100 ms).
    pub fn shed_latency(mut self, latency: Duration) -> Self {
        self.limits.shed_latency = latency;
        self
    }

    /// Consecutive store failures that open the circuit breaker (default 5), and how long it
    /// stays open before a probe (default 2 s).
    pub fn circuit_breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.redis.breaker_threshold = failures;
        self.redis.breaker_cool_down = cool_down;
        self
    }

    /// How long one Redis command may take before the call runs uncached.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.redis.response_timeout = timeout;
        self
    }

    /// How long connecting to Redis may take.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.redis.connection_timeout = timeout;
        self
    }

    /// Adds a warmer, run by [`Cache::warm`] (at startup, and by the admin router's
    /// `POST /cache/warm`).
    pub fn warmer(mut self, warmer: Warmer) -> Self {
        self.warmers = self.warmers.warmer(warmer);
        self
    }

    /// Sets every warmer at once, with their concurrency and progress callback.
    pub fn warmers(mut self, warmers: Warmers) -> Self {
        self.warmers = warmers;
        self
    }

    /// With Redis: keeps copies of fresh entries in this process too (the L1 tier), up to
    /// `bytes` (`CACHE_L1_MAX_SIZE_MB`); `0` (the default) turns it off. A hit on a copy costs
    /// no round trip, and for values that can be cloned no decoding either.
    ///
    /// Every invalidation and every write, from any process sharing the store, reaches every
    /// L1 through a pub/sub channel; a process that cannot prove that its channel carries
    /// everything stops serving copies within [`L1_PROPAGATION_BOUND`](crate::L1_PROPAGATION_BOUND),
    /// which is the most another process's invalidation can be late here. Invalidations made
    /// in this process are seen by it at once. With the in-process store there is nothing to
    /// put in front of it, and this setting is ignored.
    ///
    /// ```
    /// let cache = cache_runtime::Cache::builder()
    ///     .redis("redis://127.0.0.1:6379")
    ///     .l1_max_bytes(64 * 1024 * 1024)
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn l1_max_bytes(mut self, bytes: u64) -> Self {
        self.l1_max_bytes = bytes;
        self
    }

    /// How long L1 keeps a copy at most (`CACHE_L1_TTL`, default 30 s), for functions that do
    /// not say (`l1 = "10s"`); a copy is never kept past its entry's freshness.
    pub fn l1_ttl(mut self, ttl: Duration) -> Self {
        self.l1_ttl = ttl;
        self
    }

    /// The L1 propagation bound (`CACHE_L1_BOUND`, ms; default
    /// [`L1_PROPAGATION_BOUND`](crate::L1_PROPAGATION_BOUND), 500 ms): the longest another
    /// process's invalidation can go unseen by this process's L1, whatever fails. Each process
    /// publishes a small message five times per bound (each process receives those of every
    /// other one); a shorter bound costs more of them, and a process that cannot prove its
    /// channel that often (a slow link, a saturated server) serves from the store instead.
    pub fn l1_propagation_bound(mut self, bound: Duration) -> Self {
        self.l1_bound = bound;
        self
    }

    /// Lets a program with protected functions reach a Redis on another machine without TLS
    /// (`CACHE_ALLOW_PLAINTEXT_PHI`), for networks protected otherwise (a VPN, an encrypted
    /// overlay). Without it such a cache refuses to build
    /// ([`BuildError::PhiOverPlaintext`]); with it, every build logs a warning.
    pub fn allow_plaintext_phi(mut self, allow: bool) -> Self {
        self.allow_plaintext_phi = allow;
        self
    }

    /// Validates the settings and builds the cache. Does not connect: a Redis store connects on
    /// first use. Reports functions that share a key template (as a warning).
    pub fn build(self) -> Result<Cache, BuildError> {
        if self.compression_level > 9 {
            return Err(BuildError::InvalidSetting {
                setting: "compression_level",
                reason: format!("{} is not between 0 and 9", self.compression_level),
            });
        }
        if self.tombstone_ttl.is_zero() || self.tag_ttl.is_some_and(|t| t.is_zero()) {
            return Err(BuildError::InvalidSetting {
                setting: "tombstone_ttl / tag_ttl",
                reason: "zero would let invalidated values come back".into(),
            });
        }
        if self.redis.response_timeout.is_zero() || self.redis.connection_timeout.is_zero() {
            return Err(BuildError::InvalidSetting {
                setting: "command_timeout / connection_timeout",
                reason: "a timeout of zero would fail every command".into(),
            });
        }
        if self.l1_bound < Duration::from_millis(10) {
            return Err(BuildError::InvalidSetting {
                setting: "l1_propagation_bound",
                reason: "below 10 ms, proving the channel would take most of the bound".into(),
            });
        }
        if self.l1_ttl.is_zero() {
            return Err(BuildError::InvalidSetting {
                setting: "l1_ttl",
                reason: "zero would keep nothing; set l1_max_bytes(0) to turn L1 off".into(),
            });
        }
        self.phi.check()?;
        self.check_transport()?;
        let store = match (&self.redis_url, &self.redis_cluster, &self.memory) {
            (Some(url), _, _) => AnyStore::Redis(RedisStore::open(url, self.redis.clone())?),
            (None, Some(nodes), _) => {
                AnyStore::Redis(RedisStore::open_cluster(nodes, self.redis.clone())?)
            }
            (None, None, Some(mem)) => AnyStore::Memory(mem.clone()),
            (None, None, None) => AnyStore::Memory(MemoryStore::new(self.memory_bytes)),
        };
        #[cfg(feature = "testing")]
        let store = match (&self.faults, store) {
            (Some(faults), store) => {
                use crate::testing::Wrapped;
                let inner = match store {
                    AnyStore::Memory(m) => Wrapped::Memory(m),
                    AnyStore::Redis(r) => Wrapped::Redis(r),
                    AnyStore::Faulty(f) => f.inner,
                };
                let (threshold, cool_down) =
                    (self.redis.breaker_threshold, self.redis.breaker_cool_down);
                AnyStore::Faulty(faults.wrap(inner, threshold, cool_down))
            }
            (None, store) => store,
        };
        crate::registry::report_duplicates();
        let label = self.store_label();
        let disabled = self
            .disabled
            .then(|| "CACHE_DISABLED is set, or CacheBuilder::disabled(true)".to_owned());
        Ok(self.finish(store, label, disabled))
    }

    /// Protected functions and a plaintext connection to another machine: refused, unless
    /// allowed (then said at every start).
    fn check_transport(&self) -> Result<(), BuildError> {
        let urls = self
            .redis_url
            .iter()
            .chain(self.redis_cluster.iter().flatten());
        let Some(host) = crate::phi::plaintext_remote(urls) else {
            return Ok(());
        };
        let functions = crate::phi::protected_functions();
        if functions.is_empty() {
            return Ok(());
        }
        if !self.allow_plaintext_phi {
            return Err(BuildError::PhiOverPlaintext { functions, host });
        }
        tracing::warn!(
            target: "cachette",
            host = %host,
            "CACHE_ALLOW_PLAINTEXT_PHI is set: health data goes to the store unencrypted on the network"
        );
        Ok(())
    }

    /// A cache with no store that caches nothing, for `reason` (which its
    /// [`Health`](crate::Health) reports).
    pub(crate) fn build_disabled(self, reason: String) -> Cache {
        let store = AnyStore::Memory(MemoryStore::new(0));
        self.disabled(true)
            .finish(store, "none".to_owned(), Some(reason))
    }

    fn finish(self, store: AnyStore, store_label: String, disabled: Option<String>) -> Cache {
        let mut prefix = self.prefix;
        if !prefix.is_empty() && !prefix.ends_with(':') {
            prefix.push(':');
        }
        let longest_registered = crate::registry::registry()
            .iter()
            .filter_map(|s| {
                s.ttl
                    .map(|t| t.saturating_add(s.fail_safe.unwrap_or_default()))
            })
            .max();
        let tag_ttl = self.tag_ttl.unwrap_or_else(|| {
            longest_registered
                .unwrap_or(Duration::ZERO)
                .max(self.default_ttl)
                .max(Duration::from_secs(1))
        });
        let limits = self.limits;
        let l1 = match &store {
            AnyStore::Redis(_) if self.l1_max_bytes > 0 && disabled.is_none() => {
                let channel = format!("{prefix}__cachette:l1");
                Some(crate::l1::L1::new(
                    self.l1_max_bytes,
                    channel,
                    self.l1_bound,
                    self.clock.clone(),
                ))
            }
            _ => None,
        };
        Cache::from_inner(Inner {
            l1,
            l1_ttl: self.l1_ttl,
            store,
            prefix,
            default_ttl: self.default_ttl,
            codec: self.codec,
            compression_threshold: self.compression_threshold,
            compression: self.compression,
            value_shapes: self.value_shapes,
            compression_level: self.compression_level,
            max_entry_bytes: self.max_entry_bytes,
            disabled: self.disabled,
            disabled_reason: disabled,
            store_label,
            tag_ttl,
            tombstone_ttl: self.tombstone_ttl,
            limits,
            phi: self.phi,
            warmers: self.warmers,
            flights: Arc::default(),
            reads: Arc::default(),
            refresher: Arc::new(Refresher::new(limits.refresh_queue, limits.refresh_workers)),
            events: Rules::default(),
            pending: Pending::new(limits.pending_invalidations),
            stats: Counters::new(),
            last_error_log_ms: AtomicU64::new(0),
            clock: self.clock,
        })
    }
}
