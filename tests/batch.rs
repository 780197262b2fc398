//! Batch loads (`Cache::get_or_load_many`): one read for every key, the loader called once with
//! exactly the missing ids, results in the caller's order, absent ids not cached, per-item
//! tags, one load of a key shared with a single call, loader errors untouched, and a store
//! outage costing only the caching. The shared behaviours run on memory, one `redis-server` and
//! a cluster; the command counts on the test's own servers.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachette::{BatchKey, Cache, LoadOptions};
use support::RedisServer;
use support::caches::{cluster, memory, on_server_with_timeout, redis};

const MINUTE: Duration = Duration::from_secs(60);

/// A model database: the ids it knows, and every call the loader received.
#[derive(Clone, Default)]
struct Db {
    absent: Vec<u64>,
    calls: Arc<Mutex<Vec<Vec<u64>>>>,
}

impl Db {
    fn without(absent: &[u64]) -> Db {
        Db {
            absent: absent.to_vec(),
            ..Db::default()
        }
    }

    fn calls(&self) -> Vec<Vec<u64>> {
        self.calls.lock().unwrap().clone()
    }

    async fn users(&self, cache: &Cache, ids: &[u64]) -> Result<Vec<Option<String>>, String> {
        cache
            .get_or_load_many(ids, &options(), key_of, |missing| {
                let db = self.clone();
                async move {
                    db.calls.lock().unwrap().push(missing.clone());
                    Ok(missing
                        .into_iter()
                        .filter(|id| !db.absent.contains(id))
                        .map(|id| (id, name(id)))
                        .collect::<HashMap<_, _>>())
                }
            })
            .await
    }
}

fn options() -> LoadOptions {
    LoadOptions::ttl(10 * MINUTE).tag("users")
}

fn key_of(id: &u64) -> BatchKey {
    BatchKey::new(format!("user:{id}")).tag(format!("user:{id}"))
}

fn name(id: u64) -> String {
    format!("user {id}")
}

fn names(ids: &[u64]) -> Vec<Option<String>> {
    ids.iter().map(|&id| Some(name(id))).collect()
}

on_both!(
    only_missing_ids_are_loaded_once_in_the_callers_order,
    absent_ids_are_not_cached,
    item_tags_and_keys_invalidate_their_items_only,
    loader_errors_are_returned_untouched_and_not_cached,
    a_batch_and_a_single_call_on_one_key_load_it_once,
    single_calls_read_what_a_batch_wrote,
    ids_of_one_key_are_one_item,
);

/// `key_of` gives ids 1 and 11 one key (as a key that lower-cases e-mail addresses would):
/// they are one item, as single calls of that key would be. The batch used to go round for
/// ever without yielding on the in-process store (each id found the other leading the key's
/// flight), so it runs on a thread of its own that the test stops waiting for after a minute.
async fn ids_of_one_key_are_one_item(cache: Cache) {
    async fn batch(
        cache: &Cache,
        calls: &Mutex<Vec<Vec<u64>>>,
        ids: &[u64],
    ) -> Vec<Option<String>> {
        let key_of = |id: &u64| BatchKey::new(format!("user:{}", id % 10));
        cache
            .get_or_load_many(ids, &options(), key_of, |missing| async move {
                calls.lock().unwrap().push(missing.clone());
                Ok::<_, String>(missing.into_iter().map(|id| (id, name(id))).collect())
            })
            .await
            .unwrap()
    }
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let calls = Mutex::default();
        let got = runtime.block_on(async {
            [
                batch(&cache, &calls, &[1, 11, 2, 11]).await,
                batch(&cache, &calls, &[11, 12, 1]).await,
            ]
        });
        let _ = done.send((got, calls.into_inner().unwrap()));
    });
    let (got, calls) =
        tokio::task::spawn_blocking(move || outcome.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .expect("the batches returned");
    let (one, two) = (Some(name(1)), Some(name(2)));
    assert_eq!(
        got,
        [
            vec![one.clone(), one.clone(), two.clone(), one.clone()],
            vec![one.clone(), two, one]
        ]
    );
    assert_eq!(
        calls,
        [vec![1, 2]],
        "the first id of each key asked, once; the second call all hits"
    );
}

