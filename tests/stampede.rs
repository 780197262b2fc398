//! Stampede protection across separate OS processes sharing one `redis-server`.
//!
//! The test binary is its own worker: the parent tests start copies of it that run only
//! `worker` (selected by environment variables), each calling one cold key from 250
//! concurrent tasks, and report on stdout.

mod support;

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachette::{Cache, LoadOptions};
use support::RedisServer;
use support::reply_gate::{Decodes, ReplyGate};

const TASKS: usize = 250;
const LEASE_TTL: Duration = Duration::from_secs(2);
const LEASE_WAIT: Duration = Duration::from_secs(5);
/// The load of the lease holder that is killed: far longer than any wait the lease allows.
const HOLDER_LOAD: Duration = Duration::from_secs(60);

/// The worker: does nothing unless started by a parent test.
#[test]
fn worker() {
    let Ok(url) = std::env::var("CACHETTE_WORKER_REDIS") else {
        return;
    };
    let load_ms: u64 = std::env::var("CACHETTE_WORKER_LOAD_MS")
        .unwrap()
        .parse()
        .unwrap();
    support::workers::runtime().block_on(async move {
        let cache = Cache::builder()
            .redis(url.clone())
            .prefix("s")
            .lease_ttl(LEASE_TTL)
            .lease_wait(LEASE_WAIT)
            .build()
            .unwrap();
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        support::workers::ready_then_wait_for_go(&mut conn).await;
        let o = LoadOptions::ttl(Duration::from_secs(60));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..TASKS {
            let (cache, o, mut conn) = (cache.clone(), o.clone(), conn.clone());
            tasks.spawn(async move {
                let started = Instant::now();
                let value = cache
                    .get_or_load_owned("cold", &o, move || async move {
                        let run: u64 = redis::cmd("INCR")
                            .arg("loader_runs")
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        let _: () = redis::cmd("SET")
                            .arg("loading")
                            .arg(std::process::id())
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        tokio::time::sleep(Duration::from_millis(load_ms)).await;
                        Ok::<String, std::io::Error>(format!("value from load {run}"))
                    })
                    .await;
                (value.unwrap(), started.elapsed())
            });
        }
        let mut values = Vec::new();
        let mut slowest = Duration::ZERO;
        while let Some(r) = tasks.join_next().await {
            let (v, took) = r.unwrap();
            values.push(v);
            slowest = slowest.max(took);
        }
        values.dedup();
        println!(
            "WORKER-RESULT calls={TASKS} values={values:?} slowest_ms={}",
            slowest.as_millis()
        );
    });
}

fn spawn_worker(server: &RedisServer, load_ms: u64) -> Child {
    support::workers::spawn(&[
        ("CACHETTE_WORKER_REDIS", server.url()),
        ("CACHETTE_WORKER_LOAD_MS", load_ms.to_string()),
    ])
}

