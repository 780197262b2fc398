//! `#[cached]` end to end, each behaviour on the memory store, on a real `redis-server` and on
//! a Redis Cluster of three masters with a replica each.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cachette::{Cache, cached};
use serde::{Deserialize, Serialize};
use support::{RedisCluster, RedisServer};

/// A cache under test, and the server (or cluster) behind it when it is Redis.
struct Fixture {
    cache: Cache,
    server: Option<RedisServer>,
    cluster: Option<RedisCluster>,
}

impl Fixture {
    fn memory() -> Fixture {
        Fixture {
            cache: Cache::builder().prefix("t").build().unwrap(),
            server: None,
            cluster: None,
        }
    }

    /// The settings of every Redis fixture: prefix `t`, short timeouts.
    fn quick(builder: cachette::CacheBuilder) -> Cache {
        builder
            .prefix("t")
            .command_timeout(Duration::from_millis(300))
            .connection_timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    }

    fn redis() -> Fixture {
        let server = RedisServer::start();
        Fixture {
            cache: Self::quick(Cache::builder().redis(server.url())),
            server: Some(server),
            cluster: None,
        }
    }

    fn cluster() -> Fixture {
        let cluster = RedisCluster::start(3, 1);
        Fixture {
            cache: Self::quick(Cache::builder().redis_cluster(cluster.urls())),
            server: None,
            cluster: Some(cluster),
        }
    }

    /// A connection to what the cache writes to, when it is Redis.
    fn conn(&self) -> Option<Box<dyn redis::ConnectionLike>> {
        match (&self.server, &self.cluster) {
            (Some(server), _) => Some(Box::new(server.conn())),
            (_, Some(cluster)) => Some(Box::new(cluster.conn())),
            _ => None,
        }
    }

    /// Every key in Redis, sorted.
    fn all_keys(&self) -> Option<Vec<String>> {
        match (&self.server, &self.cluster) {
            (Some(server), _) => {
                let mut keys: Vec<String> = redis::cmd("KEYS")
                    .arg("*")
                    .query(&mut server.conn())
                    .unwrap();
                keys.sort();
                Some(keys)
            }
            (_, Some(cluster)) => Some(cluster.keys("*")),
            _ => None,
        }
    }

    /// The PTTL of `key` (without prefix) in the store.
    async fn ttl(&self, key: &str) -> Option<Duration> {
        match self.conn() {
            Some(mut conn) => {
                let ms: i64 = redis::cmd("PTTL")
                    .arg(format!("t:{key}"))
                    .query(&mut *conn)
                    .unwrap();
                (ms >= 0).then(|| Duration::from_millis(ms as u64))
            }
            None => self.cache.ttl(key).await.unwrap(),
        }
    }

    async fn exists(&self, key: &str) -> bool {
        match self.conn() {
            Some(mut conn) => {
                let n: u32 = redis::cmd("EXISTS")
                    .arg(format!("t:{key}"))
                    .query(&mut *conn)
                    .unwrap();
                n == 1
            }
            None => self.cache.exists(key).await.unwrap(),
        }
    }
}

/// Runs `$check` against every backend: memory, one server, a cluster.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&super::Fixture::memory()).await;
                }
            )*
        }
        mod redis_server {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&mut super::Fixture::redis()).await;
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&mut super::Fixture::cluster()).await;
                }
            )*
        }
    };
}

on_both!(
    loads_once_then_hits,
    errors_are_not_cached,
    none_is_cached_only_when_asked,
    condition_bypasses_the_cache,
    keys_and_ttls_are_what_the_attribute_says,
    arguments_are_escaped_in_keys,
    default_key_is_module_fn_and_arguments,
    undecodable_entry_is_a_miss_and_is_overwritten,
    oversized_values_are_returned_not_cached,
    zero_ttl_caches_nothing,
    methods_key_on_self_fields,
    counts_per_function_stats,
    hashed_arguments_never_share_a_key,
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[cached(key = "user:{id}", ttl = "5m", tags = ["users", "user:{id}"], cache = cache, skip = [cache, calls])]
async fn get_user(cache: &Cache, calls: &AtomicU32, id: u64) -> Result<User, String> {
    calls.fetch_add(1, SeqCst);
    if id == 0 {
        return Err("no user 0".into());
    }
    Ok(User {
        id,
        name: format!("user {id}"),
    })
}

/// A search filter with a flattened field: serde gives no length for it, which postcard needs.
#[derive(Debug, Clone, Serialize)]
struct Search {
    owner: String,
    #[serde(flatten)]
    extra: std::collections::BTreeMap<String, String>,
}

#[cached(key = "search:{q:hash}", cache = cache, skip = [cache, calls])]
async fn search(cache: &Cache, calls: &AtomicU32, q: Search) -> Vec<String> {
    calls.fetch_add(1, SeqCst);
    vec![format!("rows of {}", q.owner)]
}

/// Serializes an iterator: the length is unknown until it ends.
struct Ids(Vec<u32>);

impl Serialize for Ids {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().filter(|_| true))
    }
}