/// Batches judge freshness on the cache's clock, as single calls do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sees_the_test_clock() {
    let clock = cachette::testing::TestClock::new();
    let cache = Cache::builder().clock(&clock).build().unwrap();
    let db = Db::default();
    db.users(&cache, &[1, 2]).await.unwrap();
    clock.advance(4 * MINUTE);
    db.users(&cache, &[1, 2]).await.unwrap();
    assert_eq!(db.calls().len(), 1, "fresh for half its ttl of 10 minutes");
    clock.advance(7 * MINUTE);
    assert_eq!(db.users(&cache, &[1, 2]).await.unwrap(), names(&[1, 2]));
    assert_eq!(
        db.calls(),
        [vec![1, 2], vec![1, 2]],
        "expired: loaded again"
    );
}

async fn only_missing_ids_are_loaded_once_in_the_callers_order(cache: Cache) {
    let db = Db::default();
    assert_eq!(db.users(&cache, &[1, 2]).await.unwrap(), names(&[1, 2]));
    assert_eq!(
        db.users(&cache, &[3, 1, 4, 2, 3]).await.unwrap(),
        names(&[3, 1, 4, 2, 3])
    );
    assert_eq!(
        db.calls(),
        [vec![1, 2], vec![3, 4]],
        "one call, missing ids only, once each"
    );
    assert_eq!(
        db.users(&cache, &[4, 3, 2, 1]).await.unwrap(),
        names(&[4, 3, 2, 1])
    );
    assert_eq!(
        db.calls().len(),
        2,
        "every id cached: the loader is not called"
    );
    let none: Vec<u64> = Vec::new();
    assert_eq!(
        db.users(&cache, &none).await.unwrap(),
        Vec::<Option<String>>::new()
    );
    assert_eq!(db.calls().len(), 2);
}

async fn absent_ids_are_not_cached(cache: Cache) {
    let db = Db::without(&[2]);
    let expected = vec![Some(name(1)), None, Some(name(3))];
    assert_eq!(db.users(&cache, &[1, 2, 3]).await.unwrap(), expected);
    assert_eq!(db.users(&cache, &[1, 2, 3]).await.unwrap(), expected);
    assert_eq!(
        db.calls(),
        [vec![1, 2, 3], vec![2]],
        "the absent id is asked again"
    );
}

async fn item_tags_and_keys_invalidate_their_items_only(cache: Cache) {
    let db = Db::default();
    db.users(&cache, &[1, 2, 3, 4]).await.unwrap();
    cache.invalidate_tag("user:2").await.unwrap();
    cache.invalidate("user:4").await.unwrap();
    assert_eq!(
        db.users(&cache, &[1, 2, 3, 4]).await.unwrap(),
        names(&[1, 2, 3, 4])
    );
    assert_eq!(db.calls(), [vec![1, 2, 3, 4], vec![2, 4]]);
    cache.invalidate_tag("users").await.unwrap();
    db.users(&cache, &[1, 2, 3, 4]).await.unwrap();
    assert_eq!(
        db.calls()[2],
        [1, 2, 3, 4],
        "the options' tag is on every item"
    );
}

async fn loader_errors_are_returned_untouched_and_not_cached(cache: Cache) {
    let failed: Result<Vec<Option<String>>, (u32, &str)> = cache
        .get_or_load_many(&[1u64, 2], &options(), key_of, |_| async {
            Err((503, "down"))
        })
        .await;
    assert_eq!(failed, Err((503, "down")));
    let db = Db::default();
    assert_eq!(db.users(&cache, &[1, 2]).await.unwrap(), names(&[1, 2]));
    assert_eq!(
        db.calls(),
        [vec![1, 2]],
        "nothing was cached by the failed load"
    );
}

