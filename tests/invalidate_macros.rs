//! `#[invalidate]` and `#[cache_put]` end to end with `#[cached]`, on the memory store and on a
//! real `redis-server`; and `#[cached]` functions that own their arguments, refreshed in the
//! background.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cachette::{Cache, cache_put, cached, invalidate};
use serde::{Deserialize, Serialize};
use support::caches::{cluster, memory, redis};

on_both!(
    invalidate_by_key_then_loads_again,
    invalidate_by_tag_and_pattern,
    failed_writes_invalidate_nothing,
    before_invalidates_ahead_of_the_body,
    cache_put_replaces_the_cached_value,
    pattern_arguments_are_escaped,
    a_caller_after_an_invalidation_never_gets_an_older_uncached_outcome,
    a_pattern_or_a_clear_during_a_write_through_wins,
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: String,
    name: String,
}

struct Db {
    cache: Cache,
    loads: AtomicU32,
    name: std::sync::Mutex<String>,
}

impl Db {
    fn new(cache: Cache) -> Db {
        Db {
            cache,
            loads: AtomicU32::new(0),
            name: std::sync::Mutex::new("Ada".into()),
        }
    }

    #[cached(key = "user:{id}", ttl = "5m", tags = ["users", "user:{id}"], cache = self.cache)]
    async fn user(&self, id: &str) -> Result<User, String> {
        self.loads.fetch_add(1, SeqCst);
        Ok(User {
            id: id.to_owned(),
            name: self.name.lock().unwrap().clone(),
        })
    }

    #[cached(key = "user:{id}:posts", ttl = "5m", cache = self.cache)]
    async fn posts(&self, id: &str) -> Vec<String> {
        self.loads.fetch_add(1, SeqCst);
        vec![format!("post of {id}")]
    }

    #[invalidate(keys = ["user:{id}"], cache = self.cache)]
    async fn rename(&self, id: &str, name: &str) -> Result<(), String> {
        if name.is_empty() {
            return Err("empty name".into());
        }
        *self.name.lock().unwrap() = name.to_owned();
        let _ = id;
        Ok(())
    }

    #[invalidate(tags = ["users"], cache = self.cache)]
    async fn rename_everyone(&self, name: &str) {
        *self.name.lock().unwrap() = name.to_owned();
    }

    #[invalidate(patterns = ["user:{id}:*"], cache = self.cache)]
    async fn drop_related(&self, id: &str) -> Result<u8, String> {
        let _ = id;
        Ok(0)
    }

    #[invalidate(tags = ["user:{id}"], before = true, cache = self.cache)]
    async fn rename_checking(&self, id: &str, name: &str) -> Result<Option<User>, String> {
        // With `before`, the entry is gone while the body runs.
        let seen = self
            .cache
            .get::<User>(&format!("user:{id}"))
            .await
            .map_err(|e| e.to_string())?;
        *self.name.lock().unwrap() = name.to_owned();
        Ok(seen)
    }

    #[cache_put(key = "user:{id}", ttl = "5m", tags = ["users", "user:{id}"], cache = self.cache)]
    async fn save(&self, id: &str, name: &str) -> Result<User, String> {
        *self.name.lock().unwrap() = name.to_owned();
        Ok(User {
            id: id.to_owned(),
            name: name.to_owned(),
        })
    }
}

async fn invalidate_by_key_then_loads_again(cache: Cache) {
    let db = Db::new(cache);
    assert_eq!(db.user("1").await.unwrap().name, "Ada");
    assert_eq!(db.user("1").await.unwrap().name, "Ada");
    assert_eq!(db.loads.load(SeqCst), 1);
    db.rename("1", "Grace").await.unwrap();
    assert_eq!(
        db.user("1").await.unwrap().name,
        "Grace",
        "cached → invalidated → loads again"
    );
    assert_eq!(db.loads.load(SeqCst), 2);
}

async fn invalidate_by_tag_and_pattern(cache: Cache) {
    let db = Db::new(cache);
    db.user("1").await.unwrap();
    db.user("2").await.unwrap();
    db.posts("1").await;
    db.posts("12").await;
    assert_eq!(db.loads.load(SeqCst), 4);
    db.rename_everyone("Linus").await;
    assert_eq!(db.user("1").await.unwrap().name, "Linus");
    assert_eq!(db.user("2").await.unwrap().name, "Linus");
    assert_eq!(db.loads.load(SeqCst), 6);
    db.drop_related("1").await.unwrap();
    db.posts("1").await;
    db.posts("12").await;
    assert_eq!(
        db.loads.load(SeqCst),
        7,
        "user:1:* removed user 1's posts only, not user 12's"
    );
}

