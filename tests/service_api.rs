//! The service-level API of [`Cache`] (`get_or_load`, `get`/`set`/`delete`/`exists`/`ttl`, the
//! `_many` forms), run with the same assertions on the in-process store and on a real
//! `redis-server` started for each test; then what only Redis can show (the keys and bytes it
//! holds, corrupted entries, an outage).
//!
//! Every test has its own store (a fresh memory store or its own server), so they run in
//! parallel. No assertion is about how long something takes; TTLs are checked against the time
//! measured around the calls.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cachette::{
    BuildError, Cache, CacheBuilder, CacheError, Codec, Compress, Compression, LoadOptions,
    MemoryStore,
};
use serde::{Deserialize, Serialize};
use support::RedisServer;

const MINUTE: Duration = Duration::from_secs(60);
/// Rounding of TTLs to whole milliseconds, on either side.
const TTL_ROUNDING: Duration = Duration::from_millis(5);
const KIB: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    roles: Vec<String>,
}

fn ada() -> User {
    User {
        id: 1,
        name: "Ada".into(),
        roles: vec!["admin".into(), "author".into()],
    }
}

/// An error of a loader: not serializable, compared by value to show it comes back untouched.
#[derive(Debug, PartialEq)]
struct LoadFailed(&'static str);

/// The store a test runs on: a memory store, or a `redis-server` of its own.
struct Backend {
    server: Option<RedisServer>,
    memory: MemoryStore,
}

impl Backend {
    fn memory() -> Backend {
        Backend {
            server: None,
            memory: MemoryStore::new(64 * 1024 * 1024),
        }
    }

    fn redis() -> Backend {
        Backend {
            server: Some(RedisServer::start()),
            memory: MemoryStore::new(0),
        }
    }

    /// A cache with prefix `t` on this backend's store, further configured by `configure`.
    /// Caches made by one backend share its store.
    fn cache_with(&self, configure: impl FnOnce(CacheBuilder) -> CacheBuilder) -> Cache {
        let builder = Cache::builder().prefix("t");
        let builder = match &self.server {
            Some(server) => builder.redis(server.url()),
            None => builder.memory_store(self.memory.clone()),
        };
        configure(builder).build().expect("valid cache settings")
    }

    fn cache(&self) -> Cache {
        self.cache_with(|b| b)
    }

    /// A raw connection to the Redis server, when the backend is Redis.
    fn raw(&self) -> Option<redis::Connection> {
        self.server.as_ref().map(RedisServer::conn)
    }
}

/// Runs each named `async fn(Backend)` once on a memory store (`<name>::memory`) and once on its
/// own Redis server (`<name>::redis`).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn memory() {
                super::$name(super::Backend::memory()).await;
            }

            #[tokio::test]
            async fn redis() {
                super::$name(super::Backend::redis()).await;
            }
        }
    )*};
}

on_both_backends!(
    get_or_load_caches_ok_values,
    get_or_load_returns_errors_untouched_and_uncached,
    get_set_delete_exists_ttl,
    many_operations_mix_present_and_absent_keys,
    values_over_max_entry_bytes_are_not_stored,
    large_repetitive_values_are_compressed,
    entries_record_their_codec,
    entries_record_their_compression,
);

/// `get_or_load` of `key` with a loader that counts its runs and returns `value`.
async fn load_counted<T>(
    cache: &Cache,
    key: &str,
    options: &LoadOptions,
    calls: &AtomicUsize,
    value: T,
) -> Result<T, LoadFailed>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    cache
        .get_or_load(key, options, || async {
            calls.fetch_add(1, SeqCst);
            Ok(value)
        })
        .await
}

/// Offers `first` and then `second` to [`load_counted`] on `key`: the first call loads `first`,
/// the second is served `first` from the cache.
async fn assert_loaded_then_served<T>(
    cache: &Cache,
    key: &str,
    options: &LoadOptions,
    calls: &AtomicUsize,
    first: T,
    second: T,
) where
    T: Serialize + serde::de::DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
{
    assert_eq!(
        load_counted(cache, key, options, calls, first.clone()).await,
        Ok(first.clone())
    );
    assert_eq!(
        load_counted(cache, key, options, calls, second).await,
        Ok(first)
    );
}

