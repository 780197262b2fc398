//! Freshness through the service API, on the memory store and on a real `redis-server`:
//! stale-while-revalidate, single flight, fail-safe, loader timeout, jitter, early refresh,
//! force refresh. Multi-process behaviour is in `tests/stampede.rs`.
//!
//! Each cache runs on a virtual clock of its own (`cachette::testing::TestClock`): where a
//! test waits for a value to go stale or expire, it advances the clock instead of sleeping.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cachette::testing::TestClock;
use cachette::{Cache, LoadOptions};
use support::{RedisCluster, RedisServer};

/// Runs each named `async fn(Cache, TestClock)` as three tests, on a cache in process, on a
/// `redis-server` and on a Redis Cluster of its own, each on a virtual clock of its own.
macro_rules! on_all_with_clock {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   let clock = super::TestClock::new();
                   let cache = super::Cache::builder().prefix("t").clock(&clock).build().unwrap();
                   super::$name(cache, clock).await;
               } )*
        }
        mod redis_server {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   let (clock, server) = (super::TestClock::new(), super::RedisServer::start());
                   let cache = super::Cache::builder()
                       .redis(server.url())
                       .prefix("t")
                       .clock(&clock)
                       .build()
                       .unwrap();
                   super::$name(cache, clock).await;
               } )*
        }
        mod redis_cluster {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   let (clock, cluster) = (super::TestClock::new(), super::RedisCluster::start(3, 1));
                   let cache = super::Cache::builder()
                       .redis_cluster(cluster.urls())
                       .prefix("t")
                       .clock(&clock)
                       .build()
                       .unwrap();
                   super::$name(cache, clock).await;
               } )*
        }
    };
}

on_all_with_clock!(
    stale_values_are_served_at_once_and_refreshed_once,
    concurrent_misses_share_one_load,
    a_cancelled_caller_does_not_cancel_the_others,
    fail_safe_serves_the_old_value_when_the_loader_fails,
    the_fail_safe_grace_counts_from_the_first_expiry,
    without_fail_safe_the_error_is_returned,
    a_slow_loader_past_its_timeout_serves_the_old_value,
    a_load_past_its_timeout_stays_the_only_load_of_its_key,
    inline_callers_past_the_timeout_are_served_the_old_value,
    jitter_spreads_ttls_below_the_ttl,
    early_refresh_reloads_before_staleness,
    force_refresh_bypasses_the_cached_value,
);

/// A loader that counts its runs, sleeps `delay`, then returns `value` (or an error).
fn loader(
    runs: &Arc<AtomicU32>,
    delay: Duration,
    value: Result<u32, &'static str>,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> + Send + 'static
{
    let runs = runs.clone();
    move || {
        Box::pin(async move {
            runs.fetch_add(1, SeqCst);
            tokio::time::sleep(delay).await;
            value.map_err(str::to_owned)
        })
    }
}

const SHORT: Duration = Duration::from_millis(150);

async fn stale_values_are_served_at_once_and_refreshed_once(cache: Cache, clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(Duration::from_secs(60)).stale(SHORT);
    assert_eq!(
        cache
            .get_or_load_owned("k", &o, loader(&runs, Duration::ZERO, Ok(1)))
            .await,
        Ok(1)
    );
    clock.advance(SHORT + Duration::from_millis(50));

    // 50 concurrent stale reads: all get the old value without waiting for the 300 ms
    // loader, and exactly one refresh runs.
    let slow = Duration::from_millis(300);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (cache, o, load) = (cache.clone(), o.clone(), loader(&runs, slow, Ok(2)));
        tasks.spawn(async move { cache.get_or_load_owned("k", &o, load).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), Ok(1), "stale value served");
    }
    assert!(cache.stats().total.stale_hits >= 50);
    // The refresh lands in the background.
    for _ in 0..100 {
        if cache.get::<u32>("k").await.unwrap() == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(2));
    assert_eq!(runs.load(SeqCst), 2, "one load, one refresh");
    assert_eq!(cache.stats().total.refreshes, 1);
}

async fn concurrent_misses_share_one_load(cache: Cache, _clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (cache, o, load) = (
            cache.clone(),
            o.clone(),
            loader(&runs, Duration::from_millis(200), Ok(7)),
        );
        tasks.spawn(async move { cache.get_or_load_owned("cold", &o, load).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), Ok(7));
    }
    assert_eq!(runs.load(SeqCst), 1);
    assert!(
        cache.stats().total.waited >= 99,
        "{:?}",
        cache.stats().total
    );
}