fn get<T: redis::FromRedisValue>(server: &RedisServer, key: &str) -> T {
    redis::cmd("GET")
        .arg(key)
        .query(&mut server.conn())
        .unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// 4 processes × 250 tasks on one cold key: the loader runs once and all 1000 callers get its
/// value.
#[test]
fn four_processes_one_load() {
    let server = Arc::new(RedisServer::start());
    let workers: Vec<Child> = (0..4).map(|_| spawn_worker(&server, 200)).collect();
    support::workers::go_when_ready(&server, 4);
    for w in workers {
        let line = support::workers::result_of(w, Duration::from_secs(60));
        assert!(line.contains(r#"values=["value from load 1"]"#), "{line}");
    }
    assert_eq!(get::<Option<u32>>(&server, "loader_runs"), Some(1));
}

/// The process holding the lease is killed mid-load: another process loads once the lease
/// expires, and no caller waits for the dead holder's load (60 s) to end.
///
/// The waiters may reach the lease before or after the kill; either way the lease is still
/// held by the dead process until it expires, so both orders must end in one reload.
#[test]
fn a_killed_lease_holder_does_not_hang_the_others() {
    let server = RedisServer::start();
    let _: () = redis::cmd("SET")
        .arg("go")
        .arg(1)
        .query(&mut server.conn())
        .unwrap();
    let mut holder = spawn_worker(&server, HOLDER_LOAD.as_millis() as u64);
    wait_until("the holder loads", || {
        get::<Option<u32>>(&server, "loading") == Some(holder.id())
    });
    let waiters: Vec<Child> = (0..2).map(|_| spawn_worker(&server, 200)).collect();
    wait_until("the waiters are ready", || {
        get::<Option<u32>>(&server, "ready") == Some(3)
    });
    holder.kill().unwrap();
    holder.wait().unwrap();

    for w in waiters {
        let line = support::workers::result_of(w, Duration::from_secs(60));
        assert!(
            line.contains(r#"values=["value from load 2"]"#),
            "one reload after the holder died: {line}"
        );
        // Not a timing: a caller that waited for the dead holder instead of its expired lease
        // would wait past the holder's load, however fast or slow the machine.
        let slowest: u64 = line.rsplit("slowest_ms=").next().unwrap().parse().unwrap();
        assert!(
            Duration::from_millis(slowest) < HOLDER_LOAD / 2,
            "a caller waited {slowest} ms, as if for the dead holder's load: {line}"
        );
    }
    assert_eq!(get::<Option<u32>>(&server, "loader_runs"), Some(2));
}

/// `calls` per command from `INFO commandstats`, for the commands a cache sends.
fn command_counts(server: &RedisServer) -> std::collections::BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .filter(|(name, _)| !matches!(name.as_str(), "info" | "client" | "hello" | "script"))
        .collect()
}

/// A cache with the prefix `m` on `server` that has loaded `key` (7) under `o` (the connection
/// and the script cache warm), with the server's command counts reset after it.
async fn counted(server: &RedisServer, key: &str, o: &LoadOptions) -> Cache {
    let cache = support::caches::on_server(server, "m");
    cache
        .get_or_load(key, o, || async { Ok::<_, String>(7u32) })
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.conn())
        .unwrap();
    cache
}

#[tokio::test]
async fn a_miss_is_three_round_trips_and_leaves_no_lease() {
    let server = RedisServer::start();
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let cache = counted(&server, "warm", &o).await;

    let v = cache
        .get_or_load("cold", &o, || async { Ok::<_, String>(7u32) })
        .await;
    assert_eq!(v, Ok(7));
    let counts = command_counts(&server);
    // The read, the lease, and one script that writes the entry and releases the lease
    // (running GET of the key, GET of the lease, which must still be held to write over an
    // empty key, SET, GET of the lease and DEL inside it).
    assert_eq!(counts.get("get"), Some(&4), "{counts:?}");
    assert_eq!(counts.get("set"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("evalsha"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("del"), Some(&1), "{counts:?}");
    let leases: Vec<String> = redis::cmd("KEYS")
        .arg("m:__cachette:lease:*")
        .query(&mut server.conn())
        .unwrap();
    assert!(leases.is_empty(), "{leases:?}");
}

/// Regression: a leader that was cancelled (an HTTP client that hung up drops the handler's
/// future) left its lease in Redis, and every other process waited for it to expire.
#[tokio::test]
async fn a_cancelled_leader_releases_its_lease() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("c")
        // Far longer than the test waits: only a release, not expiry, removes it in time.
        .lease_ttl(Duration::from_secs(600))
        .build()
        .unwrap();
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let started = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, o, started) = (cache.clone(), o.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("slow", &o, || async move {
                    started.notify_one();
                    std::future::pending::<Result<u32, String>>().await
                })
                .await
        })
    };
    started.notified().await;
    let lease = "c:__cachette:lease:{c:slow}";
    assert_eq!(
        get::<Option<Vec<u8>>>(&server, lease).map(|t| t.len()),
        Some(16)
    );
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    tokio::task::spawn_blocking({
        let url = server.url();
        move || {
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_connection().unwrap();
            wait_until("the cancelled leader's lease is released", || {
                let n: u32 = redis::cmd("EXISTS").arg(lease).query(&mut conn).unwrap();
                n == 0
            });
        }
    })
    .await
    .unwrap();
    // The next caller loads at once.
    let v = cache
        .get_or_load("slow", &o, || async { Ok::<_, String>(1u32) })
        .await;
    assert_eq!(v, Ok(1));
}

/// Counts the loads of one key running at once, and the most seen.
#[derive(Clone, Default)]
struct Loads {
    running: Arc<std::sync::atomic::AtomicU32>,
    most: Arc<std::sync::atomic::AtomicU32>,
}

impl Loads {
    fn start(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
    }

