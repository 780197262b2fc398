//! The engine of [cachette](https://docs.rs/cachette): stores, the entry format, key rendering,
//! the registry of cached functions and statistics.
//!
//! Users depend on `cachette`, which re-exports this crate's public API.

#![warn(missing_docs)]

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __macro_support;
#[cfg(feature = "admin")]
pub mod admin;
mod cache;
mod clock;
mod codec;
mod entry;
mod error;
pub mod fingerprint;
mod flight;
mod global;
mod key;
mod l1;
#[cfg(feature = "axum")]
mod layer;
pub mod metrics;
mod notice;
mod phi;
mod random;
mod read_group;
mod refresh_queue;
mod registry;
mod stats;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod warm;

pub use crate::cache::{
    BatchKey, Cache, CacheBuilder, Erasure, Invalidation, InvalidationReport, LoadOptions,
    LockError, LockGuard, RateLimit, RateLimitError, RateLimitPolicy,
};
pub use crate::codec::{Codec, Compress, Compression};
pub use crate::entry::EntryTimes;
pub use crate::error::{AlreadyInstalled, BuildError, CacheError, InitError, StoreError};
pub use crate::global::{global, init_from_env, init_with, install};
/// The key namespace of protected entries: `#[patient_cache]` keys start with it, so that
/// `clear_phi` can remove every protected entry and nothing else.
pub const PHI_NAMESPACE: &str = "phi:";

pub use crate::cache::inspect::{KeyInfo, KeyListing, StoreMemory};
pub use crate::cache::{Health, L1Health};
pub use crate::key::{KeyPart, KeyWriter, UnhashableValue, escape, write_hash};
pub use crate::l1::L1_PROPAGATION_BOUND;
#[cfg(feature = "axum")]
pub use crate::layer::{
    CacheLayer, CacheService, ClientIp, Header, KeyExtractor, RateLimitLayer, RateLimitService,
};
pub use crate::phi::{
    AuditEvent, AuditOperation, AuditSink, IdHasher, Sealer, current_actor, with_actor,
};
pub use crate::refresh_queue::Priority;
pub use crate::registry::{FnSpec, duplicate_templates, registry};
pub use crate::stats::{Counters, Stats, StatsSnapshot};
pub use crate::store::{BreakerState, MemoryStore, RedisStore, RedisStoreConfig};
pub use crate::warm::{
    DEFAULT_WARM_CONCURRENCY, WarmProgress, WarmReport, Warmer, WarmerReport, Warmers,
};

/// Defaults, for documentation and for building settings relative to them.
pub mod defaults {
    pub use crate::cache::builder::{
        DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_L1_TTL, DEFAULT_MAX_ENTRY_BYTES,
        DEFAULT_MEMORY_BYTES, DEFAULT_TOMBSTONE_TTL, DEFAULT_TTL,
    };
    #[cfg(feature = "axum")]
    pub use crate::layer::{DEFAULT_HTTP_TTL, DEFAULT_MAX_BODY, PASS_FOR};
}

/// How companion crates (`cache-healthcare`) plug into building a cache; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::cache::{ENV_HOOKS, EnvHook};
}
