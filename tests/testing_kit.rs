//! `cachette::testing`: the virtual clock, the fault store, the probes and the per-test scopes,
//! each on its own, on the in-process store and on a `redis-server` of the test's own; then
//! all of them together, as a user's test would use them.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cachette::testing::{
    Faults, Mark, TestClock, key_of, pass_through, scope, stored_values_containing,
};
use cachette::{BreakerState, Cache, CacheBuilder, LoadOptions, cache_put, cached};
use support::RedisServer;

/// A builder on the in-process store, or on a fresh `redis-server` (kept alive by the handle).
fn builder(on_redis: bool) -> (CacheBuilder, Option<RedisServer>) {
    if on_redis {
        let server = RedisServer::start();
        (
            Cache::builder().redis(server.url()).prefix("t"),
            Some(server),
        )
    } else {
        (Cache::builder().prefix("t"), None)
    }
}

/// Runs each named `async fn(bool)` as two tests: `memory::name` (false) and
/// `redis_server::name` (true).
macro_rules! on_memory_and_redis {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(false).await; } )*
        }
        mod redis_server {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(true).await; } )*
        }
    };
}

on_memory_and_redis!(
    advancing_the_clock_makes_an_entry_stale_then_expired,
    clocks_of_two_caches_are_independent,
    with_every_store_call_failing_cached_functions_return_their_loaders_values,
    an_outage_opens_the_breaker_and_the_store_is_used_again_after_it,
    garbled_reads_are_misses_that_run_the_loader,
    timeouts_latency_and_scheduled_failures_are_injected_and_counted,
    stored_values_containing_scans_the_raw_values,
);

#[cached(key = "price:{sku}", ttl = "5m", stale = "1m", cache = cache, skip = [cache, calls])]
async fn price(cache: &Cache, calls: &AtomicU32, sku: u32) -> Result<u32, String> {
    Ok(sku * 100 + calls.fetch_add(1, SeqCst))
}

async fn advancing_the_clock_makes_an_entry_stale_then_expired(on_redis: bool) {
    let (b, _server) = builder(on_redis);
    let clock = TestClock::new();
    let cache = b.clock(&clock).build().unwrap();
    let calls = AtomicU32::new(0);
    assert_eq!(price(&cache, &calls, 1).await, Ok(100));
    assert_eq!(price(&cache, &calls, 1).await, Ok(100), "fresh: a hit");
    assert_eq!(calls.load(SeqCst), 1);

    // Stale after one minute: refreshed (by this caller: `price` borrows, so it refreshes
    // inline).
    clock.advance(Duration::from_secs(61));
    assert_eq!(price(&cache, &calls, 1).await, Ok(101), "stale: refreshed");
    assert_eq!(price(&cache, &calls, 1).await, Ok(101), "fresh again");

    // Expired five minutes after the refresh: loaded again before anything is served.
    clock.advance(Duration::from_secs(301));
    assert_eq!(price(&cache, &calls, 1).await, Ok(102), "expired: loaded");
    assert_eq!(clock.advanced(), Duration::from_secs(362));
}

async fn clocks_of_two_caches_are_independent(on_redis: bool) {
    let (b, _server) = builder(on_redis);
    let (moved, still) = (TestClock::new(), TestClock::new());
    let a = b.clone().prefix("a").clock(&moved).build().unwrap();
    let b = b.prefix("b").clock(&still).build().unwrap();
    let (calls_a, calls_b) = (AtomicU32::new(0), AtomicU32::new(0));
    price(&a, &calls_a, 1).await.unwrap();
    price(&b, &calls_b, 1).await.unwrap();
    moved.advance(Duration::from_secs(3600));
    assert_eq!(
        price(&a, &calls_a, 1).await,
        Ok(101),
        "expired on its clock"
    );
    assert_eq!(price(&b, &calls_b, 1).await, Ok(100), "fresh on the other");
    assert_eq!(calls_b.load(SeqCst), 1);
}

async fn with_every_store_call_failing_cached_functions_return_their_loaders_values(
    on_redis: bool,
) {
    let (b, _server) = builder(on_redis);
    let faults = Faults::new();
    let cache = b.faults(&faults).build().unwrap();
    faults.start_outage();
    let calls = AtomicU32::new(0);
    for i in 0..5 {
        assert_eq!(price(&cache, &calls, 7).await, Ok(700 + i), "call {i}");
    }
    assert_eq!(calls.load(SeqCst), 5, "every call ran its loader");
    let injected = faults.injected();
    assert!(injected.errors + injected.skipped >= 5, "{injected:?}");
    assert!(cache.stats().total.errors >= 5);
}

