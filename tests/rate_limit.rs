//! `Cache::rate_limit` in process, on a `redis-server` and on a Redis Cluster: the limit holds
//! exactly, under racing callers too, comes back after the reset it reports, survives
//! `clear()`, and fails open (or closed, when asked) while the server is away.

mod support;

use std::time::Duration;

use cachette::{Cache, RateLimitPolicy};
use support::RedisServer;
use support::caches::{cluster, memory, on_server_with_policy as on, redis};

const HOUR: Duration = Duration::from_secs(3600);

/// `limit` requests pass, each told one fewer remains; the next is denied with a wait.
async fn exactly_the_limit_passes(cache: Cache) {
    for left in (0..5).rev() {
        let d = cache.rate_limit("user:1", 5, HOUR).await.unwrap();
        assert!(d.allowed && d.enforced, "{d:?}");
        assert_eq!(d.remaining, left);
        assert_eq!(d.retry_after, Duration::ZERO);
    }
    let denied = cache.rate_limit("user:1", 5, HOUR).await.unwrap();
    assert!(!denied.allowed && denied.enforced, "{denied:?}");
    assert_eq!(denied.remaining, 0);
    assert!(denied.retry_after > Duration::ZERO && denied.retry_after <= HOUR / 5);
    assert!(denied.reset >= denied.retry_after && denied.reset <= HOUR);
    // Another key has its own limit.
    assert!(cache.rate_limit("user:2", 5, HOUR).await.unwrap().allowed);
}

/// After the reset the decision reported, the whole limit is back; after a retry-after, one.
async fn the_limit_comes_back_after_the_reported_reset(cache: Cache) {
    let window = Duration::from_millis(300);
    let mut last = None;
    for _ in 0..4 {
        last = Some(cache.rate_limit("burst", 3, window).await.unwrap());
    }
    let denied = last.unwrap();
    assert!(!denied.allowed, "{denied:?}");
    tokio::time::sleep(denied.retry_after).await;
    let one = cache.rate_limit("burst", 3, window).await.unwrap();
    assert!(one.allowed, "{one:?}");
    tokio::time::sleep(one.reset).await;
    let full = cache.rate_limit("burst", 3, window).await.unwrap();
    assert!(full.allowed, "{full:?}");
    assert_eq!(full.remaining, 2, "the whole limit is back");
}

/// Many tasks racing on one limit: exactly the limit passes.
async fn racing_callers_never_exceed_the_limit(cache: Cache) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let cache = cache.clone();
        tasks.spawn(async move { cache.rate_limit("race", 50, HOUR).await.unwrap() });
    }
    let decisions = tasks.join_all().await;
    assert!(decisions.iter().all(|d| d.enforced));
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 50);
}

/// `clear()` and pattern invalidation hand out no fresh quotas.
async fn clear_and_patterns_keep_limits(cache: Cache) {
    assert!(cache.rate_limit("kept", 1, HOUR).await.unwrap().allowed);
    cache.clear().await.unwrap();
    cache.invalidate_pattern("*").await.unwrap();
    let d = cache.rate_limit("kept", 1, HOUR).await.unwrap();
    assert!(!d.allowed && d.enforced, "{d:?}");
}

on_both!(
    exactly_the_limit_passes,
    the_limit_comes_back_after_the_reported_reset,
    racing_callers_never_exceed_the_limit,
    clear_and_patterns_keep_limits,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_fails_open_by_default_and_says_so() {
    let mut server = RedisServer::start();
    let cache = on(&server, RateLimitPolicy::default());
    assert!(cache.rate_limit("k", 1, HOUR).await.unwrap().enforced);
    let h = cache.health().await;
    assert!(h.rate_limits_enforced, "{h}");
    server.stop();
    for _ in 0..3 {
        let d = cache.rate_limit("k", 1, HOUR).await.unwrap();
        assert!(d.allowed && !d.enforced, "{d:?}");
    }
    let h = cache.health().await;
    assert!(!h.rate_limits_enforced);
    assert_eq!(h.rate_limit_policy, RateLimitPolicy::FailOpen);
    assert!(
        h.to_string()
            .contains("rate limits not enforced (fail open: all allowed)"),
        "{h}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_fails_closed_when_asked() {
    let mut server = RedisServer::start();
    let cache = on(&server, RateLimitPolicy::FailClosed);
    let d = cache.rate_limit("k", 10, HOUR).await.unwrap();
    assert!(d.allowed && d.enforced, "{d:?}");
    server.stop();
    let d = cache.rate_limit("k", 10, HOUR).await.unwrap();
    assert!(!d.allowed && !d.enforced, "{d:?}");
    assert!(d.retry_after > Duration::ZERO);
    let h = cache.health().await;
    assert!(h.to_string().contains("fail closed: all denied"), "{h}");
    // Back again: enforced again, with what the restarted (empty) server counts.
    server.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = cache.rate_limit("k", 10, HOUR).await.unwrap();
        if d.enforced {
            assert!(d.allowed);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not enforced again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The state is one key in the reserved namespace, expiring when the limit is whole again; a
/// value the script cannot read counts as a full limit, never as an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_under_the_prefix_that_expires() {
    let server = RedisServer::start();
    let cache = support::caches::on_server(&server, "app");
    let window = Duration::from_secs(60);
    assert!(
        cache
            .rate_limit("login:a b", 2, window)
            .await
            .unwrap()
            .enforced
    );
    let mut conn = server.conn();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert_eq!(keys, ["app:__cachette:rate:login%3Aa%20b"]);
    let pttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query(&mut conn).unwrap();
    assert!(pttl > 0 && pttl <= 30_000, "one interval of 30 s: {pttl}");

    let _: () = redis::cmd("SET")
        .arg(&keys[0])
        .arg("garbage")
        .query(&mut conn)
        .unwrap();
    let d = cache.rate_limit("login:a b", 2, window).await.unwrap();
    assert!(d.allowed && d.enforced, "{d:?}");
    assert_eq!(d.remaining, 1);
}