#[cached(key = "ids:{ids:hash}", cache = cache, skip = [cache])]
async fn sum_ids(cache: &Cache, ids: Ids) -> u32 {
    ids.0.iter().sum()
}

/// A value whose `Serialize` fails: it cannot be told apart from others, so it is never cached.
struct Broken(u32);

impl Serialize for Broken {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot serialize"))
    }
}

#[cached(key = "broken:{b:hash}", cache = cache, skip = [cache, calls])]
async fn broken(cache: &Cache, calls: &AtomicU32, b: Broken) -> u32 {
    calls.fetch_add(1, SeqCst);
    b.0
}

/// Regression: a `{q:hash}` over a value postcard cannot serialize rendered one key part for
/// every such value, and one user's results were served to another.
async fn hashed_arguments_never_share_a_key(fx: &Fixture) {
    let calls = AtomicU32::new(0);
    let q = |owner: &str| Search {
        owner: owner.into(),
        extra: [("status".to_owned(), "open".to_owned())].into(),
    };
    assert_eq!(
        search(&fx.cache, &calls, q("alice")).await,
        ["rows of alice"]
    );
    assert_eq!(search(&fx.cache, &calls, q("bob")).await, ["rows of bob"]);
    assert_eq!(
        search(&fx.cache, &calls, q("alice")).await,
        ["rows of alice"]
    );
    assert_eq!(calls.load(SeqCst), 2, "two users, two loads, then a hit");

    assert_eq!(sum_ids(&fx.cache, Ids(vec![1, 2])).await, 3);
    assert_eq!(sum_ids(&fx.cache, Ids(vec![5])).await, 5);
    assert_eq!(sum_ids(&fx.cache, Ids(vec![1, 2])).await, 3);

    let calls = AtomicU32::new(0);
    assert_eq!(broken(&fx.cache, &calls, Broken(1)).await, 1);
    assert_eq!(broken(&fx.cache, &calls, Broken(2)).await, 2);
    assert_eq!(broken(&fx.cache, &calls, Broken(1)).await, 1);
    assert_eq!(calls.load(SeqCst), 3, "an unrenderable key is never cached");
    if let Some(keys) = fx.all_keys() {
        assert!(!keys.iter().any(|k| k.contains("broken")), "{keys:?}");
    }
}

async fn loads_once_then_hits(fx: &Fixture) {
    let calls = AtomicU32::new(0);
    let first = get_user(&fx.cache, &calls, 7).await.unwrap();
    for _ in 0..5 {
        assert_eq!(get_user(&fx.cache, &calls, 7).await.unwrap(), first);
    }
    assert_eq!(calls.load(SeqCst), 1);
    get_user(&fx.cache, &calls, 8).await.unwrap();
    assert_eq!(calls.load(SeqCst), 2, "another argument is another key");
}

async fn errors_are_not_cached(fx: &Fixture) {
    let calls = AtomicU32::new(0);
    for _ in 0..3 {
        assert_eq!(
            get_user(&fx.cache, &calls, 0).await,
            Err("no user 0".to_string())
        );
    }
    assert_eq!(calls.load(SeqCst), 3);
    assert!(!fx.exists("user:0").await);
}

#[cached(key = "maybe:{id}", cache = cache, skip = [cache, calls])]
async fn maybe(cache: &Cache, calls: &AtomicU32, id: u32) -> Option<u32> {
    calls.fetch_add(1, SeqCst);
    (id % 2 == 0).then_some(id * 10)
}

#[cached(key = "maybe-none:{id}", cache = cache, skip = [cache, calls], cache_none = true)]
async fn maybe_cache_none(cache: &Cache, calls: &AtomicU32, id: u32) -> Option<u32> {
    calls.fetch_add(1, SeqCst);
    (id % 2 == 0).then_some(id * 10)
}

