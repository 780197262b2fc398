//! Invalidation through the runtime API, on the memory store, a real `redis-server` and a
//! Redis Cluster:
//! keys, tags, patterns, `clear`, events, and no resurrection by loads in flight.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cachette::{Cache, CacheError, Invalidation, LoadOptions, escape};
use support::{RedisCluster, RedisServer};
use tokio::sync::oneshot;

struct Fixture {
    cache: Cache,
    server: Option<RedisServer>,
    _cluster: Option<RedisCluster>,
}

impl Fixture {
    /// A fixture of one of the in-process or single-server caches of `support::caches`.
    fn single((cache, server): (Cache, Option<RedisServer>)) -> Fixture {
        Fixture {
            cache,
            server,
            _cluster: None,
        }
    }
}

fn memory() -> Fixture {
    Fixture::single(support::caches::memory())
}

fn redis() -> Fixture {
    Fixture::single(support::caches::redis())
}

/// A Redis Cluster of three masters with a replica each; what only a cluster needs checking is in
/// `tests/cluster.rs`.
fn cluster() -> Fixture {
    let (cache, cluster) = support::caches::cluster();
    Fixture {
        cache,
        server: None,
        _cluster: cluster,
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(super::memory()).await; } )*
        }
        mod redis_server {
            $( #[tokio::test] async fn $name() { super::$name(super::redis()).await; } )*
        }
        mod redis_cluster {
            $( #[tokio::test] async fn $name() { super::$name(super::cluster()).await; } )*
        }
    };
}

on_both!(
    invalidated_key_loads_again,
    invalidated_tag_kills_its_entries_only,
    key_invalidation_beats_a_load_in_flight,
    tag_invalidation_beats_a_load_in_flight,
    pattern_invalidation_beats_a_load_in_flight,
    clear_beats_a_load_in_flight,
    patterns_keep_the_tombstones_of_key_invalidations,
    get_and_exists_respect_tags,
    a_tag_the_entry_lacks_is_not_current,
    patterns_remove_exactly_the_matching_keys,
    clear_stays_inside_the_prefix,
    events_apply_their_rules,
);

fn opts(tags: &[&str]) -> LoadOptions {
    let mut o = LoadOptions::ttl(Duration::from_secs(60));
    for t in tags {
        o = o.tag(*t);
    }
    o
}

/// `get_or_load` of `key` whose loader counts its runs and returns `value`.
async fn load(fx: &Fixture, key: &str, tags: &[&str], runs: &AtomicU32, value: u32) -> u32 {
    fx.cache
        .get_or_load(key, &opts(tags), || async {
            runs.fetch_add(1, SeqCst);
            Ok::<_, std::io::Error>(value)
        })
        .await
        .unwrap()
}

async fn invalidated_key_loads_again(fx: Fixture) {
    let runs = AtomicU32::new(0);
    assert_eq!(load(&fx, "k", &[], &runs, 1).await, 1);
    assert_eq!(load(&fx, "k", &[], &runs, 2).await, 1);
    assert!(
        fx.cache.invalidate("k").await.unwrap(),
        "the key held a value"
    );
    assert!(
        !fx.cache.invalidate("k").await.unwrap(),
        "a tombstone is not a value"
    );
    assert!(!fx.cache.exists("k").await.unwrap());
    assert_eq!(fx.cache.get::<u32>("k").await.unwrap(), None);
    assert_eq!(load(&fx, "k", &[], &runs, 3).await, 3);
    assert_eq!(runs.load(SeqCst), 2);
    assert_eq!(fx.cache.invalidate_many(&["k", "absent"]).await.unwrap(), 1);
}

