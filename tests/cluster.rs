//! What only a Redis Cluster can break: entries spread over every master, batches and
//! multi-key invalidations split by hash slot, pattern invalidation and `clear()` driven on every
//! master, leases and locks across caches, and a failover under load. The behaviours shared
//! with a single server run on a cluster too, through `on_both!` in the other test files.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cachette::{Cache, LoadOptions, cached};
use support::RedisCluster;

fn cache_on(cluster: &RedisCluster, prefix: &str) -> Cache {
    Cache::builder()
        .redis_cluster(cluster.urls())
        .prefix(prefix)
        .build()
        .unwrap()
}

static BODY_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "user:{id}", ttl = "10m", cache = cache, skip = [cache])]
async fn user(cache: &Cache, id: u32) -> Result<String, String> {
    BODY_RUNS.fetch_add(1, SeqCst);
    Ok(format!("user {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_spread_over_every_master_and_hit() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cache_on(&cluster, "t");
    for id in 0..200 {
        assert_eq!(user(&cache, id).await, Ok(format!("user {id}")));
    }
    let runs = BODY_RUNS.load(SeqCst);
    for id in 0..200 {
        assert_eq!(user(&cache, id).await, Ok(format!("user {id}")));
    }
    assert_eq!(BODY_RUNS.load(SeqCst), runs, "the second round only hit");
    assert_eq!(cluster.keys("t:user:*").len(), 200);
    assert_eq!(cluster.masters_holding("t:user:*"), 3);
    let pttl: i64 = redis::cmd("PTTL")
        .arg("t:user:7")
        .query(&mut cluster.conn())
        .unwrap();
    assert!(pttl > 500_000 && pttl <= 600_000, "PTTL {pttl}");
    assert_eq!(cache.stats().total.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cache_on(&cluster, "t");
    let health = cache.health().await;
    assert!(health.reachable, "{health:?}");
    assert!(health.round_trip.is_some(), "{health:?}");
    assert!(format!("{cache:?}").contains("cluster redis://127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_split_by_slot() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cache_on(&cluster, "t");
    let keys: Vec<String> = (0..100).map(|i| format!("b:{i}")).collect();
    let items: Vec<(String, u32)> = (0..100).map(|i| (format!("b:{i}"), i)).collect();
    cache
        .set_many(&items, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cluster.masters_holding("t:b:*"), 3);
    let mut asked = keys.clone();
    asked.push("b:missing".into());
    let got: Vec<Option<u32>> = cache.get_many(&asked).await.unwrap();
    let mut expected: Vec<Option<u32>> = (0..100).map(Some).collect();
    expected.push(None);
    assert_eq!(got, expected, "values come back in the order asked");
    assert_eq!(cache.delete_many(&keys).await.unwrap(), 100);
    let got: Vec<Option<u32>> = cache.get_many(&keys).await.unwrap();
    assert!(got.iter().all(Option::is_none), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_tag_invalidations_cross_slots() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cache_on(&cluster, "t");
    let runs = AtomicU32::new(0);
    let load = |key: String, tags: Vec<String>| {
        let (cache, runs) = (&cache, &runs);
        async move {
            let mut o = LoadOptions::ttl(Duration::from_secs(60));
            for t in tags {
                o = o.tag(t);
            }
            cache
                .get_or_load(&key, &o, || async {
                    runs.fetch_add(1, SeqCst);
                    Ok::<_, String>(key.len())
                })
                .await
                .unwrap()
        }
    };
    // Entries in many slots, each with two tags in other slots.
    for i in 0..60 {
        let tags = vec![format!("group:{}", i % 3), format!("shard:{}", i % 7)];
        load(format!("e:{i}"), tags).await;
    }
    assert_eq!(runs.load(SeqCst), 60);

    // A multi-key invalidation whose keys live in many slots: every key is tombstoned.
    let keys: Vec<String> = (0..30).map(|i| format!("e:{i}")).collect();
    assert_eq!(cache.invalidate_many(&keys).await.unwrap(), 30);
    for i in 0..30 {
        assert_eq!(cache.get::<usize>(&format!("e:{i}")).await.unwrap(), None);
    }
    // Several tags at once, in several slots: every entry carrying any of them is dead.
    cache
        .invalidate_tags(&["group:0", "group:1"])
        .await
        .unwrap();
    for i in 30..60 {
        let alive = cache
            .get::<usize>(&format!("e:{i}"))
            .await
            .unwrap()
            .is_some();
        assert_eq!(alive, i % 3 == 2, "e:{i}");
    }
    for i in 30..60 {
        let tags = vec![format!("group:{}", i % 3), format!("shard:{}", i % 7)];
        load(format!("e:{i}"), tags).await;
    }
    assert_eq!(
        runs.load(SeqCst),
        60 + 20,
        "only the dead entries loaded again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_and_clear_reach_every_master() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cache_on(&cluster, "t");
    let other = cache_on(&cluster, "other");
    for i in 0..150 {
        cache
            .set(&format!("user:{i}"), &i, Duration::from_secs(60))
            .await
            .unwrap();
        cache
            .set(&format!("order:{i}"), &i, Duration::from_secs(60))
            .await
            .unwrap();
        other
            .set(&format!("user:{i}"), &i, Duration::from_secs(60))
            .await
            .unwrap();
    }
    assert_eq!(cluster.masters_holding("t:user:*"), 3);

    assert_eq!(cache.invalidate_pattern("user:*").await.unwrap(), 150);
    assert!(cluster.keys("t:user:*").is_empty());
    assert_eq!(cluster.keys("t:order:*").len(), 150);
    assert_eq!(
        cluster.keys("other:user:*").len(),
        150,
        "other prefixes untouched"
    );

    assert_eq!(cache.clear().await.unwrap(), 150);
    assert!(cluster.keys("t:*").is_empty());
    assert_eq!(cluster.keys("other:*").len(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_load_across_caches_that_share_the_cluster() {
    // Two caches stand for two processes: separate in-process flights, one cluster.
    let cluster = RedisCluster::start(3, 0);
    let (a, b) = (cache_on(&cluster, "t"), cache_on(&cluster, "t"));
    let runs = Arc::new(AtomicU32::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let cache = if i % 2 == 0 { a.clone() } else { b.clone() };
        let runs = runs.clone();
        tasks.spawn(async move {
            let o = LoadOptions::ttl(Duration::from_secs(60));
            cache
                .get_or_load_owned("cold", &o, move || async move {
                    runs.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, String>(42u32)
                })
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), Ok(42));
    }
    assert_eq!(
        runs.load(SeqCst),
        1,
        "the lease kept the second cache waiting"
    );
}

#[cached(key = "item:{id}", ttl = "10m", cache = cache, skip = [cache])]
async fn item(cache: &Cache, id: u64) -> Result<u64, String> {
    Ok(id * 2)
}

/// The role (`master`/`slave`) a node reports.
fn role(node: &support::RedisServer) -> String {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut node.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("role:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_under_load_surfaces_no_errors() {
    let cluster = RedisCluster::start(3, 1);
    let cache = cache_on(&cluster, "t");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (calls, wrong) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..32u64 {
        let (cache, stop, calls, wrong) =
            (cache.clone(), stop.clone(), calls.clone(), wrong.clone());
        tasks.spawn(async move {
            let mut id = t;
            while !stop.load(SeqCst) {
                id = (id * 31 + 7) % 300;
                match item(&cache, id).await {
                    Ok(v) if v == id * 2 => {}
                    _ => {
                        wrong.fetch_add(1, SeqCst);
                    }
                }
                calls.fetch_add(1, SeqCst);
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The replica of the first master takes over (a coordinated, manual failover).
    let replica = &cluster.nodes()[3];
    assert_eq!(role(replica), "slave");
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut replica.conn())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while role(replica) != "master" || role(&cluster.nodes()[0]) != "slave" {
        assert!(Instant::now() < deadline, "the failover did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = (calls.load(SeqCst), cache.stats().total.hits);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, SeqCst);
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }

    assert_eq!(
        wrong.load(SeqCst),
        0,
        "every call returned its correct value"
    );
    assert!(
        calls.load(SeqCst) > before.0,
        "calls went on after the failover"
    );
    assert!(
        cache.stats().total.hits > before.1,
        "hits went on after the failover: {:?}",
        cache.stats().total
    );
    // The promoted replica serves the slots, and the cache writes to it.
    item(&cache, 1_000).await.unwrap();
    let v: Option<Vec<u8>> = redis::cmd("GET")
        .arg("t:item:1000")
        .query(&mut cluster.conn())
        .unwrap();
    assert!(v.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_does_not_keep_the_cache_off_after_an_outage() {
    let cluster = RedisCluster::start(3, 1);
    let cache = cache_on(&cluster, "t");
    // Keys served by the first master (slots 0-5460), so that its stall fails every call.
    let mut admin = cluster.nodes()[0].conn();
    let ids: Vec<u64> = (0..400u64)
        .filter(|id| {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(format!("t:item:{id}"))
                .query(&mut admin)
                .unwrap();
            slot <= 5460
        })
        .take(20)
        .collect();
    for &id in &ids {
        item(&cache, id).await.unwrap();
    }
    // A replica freezes for good (a host gone dark), then a master stalls long enough to
    // open the breaker, and comes back.
    let replica = &cluster.nodes()[4];
    replica.pause();
    let master = &cluster.nodes()[0];
    master.pause();
    let stalled = Instant::now();
    while Instant::now() - stalled < Duration::from_millis(1500) {
        for &id in &ids {
            assert_eq!(
                item(&cache, id).await,
                Ok(id * 2),
                "answers during the stall"
            );
        }
    }
    assert!(
        cache.health().await.breaker_opened > 0,
        "the stall opened the breaker"
    );
    master.resume();
    let hits = cache.stats().total.hits;
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        for &id in &ids {
            assert_eq!(item(&cache, id).await, Ok(id * 2));
        }
        if cache.stats().total.hits > hits + 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hits did not resume: {:?}",
            cache.health().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replica.resume();
}