async fn none_is_cached_only_when_asked(fx: &Fixture) {
    let calls = AtomicU32::new(0);
    assert_eq!(maybe(&fx.cache, &calls, 1).await, None);
    assert_eq!(maybe(&fx.cache, &calls, 1).await, None);
    assert_eq!(calls.load(SeqCst), 2, "None is not cached by default");
    assert_eq!(maybe(&fx.cache, &calls, 2).await, Some(20));
    assert_eq!(maybe(&fx.cache, &calls, 2).await, Some(20));
    assert_eq!(calls.load(SeqCst), 3, "Some is cached");

    let calls = AtomicU32::new(0);
    assert_eq!(maybe_cache_none(&fx.cache, &calls, 1).await, None);
    assert_eq!(maybe_cache_none(&fx.cache, &calls, 1).await, None);
    assert_eq!(calls.load(SeqCst), 1, "cache_none = true caches None");
}

#[cached(key = "cond:{id}", condition = id > 100, cache = cache, skip = [cache, calls])]
async fn only_big_ids(cache: &Cache, calls: &AtomicU32, id: u64) -> u64 {
    calls.fetch_add(1, SeqCst);
    id * 2
}

async fn condition_bypasses_the_cache(fx: &Fixture) {
    let calls = AtomicU32::new(0);
    assert_eq!(only_big_ids(&fx.cache, &calls, 5).await, 10);
    assert_eq!(only_big_ids(&fx.cache, &calls, 5).await, 10);
    assert_eq!(calls.load(SeqCst), 2);
    assert!(!fx.exists("cond:5").await);
    assert_eq!(only_big_ids(&fx.cache, &calls, 500).await, 1000);
    assert_eq!(only_big_ids(&fx.cache, &calls, 500).await, 1000);
    assert_eq!(calls.load(SeqCst), 3);
    assert!(fx.exists("cond:500").await);
}

#[cached(key = "order:{id}", ttl = "1h30m", version = 3, cache = cache, skip = [cache])]
async fn order(cache: &Cache, id: u64) -> String {
    format!("order {id}")
}

#[cached(key = "short:{id}", ttl = 90, cache = cache, skip = [cache])]
async fn short(cache: &Cache, id: u64) -> String {
    format!("short {id}")
}

fn assert_close(got: Option<Duration>, want: Duration) {
    let got = got.expect("the key has a TTL");
    assert!(
        got <= want && got + Duration::from_secs(5) > want,
        "TTL {got:?}, expected {want:?}"
    );
}

async fn keys_and_ttls_are_what_the_attribute_says(fx: &Fixture) {
    assert_eq!(
        get_user(&fx.cache, &AtomicU32::new(0), 42)
            .await
            .unwrap()
            .id,
        42
    );
    assert!(fx.exists("user:42").await);
    assert_close(fx.ttl("user:42").await, Duration::from_secs(300));

    order(&fx.cache, 5).await;
    assert!(fx.exists("order:5:v3").await, "version is a key segment");
    assert!(!fx.exists("order:5").await);
    assert_close(fx.ttl("order:5:v3").await, Duration::from_secs(5400));

    short(&fx.cache, 1).await;
    assert_close(fx.ttl("short:1").await, Duration::from_secs(90));

    if let Some(keys) = fx.all_keys() {
        // Exactly the prefix and the template, and the versions of the two tags of get_user.
        assert_eq!(
            keys,
            [
                "t:__cachette:tag:user:42",
                "t:__cachette:tag:users",
                "t:order:5:v3",
                "t:short:1",
                "t:user:42"
            ]
        );
    }
}

#[cached(key = "name:{name}:{page}", cache = cache, skip = [cache])]
async fn by_name(cache: &Cache, name: &str, page: Option<u32>) -> String {
    format!("{name}/{page:?}")
}

async fn arguments_are_escaped_in_keys(fx: &Fixture) {
    assert_eq!(by_name(&fx.cache, "a:b*", Some(2)).await, "a:b*/Some(2)");
    assert!(fx.exists("name:a%3Ab%2A:2").await);
    assert_eq!(by_name(&fx.cache, "x", None).await, "x/None");
    assert!(fx.exists("name:x:~").await);
    // "a:b" + page 2 must not collide with "a" + something that renders "b:2".
    assert_eq!(by_name(&fx.cache, "a", Some(2)).await, "a/Some(2)");
    assert_eq!(by_name(&fx.cache, "a:b*", Some(2)).await, "a:b*/Some(2)");
}

#[cached(cache = cache, skip = [cache], ttl = 60)]
async fn default_key(cache: &Cache, a: u32, b: String) -> String {
    format!("{a}{b}")
}