/// A single call of key 5 is loading when a batch of 5 and 6 arrives: the batch waits for it
/// and loads 6 only.
async fn a_batch_and_a_single_call_on_one_key_load_it_once(cache: Cache) {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let single_loads = Arc::new(Mutex::new(0));
    let single = {
        let cache = cache.clone();
        let single_loads = single_loads.clone();
        tokio::spawn(async move {
            let r: Result<String, String> = cache
                .get_or_load_owned("user:5", &options().tag("user:5"), move || async move {
                    *single_loads.lock().unwrap() += 1;
                    let _ = started_tx.send(());
                    let _ = release_rx.await;
                    Ok(name(5))
                })
                .await;
            r
        })
    };
    started_rx.await.unwrap();
    let db = Db::default();
    let batch = {
        let (cache, db) = (cache.clone(), db.clone());
        tokio::spawn(async move { db.users(&cache, &[5, 6]).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        db.calls().is_empty(),
        "the batch waits for the load of key 5"
    );
    release_tx.send(()).unwrap();
    assert_eq!(single.await.unwrap().unwrap(), name(5));
    assert_eq!(batch.await.unwrap().unwrap(), names(&[5, 6]));
    assert_eq!(
        db.calls(),
        [vec![6]],
        "key 5 is loaded once, by the single call"
    );
    assert_eq!(*single_loads.lock().unwrap(), 1);
}

async fn single_calls_read_what_a_batch_wrote(cache: Cache) {
    Db::default().users(&cache, &[7, 8]).await.unwrap();
    let hit: Result<String, String> = cache
        .get_or_load("user:8", &options().tag("user:8"), || async {
            Err("not called".to_owned())
        })
        .await;
    assert_eq!(hit.unwrap(), name(8));
    assert_eq!(cache.get::<String>("user:7").await.unwrap(), Some(name(7)));
}

/// How many times `server` ran `command` since its statistics were reset.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

fn reset_stats(server: &RedisServer) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.conn())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reads_every_key_and_tag_version_in_one_mget() {
    let server = RedisServer::start();
    let cache = support::caches::on_server(&server, "t");
    let db = Db::default();
    let ids: Vec<u64> = (0..100).collect();
    db.users(&cache, &ids[..90]).await.unwrap();
    reset_stats(&server);
    assert_eq!(db.users(&cache, &ids).await.unwrap(), names(&ids));
    assert_eq!(db.calls()[1], (90..100).collect::<Vec<_>>());
    // 100 entries + 101 tag versions in one MGET; the ten new tags get a version (SET NX)
    // and are read again (a second MGET), as a single call's first lookup does. (The write
    // scripts' own reads count as GETs in `commandstats`: not asserted here.)
    assert_eq!(calls(&server, "mget"), 2);
    reset_stats(&server);
    assert_eq!(db.users(&cache, &ids).await.unwrap(), names(&ids));
    assert_eq!(calls(&server, "mget"), 1, "a batch of hits is one MGET");
    assert_eq!(calls(&server, "get"), 0);
    assert_eq!(db.calls().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_batch_of_hits_is_one_mget_per_slot_group() {
    let (cache, cluster) = cluster();
    let cluster = cluster.unwrap();
    let db = Db::default();
    let ids: Vec<u64> = (0..100).collect();
    db.users(&cache, &ids).await.unwrap();
    for m in cluster.masters() {
        reset_stats(m);
    }
    assert_eq!(db.users(&cache, &ids).await.unwrap(), names(&ids));
    let gets: u64 = cluster.masters().iter().map(|m| calls(m, "get")).sum();
    let mgets: u64 = cluster.masters().iter().map(|m| calls(m, "mget")).sum();
    assert_eq!(gets, 0, "no key is read on its own");
    assert!(mgets >= 1, "the batch was read with MGET");
    assert_eq!(db.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_runs_the_loader_for_every_id() {
    let mut server = RedisServer::start();
    let cache = on_server_with_timeout(&server, "t", Duration::from_millis(200));
    let db = Db::default();
    db.users(&cache, &[1, 2]).await.unwrap();
    server.stop();
    assert_eq!(
        db.users(&cache, &[1, 2, 3]).await.unwrap(),
        names(&[1, 2, 3])
    );
    assert_eq!(db.calls(), [vec![1, 2], vec![1, 2, 3]]);
}

/// The loader of the macro tests: records the ids it is asked for.
#[derive(Default)]
struct Table {
    calls: Mutex<Vec<Vec<u64>>>,
}

impl Table {
    fn asked(&self, ids: &[u64]) {
        self.calls.lock().unwrap().push(ids.to_vec());
    }
}

#[cachette::cached(
    key = "m:user:{id}",
    batch = "id in ids",
    ttl = "10m",
    tags = ["users", "user:{id}"],
    cache = cache,
    skip = [cache, table]
)]
async fn users_by_id(
    cache: &Cache,
    table: &Table,
    ids: Vec<u64>,
) -> Result<HashMap<u64, String>, String> {
    table.asked(&ids);
    if ids.contains(&99) {
        return Err("id 99 fails".to_owned());
    }
    Ok(ids
        .into_iter()
        .filter(|id| id % 10 != 0)
        .map(|id| (id, name(id)))
        .collect())
}

#[cachette::cached(key = "m:row:{id}", batch = "id in ids", ttl = "10m", cache = cache, skip = [cache, table])]
async fn rows_in_order(cache: &Cache, table: &Table, ids: &[u64]) -> Vec<Option<String>> {
    table.asked(ids);
    ids.iter()
        .map(|&id| (id % 10 != 0).then(|| name(id)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_macro_loads_the_missing_ids_once_and_keys_each_item() {
    let (cache, _server) = redis();
    let table = Table::default();
    let got = users_by_id(&cache, &table, vec![1, 2, 10]).await.unwrap();
    assert_eq!(
        got,
        HashMap::from([(1, name(1)), (2, name(2))]),
        "10 is absent"
    );
    let got = users_by_id(&cache, &table, vec![3, 2, 1, 10])
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(*table.calls.lock().unwrap(), [vec![1, 2, 10], vec![3, 10]]);
    // Each item under its own key, read by the service API too; its tag invalidates it alone.
    assert_eq!(
        cache.get::<String>("m:user:2").await.unwrap(),
        Some(name(2))
    );
    cache.invalidate_tag("user:2").await.unwrap();
    users_by_id(&cache, &table, vec![1, 2, 3]).await.unwrap();
    assert_eq!(table.calls.lock().unwrap()[2], [2]);
    // An error of the body is returned as it is, and caches nothing.
    assert_eq!(
        users_by_id(&cache, &table, vec![4, 99]).await,
        Err("id 99 fails".to_owned())
    );
    users_by_id(&cache, &table, vec![4]).await.unwrap();
    assert_eq!(table.calls.lock().unwrap()[4], [4]);
}

/// An ordered body that returns only the rows it found, as `WHERE id IN (..)` does.
#[cachette::cached(key = "m:found:{id}", batch = "id in ids", ttl = "10m", cache = cache, skip = [cache, table])]
async fn rows_found(cache: &Cache, table: &Table, ids: &[u64]) -> Vec<Option<String>> {
    table.asked(ids);
    ids.iter()
        .filter(|&&id| id % 10 != 0)
        .map(|&id| Some(name(id)))
        .collect()
}

/// A body of the ordered form that returns another number of values than ids cannot be paired
/// with them: nothing is cached or returned, where pairing by position would have served 2's
/// row as 10's and cached it so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_body_with_rows_missing_caches_and_returns_none_of_them() {
    let (cache, _server) = memory();
    let table = Table::default();
    assert_eq!(
        rows_found(&cache, &table, &[1, 10, 2]).await,
        [None, None, None]
    );
    assert_eq!(
        rows_found(&cache, &table, &[1, 2]).await,
        [Some(name(1)), Some(name(2))]
    );
    assert_eq!(
        rows_found(&cache, &table, &[10, 2]).await,
        [None, Some(name(2))]
    );
    assert_eq!(
        *table.calls.lock().unwrap(),
        [vec![1, 10, 2], vec![1, 2], vec![10]],
        "nothing of the first call was cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ordered_form_answers_in_the_callers_order() {
    let (cache, _server) = memory();
    let table = Table::default();
    let expected = vec![Some(name(2)), None, Some(name(1)), Some(name(2))];
    assert_eq!(
        rows_in_order(&cache, &table, &[2, 10, 1, 2]).await,
        expected
    );
    assert_eq!(
        rows_in_order(&cache, &table, &[2, 10, 1, 2]).await,
        expected
    );
    assert_eq!(*table.calls.lock().unwrap(), [vec![2, 10, 1], vec![10]]);
}