/// Checks that `key` has at most `ttl` left and has lost no more than the time since `since`
/// (taken before the write).
async fn assert_ttl(cache: &Cache, key: &str, ttl: Duration, since: Instant) {
    let left = cache
        .ttl(key)
        .await
        .expect("ttl")
        .unwrap_or_else(|| panic!("{key} is absent"));
    let elapsed = since.elapsed();
    assert!(
        left <= ttl + TTL_ROUNDING,
        "{key}: {left:?} left of a TTL of {ttl:?}"
    );
    assert!(
        left + elapsed + TTL_ROUNDING >= ttl,
        "{key}: {left:?} left of a TTL of {ttl:?} set {elapsed:?} ago"
    );
}

/// Like [`assert_ttl`], with Redis' own `PTTL` of the full key.
fn assert_pttl(conn: &mut redis::Connection, full_key: &str, ttl: Duration, since: Instant) {
    let pttl: i64 = redis::cmd("PTTL").arg(full_key).query(conn).expect("PTTL");
    let elapsed = since.elapsed();
    assert!(
        pttl >= 0,
        "{full_key}: PTTL {pttl} (-2 absent, -1 no expiry)"
    );
    let left = Duration::from_millis(pttl as u64);
    assert!(left <= ttl, "{full_key}: PTTL {left:?} of a TTL of {ttl:?}");
    assert!(
        left + elapsed + TTL_ROUNDING >= ttl,
        "{full_key}: PTTL {left:?} of a TTL of {ttl:?} set {elapsed:?} ago"
    );
}