async fn invalidated_tag_kills_its_entries_only(fx: Fixture) {
    let runs = AtomicU32::new(0);
    load(&fx, "a", &["users", "user:1"], &runs, 1).await;
    load(&fx, "b", &["users", "user:2"], &runs, 2).await;
    load(&fx, "c", &["orders"], &runs, 3).await;
    load(&fx, "d", &[], &runs, 4).await;
    assert_eq!(runs.load(SeqCst), 4);

    fx.cache.invalidate_tag("user:1").await.unwrap();
    assert_eq!(load(&fx, "a", &["users", "user:1"], &runs, 10).await, 10);
    assert_eq!(load(&fx, "b", &["users", "user:2"], &runs, 20).await, 2);
    assert_eq!(runs.load(SeqCst), 5);

    fx.cache.invalidate_tags(&["users"]).await.unwrap();
    assert_eq!(load(&fx, "a", &["users", "user:1"], &runs, 11).await, 11);
    assert_eq!(load(&fx, "b", &["users", "user:2"], &runs, 21).await, 21);
    assert_eq!(load(&fx, "c", &["orders"], &runs, 30).await, 3);
    assert_eq!(load(&fx, "d", &[], &runs, 40).await, 4);
    assert_eq!(runs.load(SeqCst), 7);
}

/// Starts a load of `key` whose loader signals when it has started and then waits for
/// `release`; returns the task and the "started" receiver.
fn blocked_load(
    fx: &Fixture,
    key: &'static str,
    tags: &'static [&'static str],
    value: u32,
) -> (
    tokio::task::JoinHandle<u32>,
    oneshot::Receiver<()>,
    oneshot::Sender<()>,
) {
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let cache = fx.cache.clone();
    let task = tokio::spawn(async move {
        cache
            .get_or_load(key, &opts(tags), || async move {
                let _ = started_tx.send(());
                let _ = release_rx.await;
                Ok::<_, std::io::Error>(value)
            })
            .await
            .unwrap()
    });
    (task, started_rx, release_tx)
}

async fn key_invalidation_beats_a_load_in_flight(fx: Fixture) {
    let runs = AtomicU32::new(0);
    // Both with the key absent and with an old value present when the load starts.
    for preload in [false, true] {
        if preload {
            fx.cache
                .set("race", &0u32, Duration::from_secs(60))
                .await
                .unwrap();
            fx.cache.invalidate("race").await.unwrap();
        }
        let (task, started, release) = blocked_load(&fx, "race", &[], 1);
        started.await.unwrap();
        fx.cache.invalidate("race").await.unwrap();
        release.send(()).unwrap();
        assert_eq!(task.await.unwrap(), 1, "the caller still gets its value");
        assert_eq!(
            fx.cache.get::<u32>("race").await.unwrap(),
            None,
            "but it was not written"
        );
        assert_eq!(
            load(&fx, "race", &[], &runs, 2).await,
            2,
            "the next read loads fresh data"
        );
        fx.cache.invalidate("race").await.unwrap();
    }
}

/// Regression: a load that outlived the tombstone of an invalidation issued during it wrote
/// its older value once the tombstone had expired.
async fn a_load_that_outlives_the_tombstone_writes_nothing(cache: Cache) {
    let fx = Fixture {
        cache,
        server: None,
        _cluster: None,
    };
    let (task, started, release) = blocked_load(&fx, "long", &[], 1);
    started.await.unwrap();
    fx.cache.invalidate("long").await.unwrap();
    // The tombstone lives 100 ms; the load goes on well past it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send(()).unwrap();
    assert_eq!(task.await.unwrap(), 1, "the caller still gets its value");
    assert_eq!(
        fx.cache.get::<u32>("long").await.unwrap(),
        None,
        "but it was not written"
    );
}

#[tokio::test]
async fn a_load_that_outlives_the_tombstone_writes_nothing_in_memory() {
    let cache = Cache::builder()
        .prefix("t")
        .tombstone_ttl(Duration::from_millis(100))
        .build()
        .unwrap();
    a_load_that_outlives_the_tombstone_writes_nothing(cache).await;
}

