//! Faults against real `redis-server` processes: killed, frozen, full. The cache must never be
//! the reason a call fails, must bound what an outage costs, must come back by itself, and must
//! not forget an invalidation issued while Redis was away.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cachette::{BreakerState, Cache, LoadOptions};
use support::RedisServer;

const TIMEOUT: Duration = Duration::from_millis(100);

fn cache(server: &RedisServer) -> Cache {
    Cache::builder()
        .redis(server.url())
        .prefix("f")
        .command_timeout(TIMEOUT)
        .connection_timeout(TIMEOUT)
        .circuit_breaker(5, Duration::from_millis(500))
        .build()
        .unwrap()
}

async fn value(cache: &Cache, id: u32) -> Result<u32, std::io::Error> {
    let o = LoadOptions::ttl(Duration::from_secs(60));
    cache
        .get_or_load(&format!("v:{id}"), &o, || async move { Ok(id * 7) })
        .await
}

/// Polls `cond` for up to `limit`; a bound on recovery, not a timing measurement.
async fn eventually(limit: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_under_load_fails_no_call_and_hits_resume_after_restart() {
    let mut server = RedisServer::start();
    let cache = cache(&server);
    let wrong = Arc::new(AtomicU32::new(0));
    let calls = Arc::new(AtomicU32::new(0));
    let stop = Instant::now() + Duration::from_millis(1500);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..200u32 {
        let (cache, wrong, calls) = (cache.clone(), wrong.clone(), calls.clone());
        tasks.spawn(async move {
            let mut i = 0;
            while Instant::now() < stop {
                let id = (t * 31 + i) % 50;
                match value(&cache, id).await {
                    Ok(v) if v == id * 7 => {}
                    _ => {
                        wrong.fetch_add(1, SeqCst);
                    }
                }
                calls.fetch_add(1, SeqCst);
                i += 1;
                tokio::task::yield_now().await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.stop();
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.restart();
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    assert_eq!(
        wrong.load(SeqCst),
        0,
        "every one of {} calls returned its correct value",
        calls.load(SeqCst)
    );
    assert!(cache.stats().total.errors > 0, "the outage was seen");

    // Hits resume within 5 s of the restart, without restarting anything.
    let before = cache.stats().total.hits;
    let resumed = eventually(Duration::from_secs(5), async || {
        value(&cache, 1).await.unwrap();
        cache.stats().total.hits > before
    })
    .await;
    assert!(resumed, "hits resumed: {:?}", cache.health().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_costs_a_timeout_then_the_breaker_opens_and_closes() {
    let server = RedisServer::start();
    let cache = cache(&server);
    assert_eq!(value(&cache, 1).await.unwrap(), 7);
    server.pause();
    let mut slowest = Duration::ZERO;
    for id in 0..20 {
        let started = Instant::now();
        assert_eq!(value(&cache, id).await.unwrap(), id * 7);
        slowest = slowest.max(started.elapsed());
    }
    // A read and nothing else: no call waits much longer than one command timeout.
    assert!(
        slowest < TIMEOUT * 5,
        "a call took {slowest:?} with a {TIMEOUT:?} timeout"
    );
    let h = cache.health().await;
    assert_eq!(h.breaker, BreakerState::Open, "{h:?}");
    assert!(!h.reachable && h.timeouts >= 5, "{h:?}");
    server.resume();
    let closed = eventually(Duration::from_secs(5), async || {
        cache.health().await.breaker == BreakerState::Closed
    })
    .await;
    assert!(closed, "{:?}", cache.health().await);
    assert!(cache.health().await.recoveries >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_during_an_outage_is_applied_when_redis_is_back() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let loads = AtomicU32::new(0);
    let o = LoadOptions::ttl(Duration::from_secs(60)).tag("t");
    let load = |v: u32| {
        let loads = &loads;
        move || async move {
            loads.fetch_add(1, SeqCst);
            Ok::<u32, std::io::Error>(v)
        }
    };
    assert_eq!(cache.get_or_load("k", &o, load(1)).await.unwrap(), 1);
    assert_eq!(cache.get_or_load("tagged", &o, load(1)).await.unwrap(), 1);
    server.pause();
    assert!(cache.invalidate("k").await.is_err(), "not applied yet");
    assert!(cache.invalidate_tag("t").await.is_err());
    assert_eq!(cache.health().await.pending_invalidations, 2);
    // Calls made while the backlog waits run uncached, and are counted as such.
    let before = cache.stats().total;
    assert_eq!(cache.get_or_load("k", &o, load(3)).await.unwrap(), 3);
    let after = cache.stats().total;
    assert_eq!(after.misses, before.misses + 1, "{after:?}");
    assert!(after.errors > before.errors, "{after:?}");
    server.resume();
    // Redis still holds the old entries; they must never be served again.
    let fresh = eventually(Duration::from_secs(5), async || {
        cache.get_or_load("k", &o, load(2)).await.unwrap() == 2
    })
    .await;
    assert!(fresh, "{:?}", cache.health().await);
    assert_eq!(cache.get_or_load("tagged", &o, load(2)).await.unwrap(), 2);
    assert_eq!(cache.health().await.pending_invalidations, 0);
}

/// Regression: without a prefix, an overflowing backlog was marked applied and dropped, and the
/// entries it invalidated were served again after the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_backlog_without_a_prefix_is_never_dropped() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .command_timeout(TIMEOUT)
        .connection_timeout(TIMEOUT)
        .circuit_breaker(5, Duration::from_millis(500))
        .pending_invalidations(2)
        .build()
        .unwrap();
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let load = |v: u32| move || async move { Ok::<u32, std::io::Error>(v) };
    assert_eq!(cache.get_or_load("k", &o, load(1)).await.unwrap(), 1);
    server.pause();
    for key in ["k", "x", "y"] {
        assert!(cache.invalidate(key).await.is_err());
    }
    server.resume();
    // The store answers again, and still holds the invalidated entry: it is never served.
    let reachable = eventually(Duration::from_secs(5), async || cache.ping().await.is_ok()).await;
    assert!(reachable);
    for _ in 0..5 {
        assert_eq!(cache.get_or_load("k", &o, load(2)).await.unwrap(), 2);
    }
    assert!(
        cache.get::<u32>("k").await.is_err(),
        "reads report the lost backlog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_evicts_or_refuses_and_calls_still_succeed() {
    let server = RedisServer::start();
    let mut conn = server.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("4mb")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query(&mut conn)
        .unwrap();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("m")
        .compression_threshold(None)
        .build()
        .unwrap();
    let o = LoadOptions::ttl(Duration::from_secs(600));
    let big = |i: u32| {
        move || async move { Ok::<Vec<u8>, std::io::Error>(vec![(i % 251) as u8; 64 * 1024]) }
    };
    for i in 0..200u32 {
        let v = cache
            .get_or_load(&format!("big:{i}"), &o, big(i))
            .await
            .unwrap();
        assert_eq!(v, vec![(i % 251) as u8; 64 * 1024]);
    }
    let evicted: String = redis::cmd("INFO").arg("stats").query(&mut conn).unwrap();
    assert!(
        !evicted.contains("evicted_keys:0\r\n"),
        "the flood evicted keys"
    );
    assert_eq!(
        cache.get_or_load("big:0", &o, big(0)).await.unwrap()[0],
        0,
        "an evicted entry is just a miss"
    );

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query(&mut conn)
        .unwrap();
    let errors_before = cache.stats().total.errors;
    for i in 200..260u32 {
        assert_eq!(
            cache
                .get_or_load(&format!("big:{i}"), &o, big(i))
                .await
                .unwrap()
                .len(),
            64 * 1024
        );
    }
    assert!(
        cache.stats().total.errors > errors_before,
        "OOM errors on write were counted"
    );
    // A refused write still gives its lease back.
    let leases: Vec<String> = redis::cmd("KEYS")
        .arg("m:__cachette:lease:*")
        .query(&mut conn)
        .unwrap();
    assert!(leases.is_empty(), "{leases:?}");
}
