//! The errors of the runtime, each saying how to fix it.

use std::time::Duration;

/// Building a [`Cache`](crate::Cache) failed: the configuration is invalid.
///
/// Nothing has been connected or written when this is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The Redis URL could not be parsed. Use the form `redis://[user:password@]host[:port][/db]`.
    #[error(
        "invalid Redis URL `{url}`: {reason} (expected redis://[user:password@]host[:port][/db])"
    )]
    InvalidRedisUrl {
        /// The URL as given, with any password replaced by `***`.
        url: String,
        /// What the Redis client said of it.
        reason: String,
    },
    /// An environment variable holds a value of the wrong form. Fix or unset the variable.
    #[error("{name}={value:?} is not {expected}")]
    InvalidEnv {
        /// The variable's name.
        name: &'static str,
        /// The value found; a secret's is never shown (`<redacted>`), a URL's password is
        /// replaced by `***`.
        value: String,
        /// What the variable must hold.
        expected: &'static str,
    },
    /// `REDIS_URL` is an `https://` URL, the REST endpoint of an Upstash database, and
    /// `REDIS_TOKEN` is not set. Set `REDIS_TOKEN` to the database's token: the cache then
    /// speaks the Redis protocol to the same database, over TLS.
    #[error(
        "REDIS_URL={url:?} is an Upstash REST endpoint: set REDIS_TOKEN to its token (the cache \
         then connects to rediss://default:<REDIS_TOKEN>@{host}:6379), or set REDIS_URL to a \
         redis:// or rediss:// URL"
    )]
    MissingRedisToken {
        /// `REDIS_URL` as given.
        url: String,
        /// The database's host name.
        host: String,
    },
    /// `REDIS_TOKEN` is set, but `REDIS_URL` is not the `https://` endpoint of an Upstash
    /// database, so the token would go unused. Put the password in the Redis URL
    /// (`rediss://default:PASSWORD@host:6379`) or `REDIS_PASSWORD`, and unset `REDIS_TOKEN`.
    #[error(
        "REDIS_TOKEN is set, but REDIS_URL is {redis_url}: the token is read only with an \
         https:// (Upstash REST) REDIS_URL; put the password in REDIS_URL \
         (rediss://default:PASSWORD@host:6379) or REDIS_PASSWORD and unset REDIS_TOKEN"
    )]
    UnusedRedisToken {
        /// `REDIS_URL` with its password replaced by `***`, or `unset`.
        redis_url: String,
    },
    /// Functions marked as holding protected health information are linked into this program,
    /// and no encryption key is configured: their values would be stored in plaintext.
    #[error(
        "refusing to build a cache: {} cache protected health information, but no encryption key \
         is configured; set CACHE_ENCRYPTION_KEYS (a key ring, current key first) or call \
         CacheBuilder::sealer",
        functions.join(", ")
    )]
    PhiWithoutEncryption {
        /// The protected functions.
        functions: Vec<String>,
    },
    /// Protected functions are linked in and no key for hashing identifiers is configured:
    /// identifiers would appear in key names.
    #[error(
        "refusing to build a cache: {} cache protected health information, but no identifier \
         hash key is configured; set CACHE_HASH_KEY or call CacheBuilder::id_hasher",
        functions.join(", ")
    )]
    PhiWithoutHashKey {
        /// The protected functions.
        functions: Vec<String>,
    },
    /// Protected functions are linked in and the store is reached in plaintext on another
    /// machine: health data would cross the network unencrypted (HIPAA §164.312(e)). Use
    /// `rediss://` (feature `tls`), or, where the network is protected otherwise (a VPN, an
    /// encrypted overlay), set `CACHE_ALLOW_PLAINTEXT_PHI=true`
    /// (`CacheBuilder::allow_plaintext_phi`), which is logged as a warning at every start.
    #[error(
        "protected functions ({}) would send health data in plaintext to {host}, which is not \
         this machine: use rediss:// (feature `tls`), or set CACHE_ALLOW_PLAINTEXT_PHI=true \
         where the network is protected otherwise",
        functions.join(", ")
    )]
    PhiOverPlaintext {
        /// The protected functions.
        functions: Vec<String>,
        /// The store's host that is reached in plaintext.
        host: String,
    },
    /// A builder setting is out of range. The message names the setting and its limits.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidSetting {
        /// The builder method's name.
        setting: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
}

/// A store operation failed: Redis could not be reached, answered with an error, or timed out.
///
/// The macros never surface this to callers (the function runs uncached instead); the
/// service-level API returns it inside [`CacheError::Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The operation did not complete within the configured timeout.
    #[error("store operation timed out after {0:?}")]
    Timeout(Duration),
    /// The circuit breaker is open after repeated failures: the store is skipped until a probe
    /// succeeds (after `CACHE_CIRCUIT_BREAKER_TIMEOUT`).
    #[error("the store is failing; circuit breaker open, skipping it")]
    CircuitOpen,
    /// More invalidations failed during an outage than the backlog keeps
    /// (`CacheBuilder::pending_invalidations`), or the store kept refusing them, and this cache
    /// has no prefix whose clearing would cover them (or the store refused that too): it can no
    /// longer tell current entries from invalidated ones, so it reads nothing from the store
    /// (every call runs uncached) until the process restarts. Set a prefix (`CACHE_PREFIX`) so
    /// that such an overflow clears the prefix instead.
    #[error(
        "invalidations were lost during an outage and there is no key prefix to clear; \
         reading nothing from the store (set CACHE_PREFIX)"
    )]
    BacklogLost,
    /// Another caller is applying the invalidations queued during an outage; until it has,
    /// this call reads nothing from the store and runs uncached.
    #[error("invalidations from an outage are being applied; running uncached meanwhile")]
    BacklogApplying,
    /// The L1 backplane did not carry an invalidation to the other processes (the store is
    /// unreachable, or the cache is being dropped); it is kept and announced again with the
    /// invalidations queued during an outage.
    #[error("the L1 backplane did not carry the invalidation to the other processes")]
    Backplane,
    /// The read this call shared with the other callers of its key that arrived meanwhile
    /// failed (the error is logged once, by the caller that sent it).
    #[error("the read shared by the callers of this key failed")]
    SharedReadFailed,
}