async fn an_outage_opens_the_breaker_and_the_store_is_used_again_after_it(on_redis: bool) {
    let (b, _server) = builder(on_redis);
    let faults = Faults::new();
    let cache = b
        .circuit_breaker(3, Duration::from_secs(1))
        .faults(&faults)
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    faults.start_outage();
    for _ in 0..5 {
        price(&cache, &calls, 1).await.unwrap();
    }
    assert_eq!(faults.breaker_state(), BreakerState::Open);
    let before = faults.injected();
    price(&cache, &calls, 1).await.unwrap();
    assert!(
        faults.injected().skipped > before.skipped,
        "an open breaker skips the store"
    );

    faults.end_outage();
    // After the cool-down a probe closes the breaker; values are cached again.
    for _ in 0..250 {
        price(&cache, &calls, 1).await.unwrap();
        if faults.breaker_state() == BreakerState::Closed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(faults.breaker_state(), BreakerState::Closed);
    price(&cache, &calls, 2).await.unwrap();
    let loads = calls.load(SeqCst);
    price(&cache, &calls, 2).await.unwrap();
    assert_eq!(calls.load(SeqCst), loads, "cached again");
}

async fn garbled_reads_are_misses_that_run_the_loader(on_redis: bool) {
    let (b, _server) = builder(on_redis);
    let faults = Faults::new();
    let cache = b.faults(&faults).build().unwrap();
    let calls = AtomicU32::new(0);
    assert_eq!(price(&cache, &calls, 3).await, Ok(300));
    faults.garble_next_reads(1);
    assert_eq!(
        price(&cache, &calls, 3).await,
        Ok(301),
        "garbage is a miss: loaded"
    );
    assert_eq!(faults.injected().garbled, 1);
    // The garbled read saw other bytes than the store holds, so that write did not land;
    // the entry stored first is still served.
    assert_eq!(price(&cache, &calls, 3).await, Ok(300));
    assert_eq!(calls.load(SeqCst), 2);
}

async fn timeouts_latency_and_scheduled_failures_are_injected_and_counted(on_redis: bool) {
    let (b, _server) = builder(on_redis);
    let faults = Faults::new();
    let cache = b.faults(&faults).build().unwrap();
    let calls = AtomicU32::new(0);
    faults.time_out_next(1);
    assert_eq!(price(&cache, &calls, 4).await, Ok(400));
    assert_eq!(faults.injected().timeouts, 1);

    faults.set_latency(Duration::from_millis(5));
    price(&cache, &calls, 4).await.unwrap();
    assert!(faults.injected().delayed >= 1);
    faults.set_latency(Duration::ZERO);

    faults.fail_every(2);
    let errors = faults.injected().errors;
    for sku in 10..20 {
        assert!(price(&cache, &calls, sku).await.is_ok());
    }
    assert!(faults.injected().errors > errors, "{:?}", faults.injected());

    faults.reset();
    assert_eq!(faults.injected(), Default::default());
}

async fn stored_values_containing_scans_the_raw_values(on_redis: bool) {
    let (b, _server) = builder(on_redis);
    let cache = b.compression_threshold(None).build().unwrap();
    let ttl = Duration::from_secs(60);
    cache
        .set("note:1", &"Jane Doe, 1970-01-01", ttl)
        .await
        .unwrap();
    cache.set("note:2", &"nobody", ttl).await.unwrap();
    assert_eq!(
        stored_values_containing(&cache, b"Jane Doe").await.unwrap(),
        ["note:1"]
    );
    assert!(
        stored_values_containing(&cache, b"John Roe")
            .await
            .unwrap()
            .is_empty()
    );
}

/// The path the registry knows `name` by, for [`Mark::loads_of`].
fn path_of(name: &str) -> String {
    cachette::registry()
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.path())
        .unwrap()
}

#[cached(key = "marked:{id}", ttl = "5m", cache = cache, skip = [cache])]
async fn marked(cache: &Cache, id: u32) -> u32 {
    id
}

#[tokio::test]
async fn a_mark_counts_loads_hits_and_misses_since_it_was_made() {
    let cache = Cache::builder().build().unwrap();
    marked(&cache, 0).await;
    let mark = Mark::new(&cache);
    for id in [1, 1, 1, 2] {
        marked(&cache, id).await;
    }
    let since = mark.since();
    assert_eq!((since.loads, since.hits, since.misses), (2, 2, 2));
    assert_eq!(mark.loads_of(&path_of("marked")), 2);
    assert_eq!(mark.function(&path_of("marked")).hits, 2);
}

/// Uses the global cache (no `cache = ..`): the one `scope` puts in its place.
#[cached(key = "user:{id}", ttl = "5m", skip = [calls])]
async fn get_user(calls: &AtomicU32, id: u64) -> String {
    calls.fetch_add(1, SeqCst);
    format!("user {id}")
}