async fn default_key_is_module_fn_and_arguments(fx: &Fixture) {
    assert_eq!(default_key(&fx.cache, 7, "x y".into()).await, "7x y");
    assert!(fx.exists("cached_macro::default_key:7:x%20y").await);
    let spec = cachette::registry()
        .iter()
        .find(|s| s.name == "default_key")
        .unwrap();
    assert_eq!(spec.template, "cached_macro::default_key:{a}:{b}");
    assert!(spec.default_key);
}

async fn undecodable_entry_is_a_miss_and_is_overwritten(fx: &Fixture) {
    let calls = AtomicU32::new(0);
    // An entry of another type (a schema change) under the key.
    fx.cache
        .set("user:9", &"not a user", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(get_user(&fx.cache, &calls, 9).await.unwrap().id, 9);
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(get_user(&fx.cache, &calls, 9).await.unwrap().id, 9);
    assert_eq!(calls.load(SeqCst), 1, "the bad entry was overwritten");

    if let Some(mut conn) = fx.conn() {
        // Raw garbage, as a corrupted value or another program would leave it.
        let _: () = redis::cmd("SET")
            .arg("t:user:10")
            .arg(b"\x01\xff garbage")
            .query(&mut *conn)
            .unwrap();
        assert_eq!(get_user(&fx.cache, &calls, 10).await.unwrap().id, 10);
        assert_eq!(get_user(&fx.cache, &calls, 10).await.unwrap().id, 10);
        assert_eq!(calls.load(SeqCst), 2);
    }
}

#[cached(key = "big:{n}", cache = cache, skip = [cache, calls], compress = false)]
async fn big(cache: &Cache, calls: &AtomicU32, n: usize) -> Vec<u8> {
    calls.fetch_add(1, SeqCst);
    vec![7; n]
}

async fn oversized_values_are_returned_not_cached(fx: &Fixture) {
    let calls = AtomicU32::new(0);
    let n = 2 * 1024 * 1024;
    assert_eq!(big(&fx.cache, &calls, n).await.len(), n);
    assert_eq!(big(&fx.cache, &calls, n).await.len(), n);
    assert_eq!(calls.load(SeqCst), 2);
    assert!(!fx.exists(&format!("big:{n}")).await);
    big(&fx.cache, &calls, 10).await;
    assert!(fx.exists("big:10").await);
}

#[cached(key = "zero:{id}", ttl = 0, cache = cache, skip = [cache, calls])]
async fn zero_ttl(cache: &Cache, calls: &AtomicU32, id: u8) -> u8 {
    calls.fetch_add(1, SeqCst);
    id
}

async fn zero_ttl_caches_nothing(fx: &Fixture) {
    let calls = AtomicU32::new(0);
    zero_ttl(&fx.cache, &calls, 1).await;
    zero_ttl(&fx.cache, &calls, 1).await;
    assert_eq!(calls.load(SeqCst), 2);
    assert!(!fx.exists("zero:1").await);
}

struct Repo {
    tenant: String,
    cache: Cache,
    calls: AtomicU32,
}

impl Repo {
    #[cached(key = "repo:{self.tenant}:{id}", ttl = "1m", cache = self.cache)]
    async fn find(&self, id: u32) -> Result<String, std::io::Error> {
        self.calls.fetch_add(1, SeqCst);
        Ok(format!("{}/{id}", self.tenant))
    }
}

async fn methods_key_on_self_fields(fx: &Fixture) {
    let a = Repo {
        tenant: "acme".into(),
        cache: fx.cache.clone(),
        calls: AtomicU32::new(0),
    };
    let b = Repo {
        tenant: "globex".into(),
        cache: fx.cache.clone(),
        calls: AtomicU32::new(0),
    };
    assert_eq!(a.find(1).await.unwrap(), "acme/1");
    assert_eq!(a.find(1).await.unwrap(), "acme/1");
    assert_eq!(
        b.find(1).await.unwrap(),
        "globex/1",
        "self.tenant is part of the key"
    );
    assert_eq!(a.calls.load(SeqCst) + b.calls.load(SeqCst), 2);
    assert!(fx.exists("repo:acme:1").await);
}

#[cached(key = "counted:{id}", cache = cache, skip = [cache])]
async fn counted(cache: &Cache, id: u32) -> u32 {
    id
}

async fn counts_per_function_stats(fx: &Fixture) {
    let before = fx.cache.stats().total;
    counted(&fx.cache, 1).await;
    counted(&fx.cache, 1).await;
    counted(&fx.cache, 1).await;
    let after = fx.cache.stats();
    assert_eq!(after.total.hits - before.hits, 2);
    assert_eq!(after.total.misses - before.misses, 1);
    assert_eq!(after.total.loads - before.loads, 1);
    // Lookup times are sampled (one in eight per thread): enough lookups give a sample.
    for _ in 0..16 {
        counted(&fx.cache, 1).await;
    }
    assert!(fx.cache.stats().total.avg_lookup > Duration::ZERO);
    // Function counters are process-wide; this function is only called here, but the test
    // runs twice (memory and Redis) in one process.
    let (_, f) = after
        .per_function
        .iter()
        .find(|(name, _)| name.ends_with("::counted"))
        .unwrap();
    assert!(f.hits >= 2 && f.loads >= 1, "{f:?}");
}

#[tokio::test]
async fn redis_down_still_returns_results() {
    let mut fx = Fixture::redis();
    let calls = AtomicU32::new(0);
    assert_eq!(get_user(&fx.cache, &calls, 1).await.unwrap().id, 1);
    fx.server.as_mut().unwrap().stop();
    for id in [1, 2, 3] {
        assert_eq!(
            get_user(&fx.cache, &calls, id).await.unwrap(),
            User {
                id,
                name: format!("user {id}")
            }
        );
    }
    assert_eq!(
        get_user(&fx.cache, &calls, 0).await,
        Err("no user 0".to_string())
    );
    assert!(fx.cache.stats().total.errors > 0);
}

#[cached(key = "blob:{n}", cache = cache, skip = [cache], compress = 1024)]
async fn blob(cache: &Cache, n: usize) -> String {
    "abcd".repeat(n)
}

#[tokio::test]
async fn large_values_are_compressed_in_redis() {
    let fx = Fixture::redis();
    let value = blob(&fx.cache, 16 * 1024).await;
    assert_eq!(value.len(), 64 * 1024);
    let len: usize = redis::cmd("STRLEN")
        .arg("t:blob:16384")
        .query(&mut fx.server.as_ref().unwrap().conn())
        .unwrap();
    assert!(
        len < 4 * 1024,
        "64 KiB of repetitive text stored in {len} bytes"
    );
    assert_eq!(blob(&fx.cache, 16 * 1024).await, value);
}

#[cached(key = "dup:{id}", cache = cache, skip = [cache])]
async fn dup_a(cache: &Cache, id: u32) -> u32 {
    id
}

#[cached(key = "dup:{id}", cache = cache, skip = [cache])]
async fn dup_b(cache: &Cache, id: u32) -> u32 {
    id + 1
}

#[test]
fn registry_lists_functions_and_reports_shared_templates() {
    let get_user = cachette::registry()
        .iter()
        .find(|s| s.name == "get_user")
        .unwrap();
    assert_eq!(get_user.template, "user:{id}");
    assert_eq!(get_user.ttl, Some(Duration::from_secs(300)));
    assert_eq!(get_user.tags, ["users", "user:{id}"]);
    assert_eq!(get_user.module, "cached_macro");
    let dups = cachette::duplicate_templates();
    let names: Vec<Vec<&str>> = dups
        .iter()
        .map(|g| g.iter().map(|s| s.name).collect())
        .collect();
    assert!(
        names
            .iter()
            .any(|g| g.contains(&"dup_a") && g.contains(&"dup_b")),
        "{names:?}"
    );
    let _ = (dup_a, dup_b);
}

#[cached(key = "pair:{a}:{b}", cache = cache, skip = [cache])]
async fn pair(cache: &Cache, a: String, b: Option<String>) -> (String, Option<String>) {
    (a, b)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Distinct argument tuples never share a key: if they did, the second call would return
    /// the first call's cached value.
    #[test]
    fn distinct_arguments_never_share_a_key(
        a1 in "([a-z:*?%~ \\[\\]\\\\{}\\x00é]|.){0,6}", b1 in proptest::option::of("([a-z:*?%~]|.){0,4}"),
        a2 in "([a-z:*?%~ \\[\\]\\\\{}\\x00é]|.){0,6}", b2 in proptest::option::of("([a-z:*?%~]|.){0,4}"),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let cache = Cache::builder().build().unwrap();
        let first = rt.block_on(pair(&cache, a1.clone(), b1.clone()));
        let second = rt.block_on(pair(&cache, a2.clone(), b2.clone()));
        proptest::prop_assert_eq!(first, (a1, b1));
        proptest::prop_assert_eq!(second, (a2, b2));
    }
}
