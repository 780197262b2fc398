//! The L1 tier against real `redis-server` processes and a Redis Cluster: hits without a round
//! trip, and every invalidation, write and event of one process reaching the L1 of the others
//! (two caches on one server are two processes to the backplane: each has its own L1, its
//! own subscription and its own identity).

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cachette::{Cache, Invalidation, LoadOptions};
use support::{RedisCluster, RedisServer};

const DEADLINE: Duration = Duration::from_secs(10);

fn with_l1(builder: cachette::CacheBuilder) -> Cache {
    builder
        .prefix("t")
        .l1_max_bytes(16 * 1024 * 1024)
        .build()
        .unwrap()
}

fn on(server: &RedisServer) -> Cache {
    with_l1(Cache::builder().redis(server.url()))
}

fn on_cluster(cluster: &RedisCluster) -> Cache {
    with_l1(Cache::builder().redis_cluster(cluster.urls()))
}

/// One process's view of one key: what it serves, and how many loads it ran.
struct Reader {
    cache: Cache,
    loads: AtomicU32,
}

impl Reader {
    fn new(cache: Cache) -> Reader {
        Reader {
            cache,
            loads: AtomicU32::new(0),
        }
    }

    /// Reads `key` (tagged `users`); a load returns "<key>#<n>", n counting this reader's loads.
    async fn read(&self, key: &str) -> String {
        let opts = LoadOptions::ttl(Duration::from_secs(600)).tag("users");
        let r: Result<String, std::convert::Infallible> = self
            .cache
            .get_or_load(key, &opts, || async {
                Ok(format!("{key}#{}", self.loads.fetch_add(1, SeqCst) + 1))
            })
            .await;
        r.unwrap_or_else(|never| match never {})
    }

    fn l1_hits(&self) -> u64 {
        self.cache.stats().total.l1_hits
    }