/// Writes through to the global cache (no `cache = ..`).
#[cache_put(key = "user:{id}", ttl = "5m")]
async fn rename_user(calls: &AtomicU32, id: u64, name: &str) -> String {
    calls.fetch_add(1, SeqCst);
    format!("{name} {id}")
}

/// `#[cache_put]` meets the test kit as `#[cached]` does: a probe renders its key without
/// running it, and under `pass_through` it runs and writes nothing.
#[tokio::test]
async fn write_through_calls_are_probed_and_passed_through() {
    let calls = AtomicU32::new(0);
    assert_eq!(
        key_of(rename_user(&calls, 5, "ada")).as_deref(),
        Some("user:5")
    );
    assert_eq!(calls.load(SeqCst), 0, "the probe ran no body");
    let cache = Cache::builder().prefix("put").build().unwrap();
    scope(&cache, async {
        pass_through(async {
            assert_eq!(rename_user(&calls, 5, "ada").await, "ada 5");
        })
        .await;
        assert_eq!(calls.load(SeqCst), 1, "passed through: the body ran");
        assert_eq!(
            get_user(&calls, 5).await,
            "user 5",
            "and nothing was written"
        );
        assert_eq!(rename_user(&calls, 5, "bob").await, "bob 5");
        assert_eq!(
            get_user(&calls, 5).await,
            "bob 5",
            "outside it, written through"
        );
    })
    .await;
}

#[cached(key = "order:{customer}:{id}", cache = cache, skip = [cache, calls])]
async fn get_order(cache: &Cache, calls: &AtomicU32, customer: &str, id: u64) -> u64 {
    calls.fetch_add(1, SeqCst);
    id
}

#[test]
fn key_of_renders_the_key_without_running_the_call() {
    let calls = AtomicU32::new(0);
    assert_eq!(key_of(get_user(&calls, 7)).as_deref(), Some("user:7"));
    let cache = Cache::builder().prefix("shop").build().unwrap();
    assert_eq!(
        key_of(get_order(&cache, &calls, "a:b", 9)).as_deref(),
        Some("shop:order:a%3Ab:9"),
        "prefixed, and the argument escaped"
    );
    assert_eq!(
        cachette::testing::key_of!(get_user(&calls, 8)).as_deref(),
        Some("user:8")
    );
    assert_eq!(calls.load(SeqCst), 0, "no body ran");
    assert_eq!(key_of(async { 1 }), None, "not a cached call");
}

/// Two tests at once in two threads: one in `pass_through`, one with a cache of its own in
/// `scope`, calling the same global-cache function, interleaved by barriers.
#[test]
fn pass_through_and_scope_hold_for_one_test_and_not_the_one_beside_it() {
    let barrier = Arc::new(Barrier::new(2));
    let run = |passing: bool, barrier: Arc<Barrier>| {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let cache = Cache::builder().prefix("scoped").build().unwrap();
            let calls = AtomicU32::new(0);
            let three_calls = async {
                for _ in 0..3 {
                    let cache_turn = async { get_user(&calls, 42).await };
                    barrier.wait();
                    assert_eq!(cache_turn.await, "user 42");
                }
            };
            rt.block_on(async {
                if passing {
                    pass_through(three_calls).await;
                } else {
                    scope(&cache, three_calls).await;
                }
            });
            let stored = rt.block_on(cache.list_keys("*", 10)).unwrap().keys.len();
            (calls.load(SeqCst), stored)
        })
    };
    let passing = run(true, barrier.clone());
    let scoped = run(false, barrier);
    assert_eq!(
        passing.join().unwrap(),
        (3, 0),
        "pass-through: every call ran"
    );
    assert_eq!(
        scoped.join().unwrap(),
        (1, 1),
        "scoped: one load, kept in the test's own cache"
    );
}

/// What a user's test of a service that caches looks like: a virtual clock, a store that
/// fails on demand, and assertions on what the cache did, around functions that use the
/// global cache.
#[cached(key = "catalog:{sku}", ttl = "5m", fail_safe = "1h", skip = [db])]
async fn catalog_price(db: &FakeDb, sku: u32) -> Result<u32, String> {
    db.price(sku)
}

struct FakeDb {
    queries: AtomicU32,
    down: std::sync::atomic::AtomicBool,
}

impl FakeDb {
    fn price(&self, sku: u32) -> Result<u32, String> {
        self.queries.fetch_add(1, SeqCst);
        if self.down.load(SeqCst) {
            return Err("database down".into());
        }
        Ok(sku * 10)
    }
}