async fn failed_writes_invalidate_nothing(cache: Cache) {
    let db = Db::new(cache);
    db.user("1").await.unwrap();
    assert_eq!(db.rename("1", "").await, Err("empty name".to_string()));
    db.user("1").await.unwrap();
    assert_eq!(db.loads.load(SeqCst), 1);
}

async fn before_invalidates_ahead_of_the_body(cache: Cache) {
    let db = Db::new(cache);
    db.user("1").await.unwrap();
    assert_eq!(db.rename_checking("1", "Barbara").await.unwrap(), None);
    assert_eq!(db.user("1").await.unwrap().name, "Barbara");
}

async fn cache_put_replaces_the_cached_value(cache: Cache) {
    let db = Db::new(cache);
    assert_eq!(db.user("1").await.unwrap().name, "Ada");
    let saved = db.save("1", "Edsger").await.unwrap();
    assert_eq!(saved.name, "Edsger");
    assert_eq!(
        db.user("1").await.unwrap().name,
        "Edsger",
        "served from the cache, as written through"
    );
    assert_eq!(db.loads.load(SeqCst), 1);
    assert!(
        cachette::duplicate_templates()
            .iter()
            .all(|g| g.iter().all(|s| s.name != "save"))
    );
}

async fn pattern_arguments_are_escaped(cache: Cache) {
    let db = Db::new(cache);
    for id in ["*", "1", "a?b"] {
        db.posts(id).await;
    }
    db.drop_related("*").await.unwrap();
    for id in ["*", "1", "a?b"] {
        db.posts(id).await;
    }
    assert_eq!(
        db.loads.load(SeqCst),
        4,
        "`*` as an id matched only its own key"
    );
}

static COUNT: AtomicU32 = AtomicU32::new(0);