fn raw_get(conn: &mut redis::Connection, full_key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(full_key).query(conn).expect("GET")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// On both backends
// ---------------------------------------------------------------------------------------------

async fn get_or_load_caches_ok_values(backend: Backend) {
    let cache = backend.cache();
    let calls = AtomicUsize::new(0);
    let opts = LoadOptions::ttl(MINUTE);

    for _ in 0..3 {
        assert_eq!(
            load_counted(&cache, "answer", &opts, &calls, 42u32).await,
            Ok(42)
        );
    }
    assert_eq!(
        calls.load(SeqCst),
        1,
        "the loader runs once, then the value is served"
    );
    assert_eq!(cache.get::<u32>("answer").await.unwrap(), Some(42));

    // Structured values, and keys are independent of each other.
    let other = AtomicUsize::new(0);
    assert_loaded_then_served(&cache, "user:1", &opts, &other, ada(), ada()).await;
    assert_eq!(other.load(SeqCst), 1);
    assert_eq!(calls.load(SeqCst), 1);

    // Another handle on the same store sees the entry.
    let again = backend.cache();
    assert_eq!(
        load_counted(&again, "answer", &opts, &calls, 0u32).await,
        Ok(42)
    );
    assert_eq!(calls.load(SeqCst), 1);
}

async fn get_or_load_returns_errors_untouched_and_uncached(backend: Backend) {
    let cache = backend.cache();
    let calls = AtomicUsize::new(0);
    let opts = LoadOptions::ttl(MINUTE);
    let failing = || async {
        calls.fetch_add(1, SeqCst);
        Err::<u32, _>(LoadFailed("backend down"))
    };

    assert_eq!(
        cache.get_or_load("flaky", &opts, failing).await,
        Err(LoadFailed("backend down"))
    );
    assert!(
        !cache.exists("flaky").await.unwrap(),
        "an Err is not cached"
    );
    assert_eq!(
        cache.get_or_load("flaky", &opts, failing).await,
        Err(LoadFailed("backend down"))
    );
    assert_eq!(calls.load(SeqCst), 2, "the loader runs again after an Err");

    // The first Ok is cached.
    assert_loaded_then_served(&cache, "flaky", &opts, &calls, 7u32, 8u32).await;
    assert_eq!(calls.load(SeqCst), 3);
}

async fn get_set_delete_exists_ttl(backend: Backend) {
    let cache = backend.cache();

    // Absent.
    assert_eq!(cache.get::<User>("user:1").await.unwrap(), None);
    assert!(!cache.exists("user:1").await.unwrap());
    assert_eq!(cache.ttl("user:1").await.unwrap(), None);
    assert!(!cache.delete("user:1").await.unwrap());

    // Set.
    let since = Instant::now();
    cache.set("user:1", &ada(), MINUTE).await.unwrap();
    assert_eq!(cache.get::<User>("user:1").await.unwrap(), Some(ada()));
    assert!(cache.exists("user:1").await.unwrap());
    assert_ttl(&cache, "user:1", MINUTE, since).await;

    // Overwrite with another value and TTL.
    let renamed = User {
        name: "Ada Lovelace".into(),
        ..ada()
    };
    let ttl = Duration::from_secs(90);
    let since = Instant::now();
    cache.set("user:1", &renamed, ttl).await.unwrap();
    assert_eq!(cache.get::<User>("user:1").await.unwrap(), Some(renamed));
    assert_ttl(&cache, "user:1", ttl, since).await;

    // Unsized values are accepted by `set`.
    cache.set("greeting", "hello", MINUTE).await.unwrap();
    assert_eq!(
        cache.get::<String>("greeting").await.unwrap().as_deref(),
        Some("hello")
    );

    // Delete.
    assert!(cache.delete("user:1").await.unwrap());
    assert_eq!(cache.get::<User>("user:1").await.unwrap(), None);
    assert!(!cache.exists("user:1").await.unwrap());
    assert_eq!(cache.ttl("user:1").await.unwrap(), None);
    assert!(
        !cache.delete("user:1").await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(
        cache.exists("greeting").await.unwrap(),
        "delete removes only its key"
    );

    // `get_or_load` honours the TTL of its options.
    let ttl = Duration::from_secs(120);
    let since = Instant::now();
    let n: Result<u32, LoadFailed> = cache
        .get_or_load("loaded", &LoadOptions::ttl(ttl), || async { Ok(5) })
        .await;
    assert_eq!(n, Ok(5));
    assert_ttl(&cache, "loaded", ttl, since).await;
}

async fn many_operations_mix_present_and_absent_keys(backend: Backend) {
    let cache = backend.cache();

    let since = Instant::now();
    cache
        .set_many(&[("a", 1u32), ("b", 2), ("c", 3)], MINUTE)
        .await
        .unwrap();
    let got: Vec<Option<u32>> = cache.get_many(&["a", "x", "c", "b", "y"]).await.unwrap();
    assert_eq!(got, [Some(1), None, Some(3), Some(2), None]);
    for key in ["a", "b", "c"] {
        assert_ttl(&cache, key, MINUTE, since).await;
        assert!(cache.exists(key).await.unwrap());
    }
    // The single-key API sees what the batch wrote, and the other way round.
    assert_eq!(cache.get::<u32>("b").await.unwrap(), Some(2));
    cache.set("d", &4u32, MINUTE).await.unwrap();

    // Owned keys work as well as borrowed ones.
    let keys: Vec<String> = ["a", "x", "b", "d"].iter().map(|k| k.to_string()).collect();
    assert_eq!(cache.delete_many(&keys).await.unwrap(), 3, "x was absent");
    let got: Vec<Option<u32>> = cache.get_many(&["a", "b", "c", "d"]).await.unwrap();
    assert_eq!(got, [None, None, Some(3), None]);
    assert_eq!(cache.delete_many(&keys).await.unwrap(), 0);

    // Empty batches are no-ops.
    cache.set_many::<u32, &str>(&[], MINUTE).await.unwrap();
    assert!(cache.get_many::<u32, &str>(&[]).await.unwrap().is_empty());
    assert_eq!(cache.delete_many::<&str>(&[]).await.unwrap(), 0);
    assert_eq!(cache.get::<u32>("c").await.unwrap(), Some(3));
}

async fn values_over_max_entry_bytes_are_not_stored(backend: Backend) {
    // Without compression, so the encoded size follows the value's.
    let cache = backend.cache_with(|b| b.max_entry_bytes(256).compression_threshold(None));
    let big = "x".repeat(1000);

    match cache.set("big", &big, MINUTE).await {
        Err(CacheError::TooLarge { key, size, max }) => {
            assert_eq!(key, "t:big");
            assert!(size > 1000, "size {size} is the encoded size");
            assert_eq!(max, 256);
        }
        other => panic!("expected CacheError::TooLarge, got {other:?}"),
    }
    assert!(!cache.exists("big").await.unwrap(), "nothing is stored");
    assert_eq!(cache.get::<String>("big").await.unwrap(), None);

    // A batch with one value too large writes nothing.
    let items = [("small", "ok".to_string()), ("big", big.clone())];
    assert!(matches!(
        cache.set_many(&items, MINUTE).await,
        Err(CacheError::TooLarge { .. })
    ));
    assert!(!cache.exists("small").await.unwrap());

    // get_or_load returns the value but does not store it.
    let calls = AtomicUsize::new(0);
    let opts = LoadOptions::ttl(MINUTE);
    assert_eq!(
        load_counted(&cache, "loaded", &opts, &calls, big.clone()).await,
        Ok(big.clone())
    );
    assert!(!cache.exists("loaded").await.unwrap());
    assert_eq!(
        load_counted(&cache, "loaded", &opts, &calls, big.clone()).await,
        Ok(big.clone())
    );
    assert_eq!(
        calls.load(SeqCst),
        2,
        "an uncacheable value is loaded every time"
    );

    // Values under the limit are cached by the same cache.
    assert_loaded_then_served(&cache, "tiny", &opts, &calls, 1u8, 1u8).await;
    assert_eq!(calls.load(SeqCst), 3);
}

async fn large_repetitive_values_are_compressed(backend: Backend) {
    let cache = backend.cache();
    let mut raw = backend.raw();
    let value: String = "cachette "
        .repeat(64 * KIB / 9 + 1)
        .chars()
        .take(64 * KIB)
        .collect();
    assert_eq!(value.len(), 64 * KIB);

    cache.set("big", &value, MINUTE).await.unwrap();
    assert_eq!(
        cache.get::<String>("big").await.unwrap().as_ref(),
        Some(&value)
    );

    let calls = AtomicUsize::new(0);
    let opts = LoadOptions::ttl(MINUTE);
    assert_eq!(
        load_counted(&cache, "loaded", &opts, &calls, value.clone()).await,
        Ok(value.clone())
    );
    assert_eq!(
        load_counted(&cache, "loaded", &opts, &calls, String::new()).await,
        Ok(value.clone())
    );
    assert_eq!(calls.load(SeqCst), 1);

    // Compression can be turned off per call.
    let never = LoadOptions::ttl(MINUTE).compress(Compress::Never);
    assert_eq!(
        load_counted(&cache, "plain", &never, &calls, value.clone()).await,
        Ok(value.clone())
    );
    assert_eq!(
        cache.get::<String>("plain").await.unwrap().as_ref(),
        Some(&value)
    );

    // A value that is over max_entry_bytes only uncompressed is cached.
    let small = backend.cache_with(|b| b.max_entry_bytes(8 * KIB));
    small.set("fits", &value, MINUTE).await.unwrap();
    assert_eq!(
        small.get::<String>("fits").await.unwrap().as_ref(),
        Some(&value)
    );

    if let Some(conn) = raw.as_mut() {
        let strlen = |conn: &mut redis::Connection, key: &str| -> usize {
            redis::cmd("STRLEN").arg(key).query(conn).expect("STRLEN")
        };
        for key in ["t:big", "t:loaded", "t:fits"] {
            let n = strlen(conn, key);
            assert!(
                n > 0 && n < 4 * KIB,
                "{key} takes {n} bytes in Redis for 64 KiB"
            );
        }
        let n = strlen(conn, "t:plain");
        assert!(
            n >= 64 * KIB,
            "t:plain, written with Compress::Never, takes {n} bytes"
        );
    }
}

async fn entries_record_their_codec(backend: Backend) {
    let json = backend.cache_with(|b| b.codec(Codec::Json));
    let postcard = backend.cache();
    let opts = LoadOptions::ttl(MINUTE);

    json.set("user:1", &ada(), MINUTE).await.unwrap();
    assert_eq!(json.get::<User>("user:1").await.unwrap(), Some(ada()));
    assert_eq!(postcard.get::<User>("user:1").await.unwrap(), Some(ada()));

    // Through get_or_load: written as JSON, served to the postcard cache without a load.
    let calls = AtomicUsize::new(0);
    assert_eq!(
        load_counted(&json, "user:2", &opts, &calls, ada()).await,
        Ok(ada())
    );
    assert_eq!(
        load_counted(&postcard, "user:2", &opts, &calls, ada()).await,
        Ok(ada())
    );
    assert_eq!(calls.load(SeqCst), 1);

    // And the other way round.
    postcard.set("user:3", &ada(), MINUTE).await.unwrap();
    assert_eq!(json.get::<User>("user:3").await.unwrap(), Some(ada()));
    let got: Vec<Option<User>> = postcard.get_many(&["user:1", "user:3"]).await.unwrap();
    assert_eq!(got, [Some(ada()), Some(ada())]);

    if let Some(mut conn) = backend.raw() {
        let as_json = serde_json::to_vec(&ada()).unwrap();
        let entry = raw_get(&mut conn, "t:user:1").expect("t:user:1 is in Redis");
        assert!(
            contains(&entry, &as_json),
            "the JSON entry holds the value as JSON text"
        );
        let entry = raw_get(&mut conn, "t:user:3").expect("t:user:3 is in Redis");
        assert!(
            !contains(&entry, b"\"name\""),
            "the postcard entry is not JSON"
        );
    }
}

/// Entries compressed by LZ4 (the default) and by deflate are read by caches set either way:
/// changing the setting never turns the entries already stored into misses.
async fn entries_record_their_compression(backend: Backend) {
    let lz4 = backend.cache();
    let deflate = backend.cache_with(|b| b.compression(Compression::Deflate));
    let value: String = "cachette compresses ".repeat(400);
    lz4.set("by-lz4", &value, MINUTE).await.unwrap();
    deflate.set("by-deflate", &value, MINUTE).await.unwrap();
    for (cache, name) in [(&lz4, "lz4"), (&deflate, "deflate")] {
        for key in ["by-lz4", "by-deflate"] {
            assert_eq!(
                cache.get::<String>(key).await.unwrap().as_ref(),
                Some(&value),
                "{key} read by the {name} cache"
            );
        }
    }
    if let Some(mut conn) = backend.raw() {
        let lz4_entry = raw_get(&mut conn, "t:by-lz4").expect("in Redis");
        let deflate_entry = raw_get(&mut conn, "t:by-deflate").expect("in Redis");
        assert!(lz4_entry.len() < value.len() / 4, "{}", lz4_entry.len());
        assert!(
            deflate_entry.len() < value.len() / 4,
            "{}",
            deflate_entry.len()
        );
        assert_ne!(
            lz4_entry[1], deflate_entry[1],
            "each entry's flags name its algorithm"
        );
    }
}

// ---------------------------------------------------------------------------------------------
/// `jitter` is a public field: set over 100 directly, it means up to all of the TTL, and the
/// write goes through (a negative factor made it panic).
#[tokio::test]
async fn jitter_over_a_hundred_percent_set_on_the_field_is_all_of_the_ttl() {
    let cache = Cache::builder().build().unwrap();
    let mut options = LoadOptions::ttl(Duration::from_secs(60));
    options.jitter = 250;
    for i in 0..20 {
        let got: Result<u32, LoadFailed> = cache
            .get_or_load(&format!("k:{i}"), &options, || async move { Ok(i) })
            .await;
        assert_eq!(got, Ok(i));
    }
}

// Redis only
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn redis_keys_are_prefix_plus_key_with_the_ttl_given() {
    let server = RedisServer::start();
    let cache = support::caches::on_server(&server, "t");
    let mut conn = server.conn();

    let ttl = Duration::from_secs(90);
    let since = Instant::now();
    let n: Result<u32, LoadFailed> = cache
        .get_or_load("answer", &LoadOptions::ttl(ttl), || async { Ok(42) })
        .await;
    assert_eq!(n, Ok(42));

    let exists: u32 = redis::cmd("EXISTS")
        .arg("t:answer")
        .query(&mut conn)
        .unwrap();
    assert_eq!(exists, 1);
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert_eq!(
        keys,
        ["t:answer"],
        "the cache writes exactly prefix + key, nothing else"
    );
    assert_pttl(&mut conn, "t:answer", ttl, since);

    let since = Instant::now();
    cache.set("user:1", &ada(), MINUTE).await.unwrap();
    assert_pttl(&mut conn, "t:user:1", MINUTE, since);
    cache.set_many(&[("a", 1u8), ("b", 2)], ttl).await.unwrap();
    assert_pttl(&mut conn, "t:a", ttl, since);

    keys = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    keys.sort();
    assert_eq!(keys, ["t:a", "t:answer", "t:b", "t:user:1"]);

    // A prefix already ending in `:` gets no second one; no prefix means the bare key.
    let colon = support::caches::on_server(&server, "app:");
    colon.set("k", &1u8, MINUTE).await.unwrap();
    let bare = Cache::builder().redis(server.url()).build().unwrap();
    bare.set("k", &1u8, MINUTE).await.unwrap();
    let exists: u32 = redis::cmd("EXISTS")
        .arg("app:k")
        .arg("k")
        .query(&mut conn)
        .unwrap();
    assert_eq!(exists, 2);
}

#[tokio::test]
async fn redis_corrupted_entries_are_misses_and_get_overwritten() {
    let server = RedisServer::start();
    let cache = support::caches::on_server(&server, "t");
    let mut conn = server.conn();
    let opts = LoadOptions::ttl(MINUTE);

    // A valid entry cut short, and bytes that are no entry at all.
    cache.set("answer", &42u32, MINUTE).await.unwrap();
    let mut truncated = raw_get(&mut conn, "t:answer").unwrap();
    truncated.truncate(20);
    let garbage: &[u8] = b"\xff\x00not a cachette entry";

    for (key, bad) in [("answer", truncated.as_slice()), ("other", garbage)] {
        let full = format!("t:{key}");
        let () = redis::cmd("SET")
            .arg(&full)
            .arg(bad)
            .query(&mut conn)
            .unwrap();

        assert_eq!(
            cache.get::<u32>(key).await.unwrap(),
            None,
            "{full}: undecodable is a miss"
        );
        let got: Vec<Option<u32>> = cache.get_many(&[key]).await.unwrap();
        assert_eq!(got, [None]);

        let calls = AtomicUsize::new(0);
        let since = Instant::now();
        assert_eq!(load_counted(&cache, key, &opts, &calls, 7u32).await, Ok(7));
        assert_eq!(calls.load(SeqCst), 1, "{full}: the loader runs");

        let stored = raw_get(&mut conn, &full).expect("the key is written");
        assert_ne!(stored, bad, "{full} is overwritten");
        assert_pttl(&mut conn, &full, MINUTE, since);
        assert_eq!(cache.get::<u32>(key).await.unwrap(), Some(7));
        assert_eq!(load_counted(&cache, key, &opts, &calls, 8u32).await, Ok(7));
        assert_eq!(calls.load(SeqCst), 1, "{full}: the new entry is served");
    }

    // An entry of another type is a miss too, not a panic or a wrong value.
    cache.set("typed", &"a string", MINUTE).await.unwrap();
    assert_eq!(cache.get::<Vec<User>>("typed").await.unwrap(), None);
}

/// A `redis-server` that a test stops and restarts, a cache on it whose commands and
/// connections give up after 200 ms, and `answer` = 42 loaded through it (counted in `calls`).
struct Outage {
    server: RedisServer,
    cache: Cache,
    opts: LoadOptions,
    calls: AtomicUsize,
}

impl Outage {
    async fn start() -> Outage {
        let server = RedisServer::start();
        let cache =
            support::caches::on_server_with_timeout(&server, "t", Duration::from_millis(200));
        let opts = LoadOptions::ttl(MINUTE);
        let calls = AtomicUsize::new(0);
        assert_eq!(
            load_counted(&cache, "answer", &opts, &calls, 42u32).await,
            Ok(42)
        );
        Outage {
            server,
            cache,
            opts,
            calls,
        }
    }
}

#[tokio::test]
async fn redis_outage_runs_the_loader_and_reports_store_errors() {
    let Outage {
        mut server,
        cache,
        opts,
        calls,
    } = Outage::start().await;
    cache.ping().await.unwrap();

    server.stop();
    assert!(!server.is_running());

    // Cached calls still answer, from the loader.
    assert_eq!(
        load_counted(&cache, "answer", &opts, &calls, 43u32).await,
        Ok(43)
    );
    assert_eq!(
        load_counted(&cache, "new", &opts, &calls, 1u32).await,
        Ok(1)
    );
    assert_eq!(calls.load(SeqCst), 3);
    let failing: Result<u32, LoadFailed> = cache
        .get_or_load("failing", &opts, || async { Err(LoadFailed("also down")) })
        .await;
    assert_eq!(failing, Err(LoadFailed("also down")));

    // The service-level API reports the outage.
    assert!(matches!(
        cache.get::<u32>("answer").await,
        Err(CacheError::Store(_))
    ));
    assert!(matches!(
        cache.set("answer", &1u32, MINUTE).await,
        Err(CacheError::Store(_))
    ));
    assert!(matches!(
        cache.exists("answer").await,
        Err(CacheError::Store(_))
    ));
    assert!(matches!(
        cache.ttl("answer").await,
        Err(CacheError::Store(_))
    ));
    assert!(matches!(
        cache.delete("answer").await,
        Err(CacheError::Store(_))
    ));
    assert!(matches!(
        cache.get_many::<u32, _>(&["answer"]).await,
        Err(CacheError::Store(_))
    ));
    assert!(matches!(
        cache.set_many(&[("a", 1u8)], MINUTE).await,
        Err(CacheError::Store(_))
    ));
    assert!(matches!(
        cache.delete_many(&["answer"]).await,
        Err(CacheError::Store(_))
    ));
    assert!(cache.ping().await.is_err());
    let err = cache.get::<u32>("answer").await.unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[tokio::test]
async fn redis_cache_recovers_when_the_server_comes_back() {
    let Outage {
        mut server,
        cache,
        opts,
        calls,
    } = Outage::start().await;

    server.stop();
    assert!(cache.get::<u32>("answer").await.is_err());
    server.restart();

    // The connection is re-established in the background; wait for it (this is not a timing
    // assertion: the deadline only bounds a hang).
    let deadline = Instant::now() + Duration::from_secs(20);
    while cache.ping().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the cache did not reconnect to the restarted server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The restarted server is empty (nothing persisted); caching works again.
    assert_eq!(cache.get::<u32>("answer").await.unwrap(), None);
    assert_loaded_then_served(&cache, "answer", &opts, &calls, 43u32, 44u32).await;
    assert_eq!(calls.load(SeqCst), 2);
    let exists: u32 = redis::cmd("EXISTS")
        .arg("t:answer")
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(exists, 1);
}

#[test]
fn invalid_redis_url_is_a_build_error() {
    match Cache::builder().redis("http://x").build() {
        Err(BuildError::InvalidRedisUrl { url, reason }) => {
            assert_eq!(url, "http://x");
            assert!(!reason.is_empty());
        }
        other => panic!("expected BuildError::InvalidRedisUrl, got {other:?}"),
    }

    // The password of a rejected URL is not repeated in the error.
    let err = Cache::builder()
        .redis("http://user:secret@x")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidRedisUrl { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("secret"), "{err}");
}

#[test]
fn redis_server_harness_stops_and_restarts_on_the_same_port() {
    let mut server = RedisServer::start();
    let port = server.port();
    assert_ne!(port, 6379, "never the shared Redis");
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut server.conn())
        .unwrap();

    server.stop();
    assert!(
        server
            .client()
            .get_connection_with_timeout(Duration::from_secs(1))
            .is_err()
    );
    server.stop(); // idempotent

    server.restart();
    assert_eq!(server.port(), port);
    let v: Option<String> = redis::cmd("GET")
        .arg("k")
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(v, None, "nothing is persisted across a restart");
}