#[tokio::test]
async fn a_user_test_with_the_clock_the_faults_and_the_probes() {
    let clock = TestClock::new();
    let faults = Faults::new();
    let cache = Cache::builder()
        .prefix("user-test")
        .clock(&clock)
        .faults(&faults)
        .compression_threshold(None)
        .build()
        .unwrap();
    let db = FakeDb {
        queries: AtomicU32::new(0),
        down: false.into(),
    };
    let path = path_of("catalog_price");
    scope(&cache, async {
        // The template renders as expected.
        assert_eq!(
            key_of(catalog_price(&db, 5)).as_deref(),
            Some("user-test:catalog:5")
        );

        // One query for two calls.
        let mark = Mark::new(&cache);
        assert_eq!(catalog_price(&db, 5).await, Ok(50));
        assert_eq!(catalog_price(&db, 5).await, Ok(50));
        assert_eq!(mark.loads_of(&path), 1);
        assert_eq!((mark.since().hits, mark.since().misses), (1, 1));

        // Six minutes later the database is down: the expired price is served (fail-safe).
        clock.advance(Duration::from_secs(6 * 60));
        db.down.store(true, SeqCst);
        assert_eq!(catalog_price(&db, 5).await, Ok(50));
        assert_eq!(mark.since().fail_safe_hits, 1);

        // The store goes away too: the function still answers from the database.
        db.down.store(false, SeqCst);
        faults.start_outage();
        assert_eq!(catalog_price(&db, 6).await, Ok(60));
        assert!(faults.injected().errors >= 1);
        faults.end_outage();

        // Nothing stored holds what it should not.
        assert!(
            stored_values_containing(&cache, b"database down")
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
    assert_eq!(db.queries.load(SeqCst), 3);
}

#[tokio::test]
async fn the_virtual_clock_applies_to_fail_safe_grace_on_the_service_api() {
    let clock = TestClock::new();
    let cache = Cache::builder().clock(&clock).build().unwrap();
    let o = LoadOptions::ttl(Duration::from_secs(300)).fail_safe(Duration::from_secs(600));
    let ok = || async { Ok::<u32, String>(1) };
    let down = || async { Err::<u32, String>("down".into()) };
    assert_eq!(cache.get_or_load("k", &o, ok).await, Ok(1));
    clock.advance(Duration::from_secs(301));
    assert_eq!(
        cache.get_or_load("k", &o, down).await,
        Ok(1),
        "in the grace"
    );
    clock.advance(Duration::from_secs(600));
    assert_eq!(
        cache.get_or_load("k", &o, down).await,
        Err("down".into()),
        "past it"
    );
}

/// An L1 copy is served no longer than its deadline on the cache's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_copies_expire_on_the_virtual_clock() {
    let server = RedisServer::start();
    let clock = TestClock::new();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("t")
        .l1_max_bytes(1 << 20)
        .clock(&clock)
        .build()
        .unwrap();
    let loads = AtomicU32::new(0);
    let o = LoadOptions::ttl(Duration::from_secs(600));
    let read = || async {
        cache
            .get_or_load("k", &o, || async {
                Ok::<u32, String>(loads.fetch_add(1, SeqCst) + 1)
            })
            .await
    };
    // Read until the value is served from L1 (once the backplane has proven its channel).
    let mut served_from_l1 = false;
    for _ in 0..1000 {
        let before = cache.stats().total.l1_hits;
        assert_eq!(read().await, Ok(1));
        if cache.stats().total.l1_hits > before {
            served_from_l1 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(served_from_l1, "the value never reached L1");
    clock.advance(Duration::from_secs(601));
    assert_eq!(read().await, Ok(2), "the copy expired with its entry");
}

/// The store scan as a PHI test uses it: a sealed value shows neither the name nor the
/// identifier, while the same record stored unsealed does.
#[tokio::test]
async fn the_store_scan_tells_sealed_values_from_plaintext_ones() {
    use cachette::healthcare::{Healthcare, HmacIdHasher, Keyring};

    const NAME: &[u8] = b"Zebulon Quartermaine";
    const MRN: &str = "MRN-0042";
    let ring = Keyring::new([("k1".to_owned(), [1u8; 32])]).unwrap();
    let cache = Cache::builder()
        .sealer(Arc::new(ring))
        .id_hasher(Arc::new(HmacIdHasher::new(&[42; 32]).unwrap()))
        .compression_threshold(None)
        .build()
        .unwrap();
    let phi = Healthcare::new(cache.clone());
    let record = "Zebulon Quartermaine, allergic to penicillin".to_owned();
    let fetch = {
        let record = record.clone();
        move || std::future::ready(Ok::<_, String>(record))
    };
    assert_eq!(
        phi.cache_patient_records(MRN, "clinic-7", fetch).await,
        Ok(record.clone())
    );
    assert!(!cache.list_keys("*", 10).await.unwrap().keys.is_empty());
    assert!(
        stored_values_containing(&cache, NAME)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        stored_values_containing(&cache, MRN.as_bytes())
            .await
            .unwrap()
            .is_empty()
    );

    cache
        .set("unsealed", &record, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        stored_values_containing(&cache, NAME).await.unwrap(),
        ["unsealed"]
    );
}