    fn end(&self) {
        self.running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A load that never ends on its own. When its future is dropped (the load is over), it
/// first makes one more call of its key from another thread, `probe`, while it still counts
/// as running: a probe that loads shows two loads side by side.
struct Hanging {
    loads: Loads,
    probe: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Hanging {
    fn drop(&mut self) {
        if let Some(probe) = self.probe.take() {
            std::thread::spawn(probe).join().unwrap();
        }
        self.loads.end();
    }
}

/// One more call of `key` made from another thread with `o`, counted in `loads` if it loads.
fn probe(cache: &Cache, o: &LoadOptions, loads: &Loads) -> Box<dyn FnOnce() + Send> {
    let (cache, o, loads) = (cache.clone(), o.clone(), loads.clone());
    Box::new(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Waiting for the load still in flight, the probe is served the kept value after its
        // timeout; leading a flight of its own, it loads.
        let _ = rt.block_on(cache.get_or_load("k", &o, || async move {
            loads.start();
            loads.end();
            Ok::<u32, String>(3)
        }));
    })
}

/// Options that load even over a fresh value, and serve it when the load takes over `timeout`.
fn forced(timeout: Duration) -> LoadOptions {
    LoadOptions::ttl(Duration::from_secs(60))
        .timeout(timeout)
        .fail_safe(Duration::from_secs(60))
        .force_refresh(true)
}

/// A cache holding 1 under `k`, options that load over it and serve it past 20 ms, and a load
/// that hangs, with the probe of a next load in its drop.
async fn hanging_over_a_value() -> (Cache, LoadOptions, Loads, Hanging) {
    let cache = Cache::builder().build().unwrap();
    let o = forced(Duration::from_millis(20));
    let first = cache
        .get_or_load("k", &o, || async { Ok::<u32, String>(1) })
        .await;
    assert_eq!(first, Ok(1));
    let loads = Loads::default();
    let hanging = Hanging {
        loads: loads.clone(),
        probe: Some(probe(&cache, &o, &loads)),
    };
    (cache, o, loads, hanging)
}

/// Regression: a load that timed out with a value to serve, in a call that refreshes inline
/// (the service API does), handed its key's flight on before it was dropped; a caller in that
/// moment became the next leader and loaded beside it. The flight now ends after the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_inline_load_ends_before_the_next_load_starts() {
    let (cache, o, loads, hanging) = hanging_over_a_value().await;
    let got = cache
        .get_or_load("k", &o, || async move {
            let hanging = hanging;
            hanging.loads.start();
            std::future::pending::<Result<u32, String>>().await
        })
        .await;
    assert_eq!(
        got,
        Ok(1),
        "past its timeout, the call serves the kept value"
    );
    assert_eq!(
        loads.most.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "two loads of one key ran at once"
    );
}

/// A leader whose caller hangs up drops its load before it gives up its key's flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_load_ends_before_the_next_load_starts() {
    let (cache, _, loads, hanging) = hanging_over_a_value().await;
    let started = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, started) = (cache.clone(), started.clone());
        tokio::spawn(async move {
            // The caller's own timeout is far away: only the cancellation ends this load.
            let o = forced(Duration::from_secs(600));
            cache
                .get_or_load("k", &o, || async move {
                    let hanging = hanging;
                    hanging.loads.start();
                    started.notify_one();
                    std::future::pending::<Result<u32, String>>().await
                })
                .await
        })
    };
    started.notified().await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    assert_eq!(
        loads.most.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "two loads of one key ran at once"
    );
}

/// Waits until `cache` has counted `n` callers waiting for another's load.
async fn until_waiting(cache: &Cache, n: u64) {
    while cache.stats().total.waited < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The commands of a single miss (the read, the lease, the write script's `GET`s), plus one
/// shared read: what a stampede on a cold key in one process sends.
fn assert_a_miss_and_one_shared_read(server: &RedisServer) {
    let counts = command_counts(server);
    assert_eq!(counts.get("get"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("set"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("evalsha"), Some(&1), "{counts:?}");
}

/// A stampede on a cold key in one process sends two reads, not one per caller: the leader's,
/// and one shared by every caller that arrived while it loaded (sent after its load ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stampede_sends_two_reads_one_lease_and_one_write() {
    let server = RedisServer::start();
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let cache = counted(&server, "warm", &o).await;

    let (started, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let loads = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let call = |first: bool| {
        let (cache, o, started, release, loads) = (
            cache.clone(),
            o.clone(),
            started.clone(),
            release.clone(),
            loads.clone(),
        );
        tokio::spawn(async move {
            cache
                .get_or_load("cold", &o, || async move {
                    loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if first {
                        started.notify_one();
                        release.notified().await;
                    }
                    Ok::<_, String>(7u32)
                })
                .await
        })
    };
    let leader = call(true);
    started.notified().await;
    let callers: Vec<_> = (0..999).map(|_| call(false)).collect();
    until_waiting(&cache, 999).await;
    release.notify_one();
    assert_eq!(leader.await.unwrap(), Ok(7));
    for c in callers {
        assert_eq!(c.await.unwrap(), Ok(7));
    }
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_a_miss_and_one_shared_read(&server);
}

/// A thousand callers started at once on a cold key, most of them before the first caller's
/// read has returned: still two reads. The callers that arrived during the first read wait for
/// it and for its caller to join the key's flight, then wait for the flight with the rest and
/// share the one read after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_started_at_once_send_two_reads() {
    let server = RedisServer::start();
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let cache = counted(&server, "warm", &o).await;
    let (release, gate) = tokio::sync::watch::channel(false);
    let loads = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, o, gate, loads) = (cache.clone(), o.clone(), gate.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("cold", &o, || async move {
                        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let _ = gate.clone().wait_for(|open| *open).await;
                        Ok::<_, String>(7u32)
                    })
                    .await
            })
        })
        .collect();
    until_waiting(&cache, 999).await;
    release.send_replace(true);
    for c in callers {
        assert_eq!(c.await.unwrap(), Ok(7));
    }
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_a_miss_and_one_shared_read(&server);
}

