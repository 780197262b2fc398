//! Pattern invalidation: malformed globs are refused with an error that names the problem on
//! every store, and the in-process store matches exactly what redis-server matches.

mod support;

use std::time::Duration;

use cachette::{Cache, CacheError, Invalidation};
use support::RedisServer;
use support::rng::Rng;

const TTL: Duration = Duration::from_secs(60);

/// Globs that Redis would read leniently, and that a cache refuses.
const MALFORMED: [&str; 5] = ["a[b", "[", "user:[^", "tail\\", "x[a\\"];

async fn refuses_malformed_patterns(cache: &Cache) {
    cache.set("ab", &1u8, TTL).await.unwrap();
    cache.set("a[b", &2u8, TTL).await.unwrap();
    for pattern in MALFORMED {
        match cache.invalidate_pattern(pattern).await {
            Err(CacheError::InvalidPattern { pattern: p, reason }) => {
                assert_eq!(p, pattern);
                assert!(!reason.is_empty());
            }
            other => panic!("{pattern}: {other:?}"),
        }
        // Nothing of an invalidation that holds a malformed pattern is applied.
        let inv = Invalidation::keys(["ab"]).and_patterns([pattern]);
        let err = cache.apply(&inv).await.unwrap_err();
        assert!(err.to_string().contains(pattern), "{err}");
    }
    assert_eq!(cache.get::<u8>("ab").await.unwrap(), Some(1));
    assert_eq!(cache.get::<u8>("a[b").await.unwrap(), Some(2));
    // A well-formed pattern for the same keys still works.
    assert_eq!(cache.invalidate_pattern("a\\[b").await.unwrap(), 1);
    assert_eq!(cache.get::<u8>("a[b").await.unwrap(), None);
    assert_eq!(cache.get::<u8>("ab").await.unwrap(), Some(1));
}

#[tokio::test]
async fn malformed_patterns_are_refused_in_memory() {
    refuses_malformed_patterns(&Cache::builder().prefix("t").build().unwrap()).await;
}

#[tokio::test]
async fn malformed_patterns_are_refused_on_redis() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("t")
        .build()
        .unwrap();
    refuses_malformed_patterns(&cache).await;
    assert!(
        cache.health().await.pending_invalidations == 0,
        "a refused pattern is not queued"
    );
}

/// Every well-formed pattern over an alphabet rich in glob syntax selects, in the in-process
/// store, exactly the keys that `KEYS` selects on redis-server.
#[tokio::test]
async fn the_in_process_store_matches_like_redis() {
    let server = RedisServer::start();
    let mut conn = server.conn();
    // A fixed seed in CI; `CACHETTE_PATTERN_SEED=<n>` explores others.
    let seed = std::env::var("CACHETTE_PATTERN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CAC4_E77E_0001);
    let mut rng = Rng::new(seed);
    let mut keys: Vec<String> = (0..120).map(|_| rng.string(b"ab-[]^*?\\", 6)).collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        let _: () = redis::cmd("SET").arg(key).arg(1).query(&mut conn).unwrap();
    }
    let memory = Cache::builder().build().unwrap();
    let mut checked = 0;
    for _ in 0..400 {
        let pattern = rng.string(b"ab-[]^*?\\", 7);
        let mut redis_matched: Vec<String> =
            redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
        redis_matched.sort();
        for key in &keys {
            memory.set(key, &1u8, TTL).await.unwrap();
        }
        match memory.invalidate_pattern(&pattern).await {
            Ok(_) => {
                let mut removed = Vec::new();
                for key in &keys {
                    if memory.get::<u8>(key).await.unwrap().is_none() {
                        removed.push(key.clone());
                    }
                }
                assert_eq!(removed, redis_matched, "pattern {pattern:?} (seed {seed})");
                checked += 1;
            }
            Err(CacheError::InvalidPattern { .. }) => {}
            Err(e) => panic!("{pattern:?}: {e}"),
        }
    }
    assert!(checked > 200, "only {checked} well-formed patterns");
}