#[tokio::test]
async fn a_load_that_outlives_the_tombstone_writes_nothing_on_redis() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("t")
        .tombstone_ttl(Duration::from_millis(100))
        .build()
        .unwrap();
    a_load_that_outlives_the_tombstone_writes_nothing(cache).await;
}

/// Regression: a tag's version lived `tag_ttl` from its creation and was never lengthened, so
/// entries written late in its life died with it, all at once: a stampede every `tag_ttl`.
async fn a_tag_version_outlives_the_entries_that_recorded_it(cache: Cache) {
    let fx = Fixture {
        cache,
        server: None,
        _cluster: None,
    };
    let runs = AtomicU32::new(0);
    // The version of `t` is created here and would expire 2 s later.
    assert_eq!(load(&fx, "early", &["t"], &runs, 1).await, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Written 1.2 s into the version's life; kept 2 s (the tag TTL caps it).
    assert_eq!(load(&fx, "late", &["t"], &runs, 2).await, 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // 2.4 s: past the version's first expiry, within the late entry's life.
    assert_eq!(load(&fx, "late", &["t"], &runs, 3).await, 2, "still a hit");
    assert_eq!(runs.load(SeqCst), 2);
}

#[tokio::test]
async fn a_tag_version_outlives_the_entries_that_recorded_it_in_memory() {
    let cache = Cache::builder()
        .prefix("t")
        .tag_ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    a_tag_version_outlives_the_entries_that_recorded_it(cache).await;
}

#[tokio::test]
async fn a_tag_version_outlives_the_entries_that_recorded_it_on_redis() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("t")
        .tag_ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    a_tag_version_outlives_the_entries_that_recorded_it(cache).await;
}

async fn tag_invalidation_beats_a_load_in_flight(fx: Fixture) {
    let runs = AtomicU32::new(0);
    let (task, started, release) = blocked_load(&fx, "tagged", &["t1"], 1);
    started.await.unwrap();
    fx.cache.invalidate_tag("t1").await.unwrap();
    release.send(()).unwrap();
    assert_eq!(task.await.unwrap(), 1);
    assert_eq!(
        load(&fx, "tagged", &["t1"], &runs, 2).await,
        2,
        "the next read loads fresh data"
    );
    assert_eq!(
        load(&fx, "tagged", &["t1"], &runs, 3).await,
        2,
        "and caches it"
    );
    assert_eq!(runs.load(SeqCst), 1);
}

/// Regression: a pattern deletes keys and leaves no tombstone, so a load in flight that had
/// found its key empty wrote its older value after the pattern's deletion.
async fn pattern_invalidation_beats_a_load_in_flight(fx: Fixture) {
    pattern_beats_a_load_in_flight(&fx, "pattern:1", Some("pattern:*")).await;
}

async fn clear_beats_a_load_in_flight(fx: Fixture) {
    pattern_beats_a_load_in_flight(&fx, "cleared:1", None).await;
}

/// A load of `key` (found empty) blocked while `pattern` (or `clear()`) runs: its caller gets
/// its value, and nothing is written.
async fn pattern_beats_a_load_in_flight(fx: &Fixture, key: &'static str, pattern: Option<&str>) {
    let runs = AtomicU32::new(0);
    let (task, started, release) = blocked_load(fx, key, &[], 1);
    started.await.unwrap();
    match pattern {
        Some(pattern) => fx.cache.invalidate_pattern(pattern).await.map(|_| ()),
        None => fx.cache.clear().await.map(|_| ()),
    }
    .unwrap();
    release.send(()).unwrap();
    assert_eq!(task.await.unwrap(), 1, "the caller still gets its value");
    assert_eq!(
        fx.cache.get::<u32>(key).await.unwrap(),
        None,
        "but it was not written"
    );
    assert_eq!(
        load(fx, key, &[], &runs, 2).await,
        2,
        "the next read loads fresh data"
    );
    assert_eq!(load(fx, key, &[], &runs, 3).await, 2, "and caches it");
}

/// Regression: a pattern deleted the tombstone of a key invalidation. A load in flight that had
/// found the key empty before that invalidation, and whose lease the pattern had not seen
/// (taken just after its lease scan passed), then wrote its older value over the emptied key.
async fn patterns_keep_the_tombstones_of_key_invalidations(fx: Fixture) {
    let runs = AtomicU32::new(0);
    assert_eq!(load(&fx, "kept:1", &[], &runs, 1).await, 1);
    assert_eq!(load(&fx, "kept:2", &[], &runs, 2).await, 2);
    fx.cache.invalidate("kept:1").await.unwrap();
    let removed = fx.cache.invalidate_pattern("kept:*").await.unwrap();
    assert_eq!(
        removed, 1,
        "the entry is removed, the tombstone is no entry"
    );
    if let Some(server) = &fx.server {
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg("t:kept:1")
            .query(&mut server.conn())
            .unwrap();
        assert_eq!(
            raw.map(|t| (t.len(), t[0])),
            Some((17, 254)),
            "the tombstone stays"
        );
    }
    assert_eq!(load(&fx, "kept:1", &[], &runs, 3).await, 3);
    assert_eq!(load(&fx, "kept:2", &[], &runs, 4).await, 4);
}

/// Regression: a server that crashed and restarted empty lost the tombstone of an
/// invalidation made during a load, and the load, which had found its key empty, wrote its
/// older value.
#[tokio::test]
async fn a_restart_during_a_load_loses_no_invalidation() {
    let mut server = RedisServer::start();
    let cache = support::caches::on_server(&server, "t");
    let fx = Fixture {
        cache,
        server: None,
        _cluster: None,
    };
    let (task, started, release) = blocked_load(&fx, "restarted", &[], 1);
    started.await.unwrap();
    fx.cache.invalidate("restarted").await.unwrap();
    server.restart();
    // The cache reconnects before the load writes: the write reaches the restarted server.
    let mut attempts = 0;
    while fx.cache.get::<u32>("probe").await.is_err() {
        attempts += 1;
        assert!(attempts < 500, "the cache did not reconnect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    release.send(()).unwrap();
    assert_eq!(task.await.unwrap(), 1, "the caller still gets its value");
    let runs = AtomicU32::new(0);
    assert_eq!(
        load(&fx, "restarted", &[], &runs, 2).await,
        2,
        "the next read loads fresh data"
    );
}

async fn get_and_exists_respect_tags(fx: Fixture) {
    let runs = AtomicU32::new(0);
    load(&fx, "g", &["grp"], &runs, 5).await;
    assert_eq!(fx.cache.get::<u32>("g").await.unwrap(), Some(5));
    assert!(fx.cache.exists("g").await.unwrap());
    assert!(fx.cache.ttl("g").await.unwrap().is_some());
    fx.cache.invalidate_tag("grp").await.unwrap();
    assert_eq!(fx.cache.get::<u32>("g").await.unwrap(), None);
    assert_eq!(fx.cache.get_many::<u32, _>(&["g"]).await.unwrap(), [None]);
    assert!(!fx.cache.exists("g").await.unwrap());
    assert_eq!(fx.cache.ttl("g").await.unwrap(), None);
}

/// An entry written without a tag (by another function on the key, or by the processes of
/// the deploy before the tag was added) is not served to a reader with the tag: an
/// invalidation of the tag would not reach it.
async fn a_tag_the_entry_lacks_is_not_current(fx: Fixture) {
    let runs = AtomicU32::new(0);
    assert_eq!(load(&fx, "t", &[], &runs, 1).await, 1);
    assert_eq!(
        load(&fx, "t", &["grp"], &runs, 2).await,
        2,
        "the untagged entry is a miss for the tagged reader"
    );
    assert_eq!(
        load(&fx, "t", &["grp"], &runs, 3).await,
        2,
        "its own write hits"
    );
    fx.cache.invalidate_tag("grp").await.unwrap();
    assert_eq!(load(&fx, "t", &["grp"], &runs, 4).await, 4);
    assert_eq!(runs.load(SeqCst), 3);
}

async fn patterns_remove_exactly_the_matching_keys(fx: Fixture) {
    let runs = AtomicU32::new(0);
    let ids = [
        "12", "12*", "123", "1?", "[12]", "a\\b", "x:y", "{z}", "sp ace", "nul\0", "é", "*",
    ];
    for id in ids {
        for field in ["profile", "posts"] {
            load(&fx, &format!("user:{}:{field}", escape(id)), &[], &runs, 1).await;
        }
    }
    for victim in ids {
        let removed = fx
            .cache
            .invalidate_pattern(&format!("user:{}:*", escape(victim)))
            .await
            .unwrap();
        assert_eq!(removed, 2, "pattern for {victim:?} removes its two keys");
        for id in ids {
            for field in ["profile", "posts"] {
                let key = format!("user:{}:{field}", escape(id));
                let gone =
                    ids.iter().position(|i| *i == id) <= ids.iter().position(|i| *i == victim);
                assert_eq!(
                    !fx.cache.exists(&key).await.unwrap(),
                    gone,
                    "{key} after removing {victim:?}"
                );
            }
        }
    }
}

async fn clear_stays_inside_the_prefix(fx: Fixture) {
    let runs = AtomicU32::new(0);
    load(&fx, "a", &["tag"], &runs, 1).await;
    load(&fx, "b", &[], &runs, 1).await;
    fx.cache.invalidate_tag("tag").await.unwrap();
    fx.cache.invalidate("b").await.unwrap();
    if let Some(server) = &fx.server {
        let other = support::caches::on_server(server, "other");
        other
            .set("kept", &1u8, Duration::from_secs(60))
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("t")
            .arg("no prefix")
            .query(&mut server.conn())
            .unwrap();
        let removed = fx.cache.clear().await.unwrap();
        assert_eq!(removed, 2, "entry a and the tag version");
        assert_eq!(other.get::<u8>("kept").await.unwrap(), Some(1));
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query(&mut server.conn())
            .unwrap();
        keys.sort();
        // The tombstone of b stays until it expires: a load of b in flight is checked
        // against it.
        assert_eq!(keys, ["other:kept", "t", "t:b"]);
        let bare = Cache::builder().redis(server.url()).build().unwrap();
        assert!(matches!(bare.clear().await, Err(CacheError::NoPrefix)));
    } else {
        assert_eq!(fx.cache.clear().await.unwrap(), 2);
        assert!(!fx.cache.exists("a").await.unwrap());
    }
}

async fn events_apply_their_rules(fx: Fixture) {
    let runs = AtomicU32::new(0);
    load(&fx, "doctor:17", &[], &runs, 1).await;
    load(&fx, "doctors:list", &["doctors"], &runs, 1).await;
    load(&fx, "clinic:3", &[], &runs, 1).await;
    let fired = Arc::new(AtomicU32::new(0));
    let f = fired.clone();
    fx.cache.on("doctor.updated", move |p| {
        f.fetch_add(1, SeqCst);
        Invalidation::tags(["doctors"]).and_keys([format!("doctor:{}", p["id"])])
    });
    let report = fx
        .cache
        .emit("doctor.updated", &serde_json::json!({ "id": 17 }))
        .await
        .unwrap();
    assert_eq!((report.keys, report.tags), (1, 1));
    assert_eq!(fired.load(SeqCst), 1);
    assert!(!fx.cache.exists("doctor:17").await.unwrap());
    assert!(!fx.cache.exists("doctors:list").await.unwrap());
    assert!(fx.cache.exists("clinic:3").await.unwrap());
    let none = fx.cache.emit("nobody.listens", &()).await.unwrap();
    assert_eq!(none, Default::default());
}

/// 100,000 entries under one tag, with short TTLs: once they expire nothing of the tag's
/// bookkeeping is left but its one version key.
#[tokio::test]
async fn tag_bookkeeping_stays_bounded() {
    let fx = redis();
    let cache = fx.cache.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..50u32 {
        let cache = cache.clone();
        tasks.spawn(async move {
            let o = LoadOptions::ttl(Duration::from_secs(2)).tag("bulk");
            for i in 0..2000u32 {
                let key = format!("bulk:{worker}:{i}");
                cache
                    .get_or_load(&key, &o, || async { Ok::<_, std::io::Error>(i) })
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    cache.invalidate_tag("bulk").await.unwrap();
    let mut conn = fx.server.as_ref().unwrap().conn();
    let n: u64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
    assert!(n > 1, "the entries were written");
    // Every entry was written before this point with a TTL of 2 s.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // A full SCAN makes Redis drop the expired keys it passes.
    let mut cursor = 0u64;
    let mut live = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(10_000)
            .query(&mut conn)
            .unwrap();
        live.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(
        live,
        ["t:__cachette:tag:bulk"],
        "only the tag's version key is left"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Ids with glob characters, separators, spaces, NUL and non-ASCII: the pattern built from
    /// one id removes exactly that id's keys, never a neighbour's (`12` against `12*`, `123`).
    #[test]
    fn escaped_patterns_remove_exactly_their_keys(
        victim in "([*?\\[\\]\\\\:{} \\x00é]|[0-9a-z]){0,5}",
        others in proptest::collection::vec("([*?\\[\\]\\\\:{} \\x00é]|[0-9a-z]){0,5}", 1..6),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let cache = Cache::builder().prefix("p").build().unwrap();
            let o = LoadOptions::ttl(Duration::from_secs(60));
            let mut ids = others.clone();
            ids.push(victim.clone());
            ids.push(format!("{victim}1"));
            ids.push(format!("{victim}*"));
            for id in &ids {
                for field in ["a", "b"] {
                    let key = format!("user:{}:{field}", escape(id));
                    let _: Result<u8, std::io::Error> = cache.get_or_load(&key, &o, || async { Ok(1) }).await;
                }
            }
            cache.invalidate_pattern(&format!("user:{}:*", escape(&victim))).await.unwrap();
            for id in &ids {
                for field in ["a", "b"] {
                    let key = format!("user:{}:{field}", escape(id));
                    let gone = !cache.exists(&key).await.unwrap();
                    proptest::prop_assert_eq!(gone, *id == victim, "{:?} after removing {:?}", key, victim);
                }
            }
            Ok(())
        })?;
    }
}

/// A caller that finds the key invalidated while another caller's load is in flight does not
/// take that load's (older) result: it loads again.
async fn a_follower_does_not_take_a_load_older_than_its_invalidation(fx: Fixture) {
    for by_tag in [false, true] {
        let key: &'static str = if by_tag { "follow-t" } else { "follow-k" };
        let (task, started, release) = blocked_load(&fx, key, &["ft"], 1);
        started.await.unwrap();
        if by_tag {
            fx.cache.invalidate_tag("ft").await.unwrap();
        } else {
            fx.cache.invalidate(key).await.unwrap();
        }
        let follower = {
            let cache = fx.cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load(key, &opts(&["ft"]), || async { Ok::<_, std::io::Error>(2) })
                    .await
                    .unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(()).unwrap();
        assert_eq!(task.await.unwrap(), 1);
        assert_eq!(follower.await.unwrap(), 2, "by tag: {by_tag}");
    }
}

mod follower_checks {
    #[tokio::test]
    async fn memory() {
        super::a_follower_does_not_take_a_load_older_than_its_invalidation(super::memory()).await;
    }
    #[tokio::test]
    async fn redis_server() {
        super::a_follower_does_not_take_a_load_older_than_its_invalidation(super::redis()).await;
    }
    #[tokio::test]
    async fn redis_cluster() {
        super::a_follower_does_not_take_a_load_older_than_its_invalidation(super::cluster()).await;
    }
}