    /// Waits until the backplane has proven its channel and copies are served.
    async fn serving(&self) {
        let start = Instant::now();
        while !self.cache.health().await.l1.is_some_and(|l| l.serving) {
            assert!(start.elapsed() < DEADLINE, "L1 never started serving");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Reads `key` until it is a copy in L1 (read from the store once, then served from L1).
    async fn warm(&self, key: &str) -> String {
        self.serving().await;
        let start = Instant::now();
        loop {
            let before = self.l1_hits();
            let v = self.read(key).await;
            if self.l1_hits() > before {
                return v;
            }
            assert!(start.elapsed() < DEADLINE, "{key} never reached L1");
        }
    }

    /// Reads `key` until it is no longer `old`, and then checks that `old` never comes back.
    async fn sees_change(&self, key: &str, old: &str) -> String {
        let start = Instant::now();
        let new = loop {
            let v = self.read(key).await;
            if v != old {
                break v;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{key}: the invalidation never reached this process"
            );
            tokio::task::yield_now().await;
        };
        for _ in 0..50 {
            assert_ne!(
                self.read(key).await,
                old,
                "{key}: an invalidated copy came back"
            );
        }
        new
    }
}

fn get_calls(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|l| l.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_hits_make_no_round_trip_and_are_counted() {
    let server = RedisServer::start();
    let a = Reader::new(on(&server));
    let v = a.warm("user:1").await;
    let gets = get_calls(&server);
    let hits = a.l1_hits();
    for _ in 0..100 {
        assert_eq!(a.read("user:1").await, v);
    }
    assert_eq!(get_calls(&server), gets, "L1 hits sent GETs");
    assert_eq!(a.l1_hits(), hits + 100);
    assert_eq!(a.loads.load(SeqCst), 1);
    let h = a.cache.health().await;
    assert!(h.to_string().contains("L1 1 copies"), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_in_one_process_reach_the_l1_of_the_others() {
    let server = RedisServer::start();
    let (a, b) = (Reader::new(on(&server)), Reader::new(on(&server)));
    a.serving().await;

    // By key.
    let old = b.warm("user:1").await;
    a.cache.invalidate("user:1").await.unwrap();
    b.sees_change("user:1", &old).await;

    // By tag.
    let old = b.warm("user:2").await;
    a.cache.invalidate_tag("users").await.unwrap();
    b.sees_change("user:2", &old).await;

    // By pattern.
    let old = b.warm("user:3").await;
    a.cache.invalidate_pattern("user:*").await.unwrap();
    b.sees_change("user:3", &old).await;

    // Everything.
    let old = b.warm("user:4").await;
    a.cache.clear().await.unwrap();
    b.sees_change("user:4", &old).await;

    // The invalidating process sees its own invalidation at once.
    let old = a.warm("user:5").await;
    a.cache.invalidate("user:5").await.unwrap();
    assert_ne!(a.read("user:5").await, old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_one_process_reach_the_l1_of_the_others() {
    let server = RedisServer::start();
    let (a, b) = (Reader::new(on(&server)), Reader::new(on(&server)));
    a.serving().await;
    let old = b.warm("user:1").await;
    a.cache
        .set("user:1", "written by a", Duration::from_secs(60))
        .await
        .unwrap();
    // The written entry carries no tag: B's read of it (tagged) is a miss that B loads.
    let new = b.sees_change("user:1", &old).await;
    assert_ne!(new, old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_runs_the_rules_of_every_process() {
    let server = RedisServer::start();
    let (a, b) = (Reader::new(on(&server)), Reader::new(on(&server)));
    // Only B knows what the event invalidates.
    b.cache.on("user.updated", |p| {
        Invalidation::keys([format!("user:{}", p["id"])])
    });
    a.serving().await;
    let old = b.warm("user:7").await;
    let report = a
        .cache
        .emit("user.updated", &serde_json::json!({ "id": 7 }))
        .await
        .unwrap();
    assert_eq!(report.keys, 0, "A has no rule for it");
    b.sees_change("user:7", &old).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_empties_l1_until_it_is_back() {
    let server = RedisServer::start();
    let a = Reader::new(on(&server));
    let v = a.warm("user:1").await;
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut server.conn())
        .unwrap();
    // No read meanwhile: the copy count can only fall.
    let start = Instant::now();
    while a.cache.health().await.l1.unwrap().copies > 0 {
        assert!(
            start.elapsed() < DEADLINE,
            "the copy survived a lost subscription"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.serving().await;
    let hits = a.l1_hits();
    assert_eq!(a.read("user:1").await, v, "read from the store again");
    assert_eq!(
        a.l1_hits(),
        hits,
        "the copy from before the loss was served"
    );
    assert_eq!(a.warm("user:1").await, v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_can_keep_no_copy() {
    let server = RedisServer::start();
    let a = Reader::new(on(&server));
    a.serving().await;
    let opts = LoadOptions::ttl(Duration::from_secs(600)).l1(Duration::ZERO);
    for _ in 0..5 {
        let r: Result<u32, std::convert::Infallible> = a
            .cache
            .get_or_load("no-copy", &opts, || async { Ok(1) })
            .await;
        assert_eq!(r.unwrap_or_else(|never| match never {}), 1);
    }
    assert_eq!(a.l1_hits(), 0);
    assert_eq!(a.cache.stats().total.hits, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_has_no_l1() {
    let cache = Cache::builder().l1_max_bytes(1 << 20).build().unwrap();
    assert!(cache.health().await.l1.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_reach_the_other_l1_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let (a, b) = (
        Reader::new(on_cluster(&cluster)),
        Reader::new(on_cluster(&cluster)),
    );
    a.serving().await;
    let old = b.warm("user:1").await;
    a.cache.invalidate("user:1").await.unwrap();
    b.sees_change("user:1", &old).await;
    let old = b.warm("user:2").await;
    a.cache.invalidate_tag("users").await.unwrap();
    b.sees_change("user:2", &old).await;
    let old = b.warm("user:3").await;
    a.cache.clear().await.unwrap();
    b.sees_change("user:3", &old).await;
}

/// A cache outliving the runtime its backplane started in (a program, or a test suite, that
/// runs several) starts it again in the next one: invalidations still succeed, and L1 serves.
#[test]
fn the_backplane_starts_again_in_a_later_runtime() {
    let server = RedisServer::start();
    let a = Reader::new(on(&server));
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let old = a.warm("user:1").await;
            a.cache
                .invalidate("user:1")
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_ne!(a.read("user:1").await, old);
        });
    }
}

/// Counts how often a value is decoded.
static DECODED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Held by the tests that count decodings, so that they never count each other's.
static COUNTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A value that counts its decodings; `Clone` when `C` is.
#[derive(Debug, PartialEq, serde::Serialize)]
struct Counted<C>(u64, C);

impl<'de, C: serde::Deserialize<'de>> serde::Deserialize<'de> for Counted<C> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DECODED.fetch_add(1, SeqCst);
        let (n, c) = <(u64, C)>::deserialize(d)?;
        Ok(Counted(n, c))
    }
}

impl<C: Clone> Clone for Counted<C> {
    fn clone(&self) -> Self {
        Counted(self.0, self.1.clone())
    }
}

/// Not `Clone`.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Opaque;

#[cachette::cached(key = "cloneable:{id}", ttl = "10m", cache = cache, skip = [cache])]
async fn cloneable(cache: &Cache, id: u64) -> Result<Counted<()>, std::io::Error> {
    Ok(Counted(id, ()))
}

#[cachette::cached(key = "opaque:{id}", ttl = "10m", cache = cache, skip = [cache])]
async fn opaque(cache: &Cache, id: u64) -> Result<Counted<Opaque>, std::io::Error> {
    Ok(Counted(id, Opaque))
}

/// An L1 hit of a value that can be cloned clones the value kept decoded on the first hit,
/// even when the function's error type cannot be cloned; one that cannot be cloned is
/// decoded from the kept bytes on every hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloneable_values_are_decoded_once() {
    let _counting = COUNTING.lock().await;
    let server = RedisServer::start();
    let cache = on(&server);
    Reader::new(cache.clone()).serving().await;
    let l1_hits = || cache.stats().total.l1_hits;
    for (name, id) in [("cloneable", 1u64), ("opaque", 2)] {
        // Until the value is a copy in L1.
        let start = Instant::now();
        loop {
            let before = l1_hits();
            match name {
                "cloneable" => assert_eq!(cloneable(&cache, id).await.unwrap().0, id),
                _ => assert_eq!(opaque(&cache, id).await.unwrap().0, id),
            }
            if l1_hits() > before {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "never in L1");
        }
        let decoded = DECODED.load(SeqCst);
        for _ in 0..100 {
            match name {
                "cloneable" => assert_eq!(cloneable(&cache, id).await.unwrap().0, id),
                _ => assert_eq!(opaque(&cache, id).await.unwrap().0, id),
            }
        }
        let decodings = DECODED.load(SeqCst) - decoded;
        match name {
            "cloneable" => assert_eq!(decodings, 0, "a cloneable value was decoded on L1 hits"),
            _ => assert_eq!(decodings, 100, "each hit decodes the kept bytes"),
        }
    }
}

/// On the in-process store (the L1 of its own process), a hit of a value that can be cloned
/// clones the value the first hit decoded; a value written over it is decoded afresh, and a
/// value that cannot be cloned is decoded on every hit.
#[tokio::test]
async fn memory_store_hits_decode_cloneable_values_once() {
    let _counting = COUNTING.lock().await;
    let cache = Cache::builder().build().unwrap();
    assert_eq!(cloneable(&cache, 7).await.unwrap().0, 7);
    assert_eq!(opaque(&cache, 8).await.unwrap().0, 8);
    // The first hits decode and keep.
    cloneable(&cache, 7).await.unwrap();
    let decoded = DECODED.load(SeqCst);
    for _ in 0..100 {
        assert_eq!(cloneable(&cache, 7).await.unwrap().0, 7);
    }
    assert_eq!(DECODED.load(SeqCst) - decoded, 0, "decoded on memory hits");

    cache
        .set("cloneable:7", &Counted(70, ()), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cloneable(&cache, 7).await.unwrap().0, 70, "the new value");
    assert_eq!(cloneable(&cache, 7).await.unwrap().0, 70);

    let decoded = DECODED.load(SeqCst);
    for _ in 0..100 {
        assert_eq!(opaque(&cache, 8).await.unwrap().0, 8);
    }
    assert_eq!(DECODED.load(SeqCst) - decoded, 100, "each hit decodes");
}