async fn a_cancelled_caller_does_not_cancel_the_others(cache: Cache, _clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(Duration::from_secs(60));
    let first = {
        let (cache, o, load) = (
            cache.clone(),
            o.clone(),
            loader(&runs, Duration::from_millis(300), Ok(1)),
        );
        tokio::spawn(async move { cache.get_or_load_owned("c", &o, load).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = {
        let (cache, o, load) = (
            cache.clone(),
            o.clone(),
            loader(&runs, Duration::from_millis(50), Ok(2)),
        );
        tokio::spawn(async move { cache.get_or_load_owned("c", &o, load).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert_eq!(
        second.await.unwrap(),
        Ok(2),
        "the follower took over and loaded"
    );
}

async fn fail_safe_serves_the_old_value_when_the_loader_fails(cache: Cache, clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(SHORT).fail_safe(Duration::from_secs(3600));
    assert_eq!(
        cache
            .get_or_load_owned("fs", &o, loader(&runs, Duration::ZERO, Ok(1)))
            .await,
        Ok(1)
    );
    clock.advance(SHORT + Duration::from_millis(50));
    let failing = loader(&runs, Duration::ZERO, Err("database down"));
    assert_eq!(
        cache.get_or_load_owned("fs", &o, failing).await,
        Ok(1),
        "stale-if-error"
    );
    assert_eq!(runs.load(SeqCst), 2);
    // Throttled: the next call does not hit the failing database again.
    let failing = loader(&runs, Duration::ZERO, Err("database down"));
    assert_eq!(cache.get_or_load_owned("fs", &o, failing).await, Ok(1));
    assert_eq!(runs.load(SeqCst), 2);
    assert!(cache.stats().total.fail_safe_hits >= 1);
}

/// Regression: each failed reload rewrote the old value with a fresh grace, so a loader that
/// kept failing served the old value for ever.
async fn the_fail_safe_grace_counts_from_the_first_expiry(cache: Cache, clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let ttl = Duration::from_secs(300);
    let grace = Duration::from_secs(60);
    let o = LoadOptions::ttl(ttl).fail_safe(grace);
    assert_eq!(
        cache
            .get_or_load_owned("g", &o, loader(&runs, Duration::ZERO, Ok(1)))
            .await,
        Ok(1)
    );
    // Expired, within the grace: the old value, written back for the throttle (5 s) each time
    // the loader fails again, never past the grace counted from the first expiry.
    clock.advance(ttl + Duration::from_secs(1));
    let mut advanced = ttl + Duration::from_secs(1);
    while advanced < ttl + grace - Duration::from_secs(2) {
        assert_eq!(
            cache
                .get_or_load_owned("g", &o, loader(&runs, Duration::ZERO, Err("down")))
                .await,
            Ok(1),
            "within the grace ({advanced:?} after the load): the old value"
        );
        clock.advance(Duration::from_secs(10));
        advanced += Duration::from_secs(10);
    }
    clock.advance(ttl + grace + Duration::from_secs(1) - advanced);
    assert_eq!(
        cache
            .get_or_load_owned("g", &o, loader(&runs, Duration::ZERO, Err("down")))
            .await,
        Err("down".to_owned()),
        "past the grace: the loader's error"
    );
}

async fn without_fail_safe_the_error_is_returned(cache: Cache, clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(SHORT);
    assert_eq!(
        cache
            .get_or_load_owned("nfs", &o, loader(&runs, Duration::ZERO, Ok(1)))
            .await,
        Ok(1)
    );
    clock.advance(SHORT + Duration::from_millis(50));
    let failing = loader(&runs, Duration::ZERO, Err("database down"));
    assert_eq!(
        cache.get_or_load_owned("nfs", &o, failing).await,
        Err("database down".to_string())
    );
}

async fn a_slow_loader_past_its_timeout_serves_the_old_value(cache: Cache, clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(SHORT)
        .fail_safe(Duration::from_secs(3600))
        .timeout(Duration::from_millis(50));
    assert_eq!(
        cache
            .get_or_load_owned("to", &o, loader(&runs, Duration::ZERO, Ok(1)))
            .await,
        Ok(1)
    );
    clock.advance(SHORT + Duration::from_millis(50));
    let slow = loader(&runs, Duration::from_millis(400), Ok(2));
    assert_eq!(
        cache.get_or_load_owned("to", &o, slow).await,
        Ok(1),
        "old value after the timeout"
    );
    // The load went on in the background and filled the cache.
    for _ in 0..100 {
        if cache.get::<u32>("to").await.unwrap() == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.get::<u32>("to").await.unwrap(), Some(2));
}

/// Regression: a load past its timeout went on in the background but gave up its flight, so
/// every later caller started another: 20 loads of one key ran at once.
async fn a_load_past_its_timeout_stays_the_only_load_of_its_key(cache: Cache, clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(SHORT)
        .fail_safe(Duration::from_secs(3600))
        .timeout(Duration::from_millis(30));
    let first = cache
        .get_or_load_owned("one", &o, loader(&runs, Duration::ZERO, Ok(1)))
        .await;
    assert_eq!(first, Ok(1));
    clock.advance(SHORT + Duration::from_millis(50));

    // The database hangs until the gate opens: every caller gets the old value after the
    // timeout, and only the first one's load runs.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    for _ in 0..20 {
        let (runs, gate) = (runs.clone(), gate.clone());
        let v = cache
            .get_or_load_owned("one", &o, move || async move {
                runs.fetch_add(1, SeqCst);
                let _open = gate.acquire().await;
                Ok::<u32, String>(2)
            })
            .await;
        assert_eq!(v, Ok(1), "the old value past the timeout");
    }
    assert_eq!(runs.load(SeqCst), 2, "the first fill, and one load since");
    gate.add_permits(1);
    for _ in 0..200 {
        if cache.get::<u32>("one").await.unwrap() == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cache.get::<u32>("one").await.unwrap(), Some(2));
    assert_eq!(runs.load(SeqCst), 2);
}

/// Regression: with an inline loader (`get_or_load`), a leader past its timeout sent its
/// followers round again instead of serving them the old value; after three rounds they ran
/// the slow loader uncached, with no timeout at all.
async fn inline_callers_past_the_timeout_are_served_the_old_value(cache: Cache, clock: TestClock) {
    let o = LoadOptions::ttl(SHORT)
        .fail_safe(Duration::from_secs(3600))
        .timeout(Duration::from_millis(30));
    let first = cache
        .get_or_load("inline", &o, || async { Ok::<u32, String>(1) })
        .await;
    assert_eq!(first, Ok(1));
    clock.advance(SHORT + Duration::from_millis(50));

    // The database hangs until the end of the test.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (cache, o, gate) = (cache.clone(), o.clone(), gate.clone());
        callers.spawn(async move {
            let call = cache.get_or_load("inline", &o, || async move {
                let _open = gate.acquire().await;
                Ok::<u32, String>(2)
            });
            tokio::time::timeout(Duration::from_secs(10), call).await
        });
    }
    while let Some(got) = callers.join_next().await {
        let got = got.unwrap();
        assert_eq!(got, Ok(Ok(1)), "the old value, well within 10 s");
    }
    gate.add_permits(100);
}

async fn jitter_spreads_ttls_below_the_ttl(cache: Cache, _clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let ttl = Duration::from_secs(1000);
    let o = LoadOptions::ttl(ttl).jitter(20);
    let mut ttls = Vec::new();
    for i in 0..40 {
        let key = format!("j:{i}");
        cache
            .get_or_load_owned(&key, &o, loader(&runs, Duration::ZERO, Ok(i)))
            .await
            .unwrap();
        ttls.push(cache.ttl(&key).await.unwrap().unwrap());
    }
    assert!(
        ttls.iter().all(|t| *t <= ttl && *t >= ttl.mul_f64(0.79)),
        "{ttls:?}"
    );
    let spread =
        ttls.iter().max().unwrap().as_secs_f64() - ttls.iter().min().unwrap().as_secs_f64();
    assert!(spread > 20.0, "TTLs spread out: {spread:.1}s");
}

async fn early_refresh_reloads_before_staleness(cache: Cache, _clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    // A huge beta makes XFetch refresh on the first hit; the value is still fresh and served.
    let o = LoadOptions::ttl(Duration::from_secs(600)).early(1e9);
    let first = cache
        .get_or_load_owned("e", &o, loader(&runs, Duration::from_millis(5), Ok(1)))
        .await;
    assert_eq!(first, Ok(1));
    let hit = cache
        .get_or_load_owned("e", &o, loader(&runs, Duration::from_millis(5), Ok(2)))
        .await;
    assert_eq!(hit, Ok(1), "served from the cache");
    for _ in 0..100 {
        if cache.get::<u32>("e").await.unwrap() == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        cache.get::<u32>("e").await.unwrap(),
        Some(2),
        "refreshed early"
    );
    // Without early refresh nothing reloads a fresh value.
    let o = LoadOptions::ttl(Duration::from_secs(600));
    cache
        .get_or_load_owned("ne", &o, loader(&runs, Duration::from_millis(5), Ok(1)))
        .await
        .unwrap();
    let before = runs.load(SeqCst);
    cache
        .get_or_load_owned("ne", &o, loader(&runs, Duration::from_millis(5), Ok(2)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(SeqCst), before);
}

async fn force_refresh_bypasses_the_cached_value(cache: Cache, _clock: TestClock) {
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(Duration::from_secs(60));
    cache
        .get_or_load_owned("f", &o, loader(&runs, Duration::ZERO, Ok(1)))
        .await
        .unwrap();
    let forced = o.clone().force_refresh(true);
    assert_eq!(
        cache
            .get_or_load_owned("f", &forced, loader(&runs, Duration::ZERO, Ok(2)))
            .await,
        Ok(2)
    );
    assert_eq!(
        cache
            .get_or_load_owned("f", &o, loader(&runs, Duration::ZERO, Ok(3)))
            .await,
        Ok(2)
    );
    assert_eq!(runs.load(SeqCst), 2);
}

/// A background refresh that fails keeps the stale value, and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_stale_value() {
    let (clock, server) = (TestClock::new(), RedisServer::start());
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("t")
        .clock(&clock)
        .build()
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let o = LoadOptions::ttl(Duration::from_secs(60)).stale(SHORT);
    cache
        .get_or_load_owned("r", &o, loader(&runs, Duration::ZERO, Ok(1)))
        .await
        .unwrap();
    clock.advance(SHORT + Duration::from_millis(50));
    let failing = loader(&runs, Duration::ZERO, Err("down"));
    assert_eq!(cache.get_or_load_owned("r", &o, failing).await, Ok(1));
    for _ in 0..100 {
        if cache.stats().total.refresh_errors == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.stats().total.refresh_errors, 1);
    assert_eq!(cache.get::<u32>("r").await.unwrap(), Some(1));
}

/// With a borrowing loader, the stale value is still served to everyone but the one caller
/// that refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borrowing_loaders_refresh_in_one_caller() {
    let clock = TestClock::new();
    let cache = Cache::builder().clock(&clock).build().unwrap();
    let runs = AtomicU32::new(0);
    let o = LoadOptions::ttl(Duration::from_secs(60)).stale(SHORT);
    let load = |v: u32| {
        let runs = &runs;
        move || async move {
            runs.fetch_add(1, SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<u32, String>(v)
        }
    };
    cache.get_or_load("b", &o, load(1)).await.unwrap();
    clock.advance(SHORT + Duration::from_millis(50));
    let (a, b) = tokio::join!(cache.get_or_load("b", &o, load(2)), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        cache.get_or_load("b", &o, load(3)).await
    });
    assert_eq!(a, Ok(2), "the refreshing caller gets the new value");
    assert_eq!(b, Ok(1), "the other is served the stale value");
    assert_eq!(runs.load(SeqCst), 2);
}

/// A loader that panics in a background refresh loses that refresh only: later refreshes run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_refresh_does_not_stop_later_ones() {
    let clock = TestClock::new();
    let cache = Cache::builder()
        .refresh_limits(16, 1)
        .clock(&clock)
        .build()
        .unwrap();
    let o = LoadOptions::ttl(Duration::from_secs(60)).stale(SHORT);
    let runs = Arc::new(AtomicU32::new(0));
    for key in ["p1", "p2"] {
        cache
            .get_or_load_owned(key, &o, loader(&runs, Duration::ZERO, Ok(1)))
            .await
            .unwrap();
    }
    clock.advance(SHORT + Duration::from_millis(50));
    let panics = || async { panic!("the loader panicked") };
    let _: Result<u32, String> = cache.get_or_load_owned("p1", &o, panics).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        cache
            .get_or_load_owned("p2", &o, loader(&runs, Duration::ZERO, Ok(2)))
            .await,
        Ok(1)
    );
    for _ in 0..100 {
        if cache.get::<u32>("p2").await.unwrap() == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        cache.get::<u32>("p2").await.unwrap(),
        Some(2),
        "the next refresh ran"
    );
}