/// A process waiting for another's lease polls for its value; when the holder writes it and
/// releases the lease between a poll and the waiter's next attempt at the lease, the waiter
/// takes the lease, but reads once more before loading: one load in all, not two. The reply to
/// the waiter's poll is held back (the server answered it before the write) until the holder
/// has written and released.
#[tokio::test]
async fn a_waiter_that_takes_a_released_lease_reads_before_loading() {
    use std::sync::atomic::Ordering::SeqCst;
    let server = RedisServer::start();
    let gate = ReplyGate::start(&server).await;
    let build = |url: String| {
        Cache::builder()
            .redis(url)
            .prefix("w")
            .lease_ttl(Duration::from_secs(30))
            .lease_wait(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let (holder, waiter) = (build(server.url()), build(gate.url.clone()));
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let loading = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Notify::new());
    let held_load = {
        let (holder, o, loading, finish) =
            (holder.clone(), o.clone(), loading.clone(), finish.clone());
        tokio::spawn(async move {
            holder
                .get_or_load("k", &o, || async move {
                    loading.notify_one();
                    finish.notified().await;
                    Ok::<_, String>("from the holder".to_owned())
                })
                .await
        })
    };
    loading.notified().await;
    let waiter_loads = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let waited = {
        let (waiter, o, loads) = (waiter.clone(), o.clone(), waiter_loads.clone());
        tokio::spawn(async move {
            waiter
                .get_or_load("k", &o, || async move {
                    loads.fetch_add(1, SeqCst);
                    Ok::<_, String>("from the waiter".to_owned())
                })
                .await
        })
    };
    // The waiter found the lease taken and polls; hold back the reply to its next poll.
    while waiter.stats().total.waited == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    gate.hold.send_replace(true);
    gate.until_held().await;
    finish.notify_one();
    assert_eq!(held_load.await.unwrap(), Ok("from the holder".to_owned()));
    gate.hold.send_replace(false);
    assert_eq!(waited.await.unwrap(), Ok("from the holder".to_owned()));
    assert_eq!(
        waiter_loads.load(SeqCst),
        0,
        "the waiter loaded the key again"
    );
}

#[cachette::cached(key = "decodes:{id}", ttl = "10m", cache = cache, skip = [cache])]
async fn decodes(cache: &Cache, id: u64) -> Result<Decodes, std::io::Error> {
    Ok(Decodes(id))
}

/// The callers that share a read share the value it found, decoded once: twenty callers that
/// arrive while a read of their key is in flight send one read after it, and decode its value
/// once between them (a value that can be cloned; each takes a clone). Protected values are
/// the exception (`patient_macro::callers_sharing_a_read_of_protected_data_each_decode_it`).
#[tokio::test]
async fn callers_sharing_a_read_decode_its_value_once() {
    let server = RedisServer::start();
    let gate = ReplyGate::start(&server).await;
    let cache = gate.cache(Cache::builder().prefix("d"));
    let decoded = gate
        .decodings_behind_a_held_read(&cache, |cache| async move { decodes(&cache, 7).await })
        .await;
    assert_eq!(
        decoded, 2,
        "the first caller's read decoded once, and the shared read once"
    );
}

/// A read sent before an invalidation completed answers no caller that arrived after it: with
/// the reply to a first caller's read held back (the server answered before the invalidation),
/// a caller arriving after the invalidation waits for that read and sends its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_after_an_invalidation_does_not_share_a_read_sent_before_it() {
    use std::sync::atomic::Ordering::SeqCst;
    let server = RedisServer::start();
    let gate = ReplyGate::start(&server).await;
    let behind = gate.cache(Cache::builder().prefix("m"));
    let other = support::caches::on_server(&server, "m");
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let version = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let get = |cache: &Cache| {
        let (cache, o, version) = (cache.clone(), o.clone(), version.clone());
        tokio::spawn(async move {
            cache
                .get_or_load(
                    "k",
                    &o,
                    || async move { Ok::<_, String>(version.load(SeqCst)) },
                )
                .await
        })
    };
    assert_eq!(get(&behind).await.unwrap(), Ok(1));

    gate.hold.send_replace(true);
    let first = get(&behind);
    gate.until_held().await;
    version.store(2, SeqCst);
    other.invalidate("k").await.unwrap();
    let after = get(&behind);
    // Time for `after` to reach its read (sharing the one held back, were that allowed). A slow
    // machine can only make this test miss such a bug, never fail without one.
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.hold.send_replace(false);
    assert_eq!(
        first.await.unwrap(),
        Ok(1),
        "the held read was answered before the invalidation"
    );
    assert_eq!(
        after.await.unwrap(),
        Ok(2),
        "a caller after an invalidation was served a read sent before it"
    );
}