/// Owns its arguments: stale values are refreshed in the background.
#[cached(key = "owned:{id}", ttl = "1m", stale = "100ms", cache = cache, skip = [cache])]
async fn owned(cache: Cache, id: u64) -> Result<u32, String> {
    let _ = id;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(COUNT.fetch_add(1, SeqCst) + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_arguments_refresh_in_the_background() {
    let (cache, _server) = redis();
    assert_eq!(owned(cache.clone(), 1).await, Ok(1));
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Had either waited for the load, it would have its result, 2.
    let (a, b) = tokio::join!(owned(cache.clone(), 1), owned(cache.clone(), 1));
    assert_eq!(
        (a, b),
        (Ok(1), Ok(1)),
        "both served the stale value at once"
    );
    for _ in 0..100 {
        if cache.get::<u32>("owned:1").await.unwrap() == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.get::<u32>("owned:1").await.unwrap(), Some(2));
    assert_eq!(COUNT.load(SeqCst), 2, "one background refresh");
}

#[derive(Debug, Clone, PartialEq)]
struct NotFound;

static SHARED_LOADS: AtomicU32 = AtomicU32::new(0);

/// Concurrent callers share one load; its error too, since the error can be cloned.
#[cached(key = "missing:{id}", cache = cache, skip = [cache])]
async fn missing(cache: Cache, id: u64) -> Result<u32, NotFound> {
    let _ = id;
    SHARED_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(NotFound)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_an_error() {
    let (cache, _server) = memory();
    let calls = (0..20).map(|_| missing(cache.clone(), 9));
    let results = futures_join_all(calls).await;
    assert!(results.iter().all(|r| *r == Err(NotFound)));
    assert_eq!(
        SHARED_LOADS.load(SeqCst),
        1,
        "one load; its error went to all 20 callers"
    );
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

struct Orders {
    cache: Cache,
    loads: AtomicU32,
}

impl Orders {
    #[cached(key = "order:{id}", version = 3, cache = self.cache)]
    async fn order(&self, id: u64) -> u32 {
        self.loads.fetch_add(1, SeqCst) + 1
    }

    #[invalidate(keys = ["order:{id}"], version = 3, cache = self.cache)]
    async fn cancel(&self, id: u64) {
        let _ = id;
    }
}

#[tokio::test]
async fn invalidate_matches_versioned_keys() {
    let (cache, _s) = redis();
    let o = Orders {
        cache,
        loads: AtomicU32::new(0),
    };
    assert_eq!(o.order(1).await, 1);
    assert_eq!(o.order(1).await, 1);
    o.cancel(1).await;
    assert_eq!(
        o.order(1).await,
        2,
        "the versioned key `order:1:v3` was invalidated"
    );
}

struct Pg {
    cache: Cache,
}
struct Mem {
    cache: Cache,
}

trait Repo {
    async fn find(&self, id: u64) -> String;
}

impl Repo for Pg {
    #[cached(cache = self.cache)]
    async fn find(&self, id: u64) -> String {
        format!("pg {id}")
    }
}

impl Repo for Mem {
    #[cached(cache = self.cache)]
    async fn find(&self, id: u64) -> String {
        format!("mem {id}")
    }
}

#[tokio::test]
async fn default_keys_of_methods_include_the_receivers_type() {
    let (cache, _s) = memory();
    let (pg, mem) = (
        Pg {
            cache: cache.clone(),
        },
        Mem { cache },
    );
    assert_eq!(pg.find(1).await, "pg 1");
    assert_eq!(
        mem.find(1).await,
        "mem 1",
        "not the other implementation's cached value"
    );
}

#[cache_put(key = "doc:{id}", cache = cache)]
async fn save_doc(
    cache: &Cache,
    gate: tokio::sync::oneshot::Receiver<()>,
    id: u64,
) -> Result<String, String> {
    let _ = gate.await;
    Ok(format!("saved {id}"))
}

#[tokio::test]
async fn an_invalidation_during_a_write_through_wins() {
    let (cache, _s) = redis();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let put = {
        let cache = cache.clone();
        tokio::spawn(async move { save_doc(&cache, rx, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.invalidate("doc:1").await.unwrap();
    tx.send(()).unwrap();
    assert_eq!(put.await.unwrap().unwrap(), "saved 1");
    assert_eq!(
        cache.get::<String>("doc:1").await.unwrap(),
        None,
        "the later invalidation stands"
    );
}

#[cache_put(key = "note:{id}", cache = cache)]
async fn save_note(
    cache: &Cache,
    started: tokio::sync::oneshot::Sender<()>,
    gate: tokio::sync::oneshot::Receiver<()>,
    id: u64,
) -> Result<String, String> {
    let _ = started.send(());
    let _ = gate.await;
    Ok(format!("saved {id}"))
}

/// A write-through whose key a pattern or a `clear()` emptied after it read it does not write:
/// the invalidation returned after the write-through began, and it stands (the write used to
/// land on the emptied key).
async fn a_pattern_or_a_clear_during_a_write_through_wins(cache: Cache) {
    for clear in [false, true] {
        let minute = Duration::from_secs(60);
        cache
            .set("note:1", &"old".to_owned(), minute)
            .await
            .unwrap();
        let (started, body_started) = tokio::sync::oneshot::channel();
        let (release, gate) = tokio::sync::oneshot::channel();
        let put = {
            let cache = cache.clone();
            tokio::spawn(async move { save_note(&cache, started, gate, 1).await })
        };
        body_started.await.unwrap();
        if clear {
            cache.clear().await.unwrap();
        } else {
            cache.invalidate_pattern("note:*").await.unwrap();
        }
        release.send(()).unwrap();
        assert_eq!(put.await.unwrap().unwrap(), "saved 1");
        assert_eq!(
            cache.get::<String>("note:1").await.unwrap(),
            None,
            "the invalidation stands (clear: {clear})"
        );
    }
}

/// The first load blocks until released and fails; later loads succeed.
struct Gate {
    calls: AtomicU32,
    started: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[cached(key = "gated:{id}", cache = cache, skip = [cache, gate])]
async fn gated(cache: &Cache, gate: &Gate, id: u32) -> Result<u32, String> {
    if gate.calls.fetch_add(1, SeqCst) == 0 {
        gate.started.notify_one();
        gate.release.notified().await;
        return Err(format!("loaded before the invalidation of {id}"));
    }
    Ok(2)
}

/// Regression: a caller that arrived after an invalidation had completed could be handed the
/// outcome of a load that began before it, when that outcome is not cached (an `Err`, a
/// `None`, an oversized value): followers checked only entries against what they read.
async fn a_caller_after_an_invalidation_never_gets_an_older_uncached_outcome(cache: Cache) {
    let gate = Gate {
        calls: AtomicU32::new(0),
        started: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    };
    let leader = gated(&cache, &gate, 1);
    let later = async {
        gate.started.notified().await;
        cache.invalidate("gated:1").await.unwrap();
        // Arrives after the invalidation completed, while the first load is still running.
        let follower = gated(&cache, &gate, 1);
        let release = async {
            while cache.stats().total.waited == 0 {
                tokio::task::yield_now().await;
            }
            gate.release.notify_one();
        };
        tokio::join!(follower, release).0
    };
    let (first, second) = tokio::join!(leader, later);
    assert_eq!(first, Err("loaded before the invalidation of 1".to_owned()));
    assert_eq!(second, Ok(2), "the later caller loads for itself");
}