impl StoreError {
    /// Whether the store answered with a lasting refusal rather than being unreachable or
    /// busy for a while: retrying the same request will not help. A server loading its data
    /// (`LOADING`), a replica not yet promoted (`READONLY`), a cluster that is down or
    /// reshaping (`CLUSTERDOWN`, `TRYAGAIN`, a slot map missing a master) answer too, but
    /// only for as long as the change takes: counted as refusals, three of them would turn a
    /// restart or a failover into a cache that reads nothing until it is restarted.
    pub(crate) fn answered(&self) -> bool {
        match self {
            StoreError::Redis(e) => {
                !crate::store::unreachable(e)
                    && matches!(e.retry_method(), redis::RetryMethod::NoRetry)
                    && e.kind() != redis::ErrorKind::Client
            }
            _ => false,
        }
    }
}

/// An error of the service-level API ([`Cache::get`](crate::Cache::get) and friends).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The store failed; see [`StoreError`]. The cache contents are unchanged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The value could not be serialized with the configured codec. Check its `Serialize` impl.
    #[error("cannot encode value for key `{key}`: {reason}")]
    Encode {
        /// The full key.
        key: String,
        /// What the codec said.
        reason: String,
    },
    /// `clear()` on a Redis cache without a prefix: its keys cannot be told from other
    /// programs' keys. Give the cache a prefix (`CACHE_PREFIX`), or invalidate by pattern.
    #[error(
        "clear() needs a key prefix on a shared store; set CACHE_PREFIX or CacheBuilder::prefix"
    )]
    NoPrefix,
    /// A pattern given to `invalidate_pattern` (or in an [`Invalidation`](crate::Invalidation))
    /// is not a well-formed glob; nothing of that invalidation was applied. Close the `[`
    /// class, or escape a literal `[` or `\` as `\[` / `\\`.
    #[error("invalid invalidation pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An erasure by identifier on a cache with no identifier hash key (`CACHE_HASH_KEY`,
    /// [`CacheBuilder::id_hasher`](crate::CacheBuilder::id_hasher)): identifiers would be
    /// hashed under a key of this process only, which no other process's keys share, so the
    /// erasure would miss them and report success. Nothing was invalidated; configure the key
    /// every process uses.
    #[error(
        "erasing by identifier needs the identifier hash key every process uses (CACHE_HASH_KEY); \
         without it no entry of another process would match, so nothing was invalidated"
    )]
    NoHashKey,
    /// The encoded value is larger than the configured maximum entry size; it was not stored.
    /// Raise `CACHE_MAX_ENTRY_BYTES` / [`CacheBuilder::max_entry_bytes`](crate::CacheBuilder::max_entry_bytes)
    /// or cache a smaller value.
    #[error("value for key `{key}` is {size} bytes, over the maximum entry size of {max} bytes")]
    TooLarge {
        /// The full key.
        key: String,
        /// The encoded size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// [`install`](crate::install) was called after a global cache was already in place.
#[derive(Debug, thiserror::Error)]
#[error(
    "a global cache is already installed (cachette::install may be called once, before the first cached call)"
)]
pub struct AlreadyInstalled;

/// [`init_from_env`](crate::init_from_env) or [`init_with`](crate::init_with) failed: nothing
/// was installed.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The environment's configuration is invalid; the message names the variable and what
    /// it must hold.
    #[error(transparent)]
    Config(#[from] BuildError),
    /// A global cache was in place already: installed, or built on a cached call made before.
    /// Initialize once, at the start of `main`.
    #[error(transparent)]
    AlreadyInstalled(#[from] AlreadyInstalled),
}

/// The message, not the variant's fields: `main` returning this error
/// (`cachette::init_from_env()?`) prints its `Debug`, and the message is what says what to fix.
impl std::fmt::Debug for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    /// The server's error reply `reply`, as the store reports it.
    fn replied(reply: &str) -> StoreError {
        let value = redis::parse_redis_value(format!("-{reply}\r\n").as_bytes()).unwrap();
        StoreError::Redis(value.extract_error().unwrap_err())
    }

    /// Refusals that last count towards giving the backlog up; a server that is loading, a
    /// replica being promoted or a cluster reshaping answer only for a while.
    #[test]
    fn only_lasting_refusals_are_answers() {
        assert!(
            replied("NOPERM this user has no permissions to run the 'eval' command").answered()
        );
        assert!(replied("ERR unknown command").answered());
        for passing in [
            "LOADING Redis is loading the dataset in memory",
            "READONLY You can't write against a read only replica.",
            "CLUSTERDOWN The cluster is down",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "MASTERDOWN Link with MASTER is down",
        ] {
            assert!(!replied(passing).answered(), "{passing}");
        }
        let incomplete = redis::RedisError::from((
            redis::ErrorKind::Client,
            "the cluster's slot map is incomplete",
            String::new(),
        ));
        assert!(!StoreError::Redis(incomplete).answered());
    }
}