/// Concurrent hits of one key share reads: fewer reads than callers, and every caller is served
/// the value. (That a shared read was sent after its callers arrived is the test above and
/// `read_group::tests`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_hits_of_one_key_share_reads() {
    let server = RedisServer::start();
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let cache = counted(&server, "hot", &o).await;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (cache, o) = (cache.clone(), o.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    let v = cache
                        .get_or_load("hot", &o, || async { Err::<u32, _>("no load".to_owned()) })
                        .await;
                    assert_eq!(v, Ok(7));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let gets = command_counts(&server).get("get").copied().unwrap_or(0);
    assert!(gets < 64 * 50, "{gets} reads for {} hits", 64 * 50);
    assert_eq!(cache.stats().total.hits, 64 * 50);
}

/// A caller that arrives after an invalidation, while a load that began before it runs, is not
/// served that load's value: the read it shares is sent after the load, and sees the
/// invalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_after_an_invalidation_does_not_share_the_older_load() {
    let server = RedisServer::start();
    let cache = support::caches::on_server(&server, "m");
    let o = LoadOptions::ttl(Duration::from_secs(60)).tag("rows");
    let version = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let (started, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let leader = {
        let (cache, o, version, started, release) = (
            cache.clone(),
            o.clone(),
            version.clone(),
            started.clone(),
            release.clone(),
        );
        tokio::spawn(async move {
            cache
                .get_or_load("cold", &o, || async move {
                    let v = version.load(std::sync::atomic::Ordering::SeqCst);
                    started.notify_one();
                    release.notified().await;
                    Ok::<_, String>(v)
                })
                .await
        })
    };
    started.notified().await;
    version.store(2, std::sync::atomic::Ordering::SeqCst);
    cache.invalidate_tag("rows").await.unwrap();
    let after = {
        let (cache, o, version) = (cache.clone(), o.clone(), version.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("cold", &o, || async move {
                    Ok::<_, String>(version.load(std::sync::atomic::Ordering::SeqCst))
                })
                .await
        })
    };
    until_waiting(&cache, 1).await;
    release.notify_one();
    assert_eq!(leader.await.unwrap(), Ok(1), "the leader began before");
    assert_eq!(
        after.await.unwrap(),
        Ok(2),
        "the caller after the invalidation"
    );
}

/// A hit of a tagged entry is one command: `MGET` of the entry and its tags' versions.
#[tokio::test]
async fn a_tagged_hit_is_one_mget() {
    let server = RedisServer::start();
    let o = LoadOptions::ttl(Duration::from_secs(60))
        .tag("orders")
        .tag("order:7");
    let cache = counted(&server, "tagged", &o).await;
    for _ in 0..100 {
        let v = cache
            .get_or_load("tagged", &o, || async { Ok::<_, String>(0u32) })
            .await;
        assert_eq!(v, Ok(7));
    }
    let counts = command_counts(&server);
    assert_eq!(counts.get("mget"), Some(&100), "{counts:?}");
    assert_eq!(counts.len(), 2, "MGET and CONFIG only: {counts:?}");
}
