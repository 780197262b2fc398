//! Declarative caching for async Rust.
//!
//! Put `#[cached]` on an async function that already exists; its results are cached in process
//! memory by default, or in Redis when `REDIS_URL` is set. Keys are templates checked at compile
//! time, so a typo in a placeholder is a compile error, not a cache that silently mixes users.
//!
//! ```
//! use cachette::cached;
//!
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! struct User { id: u64, name: String }
//!
//! #[cached(key = "user:{id}", ttl = "5m", tags = ["users"])]
//! async fn get_user(id: u64) -> Result<User, std::io::Error> {
//!     Ok(User { id, name: format!("user {id}") })
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let first = get_user(7).await.unwrap();   // runs the body, caches the value
//! let again = get_user(7).await.unwrap();   // served from the cache
//! assert_eq!(first.name, again.name);
//! # }
//! ```
//!
//! Start `main` with [`init_from_env`]: it builds the global cache the macros use from the
//! environment (`REDIS_URL`, `CACHE_PREFIX`, …; in process memory when nothing is set) and
//! returns a configuration mistake as an error. Without it, the first cached call builds the
//! same cache, and a mistake turns caching off (said once on stderr when no `tracing`
//! subscriber is installed, and by [`Cache::health`]). [`init_with`] adjusts the environment's
//! settings in code; [`Cache::builder`] and [`install`] configure a cache in code alone.
//! Without a macro, the same through [`Cache::get_or_load`].

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
#[doc(inline)]
pub use cache_macros::{KeyPart, cache_put, cached, invalidate};

#[doc(inline)]
pub use cache_runtime::{
    AlreadyInstalled, BatchKey, BreakerState, BuildError, Cache, CacheBuilder, CacheError, Codec,
    Compress, Compression, Counters, EntryTimes, Erasure, FnSpec, Health, InitError, Invalidation,
    InvalidationReport, KeyInfo, KeyListing, KeyWriter, L1_PROPAGATION_BOUND, L1Health,
    LoadOptions, LockError, LockGuard, MemoryStore, RateLimit, RateLimitError, RateLimitPolicy,
    RedisStore, RedisStoreConfig, Stats, StatsSnapshot, StoreError, StoreMemory, UnhashableValue,
    WarmProgress, WarmReport, Warmer, WarmerReport, Warmers, defaults, duplicate_templates, escape,
    global, init_from_env, init_with, install, registry, write_hash,
};

#[doc(inline)]
pub use cache_runtime::metrics;

/// The admin router: statistics, health, keys, invalidation, warming and a dashboard page
/// over HTTP, behind a bearer token.
#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin {
    #[doc(inline)]
    pub use cache_runtime::admin::*;
}

/// Rate limiting and response caching for axum routers (any tower stack of `http` requests).
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http {
    #[doc(inline)]
    pub use cache_runtime::{
        CacheLayer, CacheService, ClientIp, Header, KeyExtractor, RateLimitLayer, RateLimitService,
    };
}

/// Types that render into cache keys; see [`KeyPart`](trait@KeyPart).
pub use cache_runtime::KeyPart;

/// Testing code that caches: a virtual clock, fault injection, probes and per-test scopes.
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing {
    #[doc(inline)]
    pub use cache_runtime::testing::*;
}

/// Healthcare data rules: compliance levels and their TTL caps.
#[cfg(feature = "healthcare")]
#[cfg_attr(docsrs, doc(cfg(feature = "healthcare")))]
pub mod healthcare {
    #[doc(inline)]
    pub use cache_healthcare::*;

    #[cfg(feature = "macros")]
    #[doc(inline)]
    pub use cache_macros::{invalidate_patient_cache, patient_cache};
}

/// What the macros expand to; not a public API.
#[doc(hidden)]
pub use cache_runtime::__macro_support;
