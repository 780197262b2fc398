//! Metrics through the `metrics` facade, read back through a test recorder: names, kinds,
//! units and labels of what a cache records, and that no label carries a key or an argument.
//! One test: the recorder is process-wide, and the metrics are taken once (taking them
//! resets them).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cachette::metrics::names;
use cachette::{Cache, cached};
use metrics::Unit;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use support::RedisServer;

#[cached(key = "patient-count:{clinic}", ttl = "5m", cache = cache, skip = [cache])]
async fn patient_count(cache: &Cache, clinic: u64) -> Result<u64, std::io::Error> {
    Ok(clinic * 10)
}

#[cached(key = "clinic-name:{clinic}", ttl = "5m", cache = cache, skip = [cache])]
async fn clinic_name(cache: &Cache, clinic: u64) -> Result<String, std::io::Error> {
    Ok(format!("clinic {clinic}"))
}

#[cached(key = "broken:{id}", ttl = "5m", cache = cache, skip = [cache])]
async fn broken(cache: &Cache, id: u64) -> Result<u64, String> {
    Err(format!("row {id} is locked"))
}

type Row = (
    MetricKind,
    String,
    Vec<(String, String)>,
    Option<Unit>,
    DebugValue,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_kinds_units_and_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the first recorder of this process");

    let mut server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("m")
        .command_timeout(Duration::from_millis(300))
        .connection_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    for clinic in [4242, 4242, 4242, 77] {
        patient_count(&cache, clinic).await.unwrap();
    }
    broken(&cache, 9).await.unwrap_err();
    cache
        .get_or_load::<u32, std::io::Error, _, _>(
            "direct:1",
            &cachette::LoadOptions::ttl(Duration::from_secs(60)),
            || async { Ok(1) },
        )
        .await
        .unwrap();
    cachette::metrics::record_gauges(&cache).await;

    // With L1: hits answered by the copy in process are `level="l1"`.
    let with_l1 = Cache::builder()
        .redis(server.url())
        .prefix("m1")
        .l1_max_bytes(1024 * 1024)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    while !with_l1.health().await.l1.is_some_and(|l| l.serving) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "L1 never served"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while with_l1.stats().total.l1_hits == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "no L1 hit");
        clinic_name(&with_l1, 3).await.unwrap();
    }
    server.stop();
    // The store is gone: the lookup fails (an error), the body runs uncached.
    patient_count(&cache, 5).await.unwrap();
    cache.invalidate("patient-count:5").await.unwrap_err();
    cachette::metrics::record_gauges(&cache).await;

    let rows: Vec<Row> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, _, value)| {
            let (kind, key) = key.into_parts();
            let (name, labels) = key.into_parts();
            let labels = labels
                .into_iter()
                .map(|l| {
                    let (k, v) = l.into_parts();
                    (k.to_string(), v.to_string())
                })
                .collect();
            (kind, name.as_str().to_owned(), labels, unit, value)
        })
        .collect();
    let find = |kind: MetricKind, name: &str, labels: &[(&str, &str)]| -> &DebugValue {
        let want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        rows.iter()
            .find(|r| r.0 == kind && r.1 == name && r.2 == want)
            .map(|r| &r.4)
            .unwrap_or_else(|| panic!("no {kind:?} {name} {labels:?} in {rows:#?}"))
    };
    let counter =
        |name: &str, labels: &[(&str, &str)]| match find(MetricKind::Counter, name, labels) {
            DebugValue::Counter(n) => *n,
            other => panic!("{name} is {other:?}"),
        };
    let gauge = |name: &str| match find(MetricKind::Gauge, name, &[("prefix", "m")]) {
        DebugValue::Gauge(v) => v.into_inner(),
        other => panic!("{name} is {other:?}"),
    };
    let samples = |name: &str, function: &str| match find(
        MetricKind::Histogram,
        name,
        &[("function", function)],
    ) {
        DebugValue::Histogram(v) => v.len(),
        other => panic!("{name} is {other:?}"),
    };

    let f = "metrics::patient_count";
    let lookups = |f: &str, result: &str| {
        counter(
            names::LOOKUPS,
            &[("function", f), ("result", result), ("level", "store")],
        )
    };
    // The same numbers as `stats()`.
    let stats = cache.stats();
    let s = &stats.per_function.iter().find(|(p, _)| p == f).unwrap().1;
    assert_eq!(lookups(f, "hit"), s.hits);
    assert_eq!(lookups(f, "hit"), 2);
    let l1 = "metrics::clinic_name";
    let s1 = stats_of(&with_l1, l1);
    let l1_hits = counter(
        names::LOOKUPS,
        &[("function", l1), ("result", "hit"), ("level", "l1")],
    );
    assert!(l1_hits >= 1);
    assert_eq!(l1_hits, s1.l1_hits);
    assert_eq!(l1_hits + lookups(l1, "hit"), s1.hits, "hits = l1 + store");
    assert_eq!(
        counter(
            names::LOOKUPS,
            &[("function", f), ("result", "hit"), ("level", "l1")]
        ),
        0
    );
    assert_eq!(lookups(f, "miss"), s.misses);
    assert_eq!(lookups(f, "stale"), s.stale_hits);
    assert_eq!(lookups(f, "fail_safe"), s.fail_safe_hits);
    assert_eq!(lookups(f, "error"), s.errors);
    assert!(s.errors >= 1, "the lookup on a stopped server");
    assert_eq!(counter(names::LOADS, &[("function", f)]), s.loads);
    assert_eq!(samples(names::LOAD_DURATION, f) as u64, s.loads);
    assert_eq!(
        samples(names::LOOKUP_DURATION, f) as u64,
        s.hits + s.misses,
        "every lookup of a short run is timed"
    );
    assert_eq!(lookups("metrics::broken", "miss"), 1);
    assert_eq!(counter(names::LOADS, &[("function", "metrics::broken")]), 1);
    assert_eq!(lookups("(direct)", "miss"), 1);
    assert_eq!(
        counter(names::REFRESHES, &[("function", f), ("result", "ok")]),
        0
    );
    assert_eq!(counter(names::WAITED, &[("function", f)]), 0);

    // Gauges: the last sample, taken with the server stopped.
    assert_eq!(gauge(names::PENDING_INVALIDATIONS), 1.0);
    assert_eq!(gauge(names::REFRESHES_DROPPED), 0.0);
    let breaker = gauge(names::BREAKER_STATE);
    assert!([0.0, 1.0, 2.0].contains(&breaker), "{breaker}");
    assert!(
        rows.iter().any(|r| r.1 == names::STORE_MEMORY_USED),
        "sampled while the server answered"
    );

    // Units where they apply.
    let unit = |name: &str| rows.iter().find(|r| r.1 == name).and_then(|r| r.3);
    assert_eq!(unit(names::LOOKUP_DURATION), Some(Unit::Seconds));
    assert_eq!(unit(names::LOAD_DURATION), Some(Unit::Seconds));
    assert_eq!(unit(names::STORE_MEMORY_USED), Some(Unit::Bytes));

    // Every name is a documented one; labels are from a fixed set and carry no key or argument.
    let documented: BTreeSet<&str> = [
        names::LOOKUPS,
        names::LOOKUP_DURATION,
        names::LOADS,
        names::LOAD_DURATION,
        names::REFRESHES,
        names::WAITED,
        names::BREAKER_STATE,
        names::PENDING_INVALIDATIONS,
        names::REFRESHES_DROPPED,
        names::STORE_MEMORY_USED,
        names::STORE_MEMORY_MAX,
    ]
    .into();
    for (_, name, labels, _, _) in &rows {
        assert!(documented.contains(name.as_str()), "{name}");
        assert!(name.starts_with("cachette."), "{name}");
        for (k, v) in labels {
            assert!(
                ["function", "result", "level", "prefix"].contains(&k.as_str()),
                "{name}: {k}"
            );
            if k == "level" {
                assert!(["l1", "store"].contains(&v.as_str()), "{name}: {v}");
            }
            if k == "result" {
                assert!(
                    ["hit", "stale", "miss", "fail_safe", "error", "ok"].contains(&v.as_str()),
                    "{name}: {v}"
                );
            }
            for leak in ["4242", "patient-count:", "row 9", "direct:1"] {
                assert!(!v.contains(leak), "{name} {k}={v} leaks {leak}");
            }
        }
    }
}

fn stats_of(cache: &Cache, function: &str) -> cachette::StatsSnapshot {
    cache
        .stats()
        .per_function
        .into_iter()
        .find(|(p, _)| p == function)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no statistics for {function}"))
}

/// The Grafana dashboard asks only for metrics that exist, by the names a Prometheus exporter
/// gives them (dots become underscores).
#[test]
fn the_grafana_dashboard_names_only_metrics_that_exist() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards/cachette.json");
    let json = std::fs::read_to_string(path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&json).unwrap();
    let known: BTreeSet<String> = [
        names::LOOKUPS,
        names::LOOKUP_DURATION,
        names::LOADS,
        names::LOAD_DURATION,
        names::REFRESHES,
        names::WAITED,
        names::BREAKER_STATE,
        names::PENDING_INVALIDATIONS,
        names::REFRESHES_DROPPED,
        names::STORE_MEMORY_USED,
        names::STORE_MEMORY_MAX,
    ]
    .iter()
    .map(|n| n.replace('.', "_"))
    .collect();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("cachette_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(known.contains(&name), "{name} in {expr}");
                used.insert(name.clone());
                rest = &rest[at + name.len()..];
            }
        }
    }
    assert_eq!(used, known, "every metric has a panel");
}
