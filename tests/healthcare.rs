//! Healthcare rules against a real `redis-server`: nothing protected in plaintext anywhere,
//! sealing bound to keys, key rotation, patient invalidation, TTL caps, audit events.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachette::healthcare::{
    AuditEvent, AuditOperation, AuditSink, Healthcare, HelperTtls, HmacIdHasher, JsonLinesAudit,
    Keyring, with_actor,
};
use cachette::{Cache, CacheBuilder, CacheError};
use serde::{Deserialize, Serialize};
use support::RedisServer;

const NAME: &str = "Zebulon Quartermaine";
const MRN: &str = "MRN-0042";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    patient: String,
    mrn: String,
    note: String,
}

fn record(mrn: &str) -> Record {
    Record {
        patient: NAME.into(),
        mrn: mrn.into(),
        note: "allergic to penicillin".into(),
    }
}

fn keyring(ids: &[(&str, u8)]) -> Arc<Keyring> {
    Arc::new(Keyring::new(ids.iter().map(|(id, b)| (id.to_string(), [*b; 32]))).unwrap())
}

fn builder(server: &RedisServer, ring: Arc<Keyring>) -> CacheBuilder {
    Cache::builder()
        .redis(server.url())
        .prefix("hc")
        .sealer(ring)
        .id_hasher(Arc::new(HmacIdHasher::new(&[42; 32]).unwrap()))
}

#[derive(Default)]
struct Collect(Mutex<Vec<AuditEvent>>);

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

fn all_keys(server: &RedisServer) -> Vec<String> {
    let mut conn = server.conn();
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Calls `read` until `cache` answers it from L1 (its backplane proven, the copy kept).
async fn until_in_l1<F: std::future::Future<Output = ()>>(
    cache: &Cache,
    mut read: impl FnMut() -> F,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let before = cache.stats().total.l1_hits;
        read().await;
        if cache.stats().total.l1_hits > before {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never served from L1");
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn loader(
    mrn: &'static str,
    runs: &Arc<Mutex<u32>>,
) -> impl FnOnce() -> std::future::Ready<Result<Record, String>> + Send + 'static {
    let runs = runs.clone();
    move || {
        *runs.lock().unwrap() += 1;
        std::future::ready(Ok(record(mrn)))
    }
}

#[tokio::test]
async fn nothing_protected_appears_in_plaintext() {
    let server = RedisServer::start();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .query(&mut server.conn())
        .unwrap();
    let audit_path =
        std::env::temp_dir().join(format!("cachette-audit-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&audit_path);
    let cache = builder(&server, keyring(&[("k1", 1)]))
        .audit_sink(Arc::new(JsonLinesAudit::open(&audit_path).unwrap()))
        .build()
        .unwrap();
    let phi = Healthcare::new(cache);
    let runs = Arc::new(Mutex::new(0));
    with_actor("nurse-17", async {
        assert_eq!(
            phi.cache_patient_records(MRN, "clinic-7", loader(MRN, &runs))
                .await
                .unwrap(),
            record(MRN)
        );
        assert_eq!(
            phi.cache_patient_records(MRN, "clinic-7", loader(MRN, &runs))
                .await
                .unwrap(),
            record(MRN)
        );
        phi.cache_medical_history(MRN, "clinic-7", loader(MRN, &runs))
            .await
            .unwrap();
        phi.cache_prescriptions(MRN, "clinic-7", loader(MRN, &runs))
            .await
            .unwrap();
        phi.cache_emergency_data(MRN, loader(MRN, &runs))
            .await
            .unwrap();
        phi.invalidate_patient(MRN, Some("clinic-7")).await.unwrap();
        phi.cache_patient_records(MRN, "clinic-7", loader(MRN, &runs))
            .await
            .unwrap();
    })
    .await;
    assert_eq!(*runs.lock().unwrap(), 5);

    let mut conn = server.conn();
    let keys = all_keys(&server);
    assert!(
        keys.iter().any(|k| k.starts_with("hc:phi:patient:")),
        "{keys:?}"
    );
    for key in &keys {
        for secret in [NAME, "Zebulon", "Quartermaine", MRN, "penicillin"] {
            assert!(!key.contains(secret), "key {key} shows {secret}");
        }
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
        for secret in [NAME, "Zebulon", "Quartermaine", MRN, "penicillin"] {
            assert!(
                !contains(&value.clone().unwrap_or_default(), secret),
                "value of {key} shows {secret}"
            );
        }
    }
    let slowlog: redis::Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1000)
        .query(&mut conn)
        .unwrap();
    let slowlog = format!("{slowlog:?}");
    assert!(
        slowlog.contains("GET") || slowlog.contains("SET") || slowlog.contains("EVALSHA"),
        "the slowlog recorded commands"
    );
    for secret in [NAME, "Zebulon", MRN, "penicillin"] {
        assert!(!slowlog.contains(secret), "SLOWLOG shows {secret}");
    }
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert!(audit.lines().count() >= 8, "{audit}");
    assert!(audit.contains("nurse-17"));
    for secret in [NAME, "Zebulon", MRN, "penicillin"] {
        assert!(!audit.contains(secret), "the audit file shows {secret}");
    }
    let _ = std::fs::remove_file(&audit_path);
}

#[tokio::test]
async fn moved_tampered_or_retired_values_are_misses() {
    let server = RedisServer::start();
    let phi = Healthcare::new(builder(&server, keyring(&[("k1", 1)])).build().unwrap());
    let runs = Arc::new(Mutex::new(0));
    phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
        .await
        .unwrap();
    phi.cache_patient_records("MRN-0099", "c1", loader("MRN-0099", &runs))
        .await
        .unwrap();
    let mut conn = server.conn();
    let key = |mrn: &str| {
        format!(
            "hc:phi:patient:{}:clinic:{}:records",
            phi.cache().hash_id(mrn),
            phi.cache().hash_id("c1")
        )
    };
    let a: Vec<u8> = redis::cmd("GET").arg(key(MRN)).query(&mut conn).unwrap();

    // Moved: the sealed value of one patient under another patient's key.
    let _: () = redis::cmd("SET")
        .arg(key("MRN-0099"))
        .arg(&a)
        .query(&mut conn)
        .unwrap();
    let got = phi
        .cache_patient_records("MRN-0099", "c1", loader("MRN-0099", &runs))
        .await
        .unwrap();
    assert_eq!(
        got.mrn, "MRN-0099",
        "a moved value is a miss, never the other patient's record"
    );
    assert_eq!(*runs.lock().unwrap(), 3);

    // Tampered: one flipped byte.
    let mut flipped = a.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let _: () = redis::cmd("SET")
        .arg(key(MRN))
        .arg(&flipped)
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap(),
        record(MRN)
    );
    assert_eq!(*runs.lock().unwrap(), 4);

    // Retired: a cache whose ring no longer holds k1.
    let retired = Healthcare::new(builder(&server, keyring(&[("k2", 2)])).build().unwrap());
    assert_eq!(
        retired
            .cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap(),
        record(MRN)
    );
    assert_eq!(*runs.lock().unwrap(), 5);
}

#[tokio::test]
async fn rotation_keeps_old_entries_readable_and_writes_with_the_new_key() {
    let server = RedisServer::start();
    let old = Healthcare::new(builder(&server, keyring(&[("k1", 1)])).build().unwrap());
    let runs = Arc::new(Mutex::new(0));
    old.cache_patient_records(MRN, "c1", loader(MRN, &runs))
        .await
        .unwrap();
    let rotated = Healthcare::new(
        builder(&server, keyring(&[("k2", 2), ("k1", 1)]))
            .build()
            .unwrap(),
    );
    assert_eq!(
        rotated
            .cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap(),
        record(MRN)
    );
    assert_eq!(
        *runs.lock().unwrap(),
        1,
        "the k1 entry was read after k2 became current"
    );
    rotated
        .cache_prescriptions(MRN, "c1", loader(MRN, &runs))
        .await
        .unwrap();
    let key = format!(
        "hc:phi:prescriptions:{}:clinic:{}",
        rotated.cache().hash_id(MRN),
        rotated.cache().hash_id("c1")
    );
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query(&mut server.conn())
        .unwrap();
    assert!(
        contains(&raw, "\u{1}\u{2}k2") && !contains(&raw, "\u{1}\u{2}k1"),
        "new writes carry k2"
    );
}

#[tokio::test]
async fn invalidate_patient_and_clear_phi_remove_exactly_their_entries() {
    let server = RedisServer::start();
    let cache = builder(&server, keyring(&[("k1", 1)])).build().unwrap();
    let phi = Healthcare::new(cache.clone());
    let runs = Arc::new(Mutex::new(0));
    for mrn in ["MRN-0042", "MRN-004"] {
        let mrn: &'static str = mrn;
        phi.cache_patient_records(mrn, "c1", loader(mrn, &runs))
            .await
            .unwrap();
        phi.cache_medical_history(mrn, "c1", loader(mrn, &runs))
            .await
            .unwrap();
    }
    cache
        .set("doctor:7:profile", &"Dr. Who", Duration::from_secs(60))
        .await
        .unwrap();
    let removed = phi.invalidate_patient("MRN-0042", None).await.unwrap();
    assert_eq!((removed.removed, removed.residual), (2, 0));
    let h42 = cache.hash_id("MRN-0042");
    let h4 = cache.hash_id("MRN-004");
    let keys = all_keys(&server);
    assert!(
        !keys
            .iter()
            .any(|k| k.contains(&h42) && k.starts_with("hc:phi:")),
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.contains(&h4) && k.starts_with("hc:phi:"))
            .count(),
        2,
        "the prefix patient is untouched: {keys:?}"
    );

    let cleared = phi.clear_phi().await.unwrap();
    assert_eq!((cleared.removed, cleared.residual), (2, 0));
    let keys = all_keys(&server);
    assert!(!keys.iter().any(|k| k.starts_with("hc:phi:")), "{keys:?}");
    assert_eq!(
        cache
            .get::<String>("doctor:7:profile")
            .await
            .unwrap()
            .as_deref(),
        Some("Dr. Who")
    );
}

/// Without the identifier hash key every process shares, identifiers would be hashed under a
/// key of this process only: an erasure by identifier would match no other process's entries
/// and still report success. It fails instead, and the helpers cache nothing.
#[tokio::test]
async fn without_the_shared_hash_key_helpers_cache_nothing_and_erasure_by_id_fails() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("hc")
        .sealer(keyring(&[("k1", 1)]))
        .build()
        .unwrap();
    assert!(!cache.hashes_ids());
    let phi = Healthcare::new(cache.clone());
    let runs = Arc::new(Mutex::new(0));
    for _ in 0..2 {
        phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap();
    }
    assert_eq!(*runs.lock().unwrap(), 2, "loaded each time");
    assert!(
        all_keys(&server).is_empty(),
        "nothing stored: {:?}",
        all_keys(&server)
    );
    for erased in [
        phi.invalidate_patient(MRN, None).await.map(|_| 0),
        phi.invalidate_doctor("dr-5", None).await,
        phi.invalidate_appointment("a-1", Some(MRN), None, None)
            .await,
        phi.invalidate_clinic("c1").await,
    ] {
        assert!(matches!(erased, Err(CacheError::NoHashKey)), "{erased:?}");
    }
    phi.clear_phi().await.expect("clearing needs no identifier");
}

#[tokio::test]
async fn emergency_data_is_never_stale_and_ttls_are_capped() {
    let server = RedisServer::start();
    let cache = builder(&server, keyring(&[("k1", 1)])).build().unwrap();
    let mut ttls = HelperTtls::from_env();
    ttls.patient_records = Duration::from_secs(10 * 3600); // over the 2 h cap of sensitive data
    ttls.emergency_data = Duration::from_secs(3600); // over the 5 min cap of emergency data
    let phi = Healthcare::with_ttls(cache.clone(), ttls);
    let runs = Arc::new(Mutex::new(0));
    phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
        .await
        .unwrap();
    phi.cache_emergency_data(MRN, loader(MRN, &runs))
        .await
        .unwrap();
    let pttl = |key: String| -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut server.conn())
            .unwrap()
    };
    let (p, c) = (cache.hash_id(MRN), cache.hash_id("c1"));
    let records = pttl(format!("hc:phi:patient:{p}:clinic:{c}:records"));
    assert!(records > 0 && records <= 2 * 3600 * 1000, "{records}");
    let emergency = pttl(format!("hc:phi:patient:{p}:emergency"));
    assert!(emergency > 0 && emergency <= 300 * 1000, "{emergency}");

    // Emergency entries are fresh for their whole TTL: no stale window to be served from.
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(format!("hc:phi:patient:{p}:emergency"))
        .query(&mut server.conn())
        .unwrap();
    let fresh_until = u64::from_le_bytes(raw[10..18].try_into().unwrap());
    let expires = u64::from_le_bytes(raw[18..26].try_into().unwrap());
    assert_eq!(fresh_until, expires);
}

#[tokio::test]
async fn the_audit_sink_gets_one_event_per_operation() {
    let server = RedisServer::start();
    let sink = Arc::new(Collect::default());
    let cache = builder(&server, keyring(&[("k1", 1)]))
        .audit_sink(sink.clone())
        .build()
        .unwrap();
    let phi = Healthcare::new(cache);
    let runs = Arc::new(Mutex::new(0));
    with_actor("dr.grey", async {
        phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap();
        phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap();
        phi.invalidate_patient(MRN, None).await.unwrap();
        phi.clear_phi().await.unwrap();
    })
    .await;
    let events = sink.0.lock().unwrap();
    let ops: Vec<AuditOperation> = events.iter().map(|e| e.operation).collect();
    assert_eq!(
        ops,
        [
            AuditOperation::Miss,
            AuditOperation::Write,
            AuditOperation::Hit,
            AuditOperation::Invalidate,
            AuditOperation::ClearPhi
        ]
    );
    for e in events.iter() {
        assert_eq!(e.actor.as_deref(), Some("dr.grey"));
        assert!(e.function.starts_with("healthcare::"), "{e:?}");
        assert_eq!(e.outcome, "ok");
        assert_eq!(e.key.len(), 32, "a keyed hash: {e:?}");
        assert!(e.time_ms > 0);
        assert!(!e.key.contains(MRN));
    }
    assert_eq!(events[3].count, Some(1));
}

/// With L1, protected values are served from sealed copies, each hit audited like a store
/// hit; `clear_phi` and `invalidate_patient` in one process reach the copies of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_copies_in_l1_are_audited_and_erased_across_processes() {
    let server = RedisServer::start();
    let sink = Arc::new(Collect::default());
    let with_l1 = |sink: Option<Arc<Collect>>| {
        let b = builder(&server, keyring(&[("k1", 1)])).l1_max_bytes(1 << 20);
        match sink {
            Some(s) => b.audit_sink(s),
            None => b,
        }
        .build()
        .unwrap()
    };
    let (a, b) = (
        Healthcare::new(with_l1(None)),
        Healthcare::new(with_l1(Some(sink.clone()))),
    );
    let b_cache = b.cache().clone();
    let runs = Arc::new(Mutex::new(0));
    until_in_l1(&b_cache, || async {
        b.cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap();
    })
    .await;
    let hits_before = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.operation == AuditOperation::Hit)
        .count();
    for _ in 0..10 {
        b.cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap();
    }
    let hits_after = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.operation == AuditOperation::Hit)
        .count();
    assert_eq!(hits_after - hits_before, 10, "every L1 hit is audited");

    for erase in ["clear_phi", "invalidate_patient"] {
        let loads = *runs.lock().unwrap();
        match erase {
            "clear_phi" => drop(a.clear_phi().await.unwrap()),
            _ => drop(a.invalidate_patient(MRN, None).await.unwrap()),
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while *runs.lock().unwrap() == loads {
            assert!(
                std::time::Instant::now() < deadline,
                "{erase} in A never reached B's L1"
            );
            b.cache_patient_records(MRN, "c1", loader(MRN, &runs))
                .await
                .unwrap();
        }
        // B holds a copy again before the next erasure.
        until_in_l1(&b_cache, || async {
            b.cache_patient_records(MRN, "c1", loader(MRN, &runs))
                .await
                .unwrap();
        })
        .await;
    }
}

/// Reading protected data through the service API (`get`, `get_many`) is audited too.
#[tokio::test]
async fn reads_of_protected_entries_through_the_service_api_are_audited() {
    let server = RedisServer::start();
    let sink = Arc::new(Collect::default());
    let cache = builder(&server, keyring(&[("k1", 1)]))
        .audit_sink(sink.clone())
        .build()
        .unwrap();
    let phi = Healthcare::new(cache.clone());
    let runs = Arc::new(Mutex::new(0));
    phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
        .await
        .unwrap();
    let key = all_keys(&server)
        .into_iter()
        .find(|k| k.starts_with("hc:phi:") && !k.contains("__cachette"))
        .expect("the protected entry");
    let key = key.strip_prefix("hc:").unwrap();
    sink.0.lock().unwrap().clear();
    let got: Option<Record> = with_actor("auditor", cache.get(key)).await.unwrap();
    assert_eq!(got, Some(record(MRN)));
    let many: Vec<Option<Record>> = cache.get_many(&[key, "absent"]).await.unwrap();
    assert_eq!(many[0], Some(record(MRN)));
    let events = sink.0.lock().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    for e in events.iter() {
        assert_eq!(e.operation, AuditOperation::Hit);
        assert_eq!(e.function, "cachette::Cache::get");
        assert!(!e.key.contains(MRN));
    }
    assert_eq!(events[0].actor.as_deref(), Some("auditor"));
}

/// The audit file from the environment is chained: the verifier passes it whole, and names
/// the first line of an edited or shortened copy; a restarted process continues the chain.
#[tokio::test]
async fn the_audit_file_is_chained_and_tampering_is_named() {
    use base64::Engine as _;
    use cachette::healthcare::{AuditKey, verify_audit_chain};

    let server = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("cachette-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let vars: std::collections::HashMap<&str, String> = [
        ("REDIS_URL", server.url()),
        ("CACHE_PREFIX", "hc".into()),
        ("CACHE_ENCRYPTION_KEYS", format!("k1:{}", b64(1))),
        ("CACHE_HASH_KEY", b64(3)),
        ("CACHE_AUDIT_TRACING", "false".into()),
        ("CACHE_AUDIT_FILE", path.display().to_string()),
    ]
    .into_iter()
    .collect();
    // Two processes' lifetimes, one after the other, appending to one file.
    for _ in 0..2 {
        let cache = CacheBuilder::from_env_with(|n| vars.get(n).cloned())
            .unwrap()
            .build()
            .unwrap();
        let phi = Healthcare::new(cache);
        let runs = Arc::new(Mutex::new(0));
        with_actor("dr.grey", async {
            for _ in 0..2 {
                phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
                    .await
                    .unwrap();
            }
            phi.invalidate_patient(MRN, None).await.unwrap();
        })
        .await;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    assert!(!text.contains(MRN) && !text.contains(NAME));
    let key = AuditKey::derived_from(&[3; 32]).unwrap();
    let verify = |lines: &[&str]| verify_audit_chain(lines.join("\n").as_bytes(), &key);
    let report = verify(&lines).unwrap();
    assert_eq!((report.lines, report.last_seq), (8, 8));

    let edited_line = lines[5].replace("dr.grey", "dr.hous");
    let mut edited = lines.clone();
    edited[5] = &edited_line;
    let err = verify(&edited).unwrap_err();
    assert_eq!(err.line, 6, "{err}");
    assert!(err.to_string().contains("edited"), "{err}");

    let mut deleted = lines.clone();
    deleted.remove(3);
    let err = verify(&deleted).unwrap_err();
    assert_eq!(err.line, 4, "{err}");
    assert!(err.to_string().contains("removed"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hits and misses by area, as the original's `HealthcareCacheMetrics`; the appointment and
/// doctor helpers are invalidated by their helpers.
#[tokio::test]
async fn helpers_count_hits_by_area() {
    let server = RedisServer::start();
    let phi = Healthcare::new(builder(&server, keyring(&[("k1", 1)])).build().unwrap());
    let runs = Arc::new(Mutex::new(0));
    for _ in 0..3 {
        phi.cache_patient_records(MRN, "c1", loader(MRN, &runs))
            .await
            .unwrap();
    }
    for _ in 0..2 {
        phi.cache_emergency_data(MRN, loader(MRN, &runs))
            .await
            .unwrap();
        phi.cache_appointment("apt-9", loader(MRN, &runs))
            .await
            .unwrap();
        phi.cache_doctor_profile("dr-5", loader(MRN, &runs))
            .await
            .unwrap();
    }
    let m = phi.metrics();
    assert_eq!(
        (
            m.patient_cache_hits,
            m.emergency_cache_hits,
            m.appointment_cache_hits,
            m.doctor_cache_hits
        ),
        (2, 1, 1, 1)
    );
    assert_eq!((m.total_hits, m.total_misses), (5, 4));
    assert!((m.hit_rate - 5.0 / 9.0).abs() < 1e-9);
    assert_eq!(*runs.lock().unwrap(), 4);
    // No identifier in any key name.
    for key in all_keys(&server) {
        assert!(
            !key.contains("apt-9") && !key.contains("dr-5") && !key.contains(MRN),
            "{key}"
        );
    }
    // Their invalidation helpers reach them.
    phi.invalidate_appointment("apt-9", None, None, None)
        .await
        .unwrap();
    phi.invalidate_doctor("dr-5", None).await.unwrap();
    phi.cache_appointment("apt-9", loader(MRN, &runs))
        .await
        .unwrap();
    phi.cache_doctor_profile("dr-5", loader(MRN, &runs))
        .await
        .unwrap();
    assert_eq!(*runs.lock().unwrap(), 6);
    assert_eq!(phi.metrics().total_misses, 6);
}

/// Erasure with a receipt, across two processes (each with an L1): the patient's entries
/// written by both are deleted, a second scan finds none, the audit event carries the
/// receipt, and the other process's L1 copy is gone too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_returns_a_receipt_with_no_residual_across_processes() {
    let server = RedisServer::start();
    let sink = Arc::new(Collect::default());
    let process = |sink: Option<Arc<Collect>>| {
        let b = builder(&server, keyring(&[("k1", 1)])).l1_max_bytes(1 << 20);
        Healthcare::new(
            match sink {
                Some(s) => b.audit_sink(s),
                None => b,
            }
            .build()
            .unwrap(),
        )
    };
    let (a, b) = (process(Some(sink.clone())), process(None));
    let runs = Arc::new(Mutex::new(0));
    a.cache_patient_records(MRN, "c1", loader(MRN, &runs))
        .await
        .unwrap();
    b.cache_medical_history(MRN, "c2", loader(MRN, &runs))
        .await
        .unwrap();
    until_in_l1(b.cache(), || async {
        b.cache_medical_history(MRN, "c2", loader(MRN, &runs))
            .await
            .unwrap();
    })
    .await;
    let h = a.cache().hash_id(MRN);
    let receipt = a.invalidate_patient(MRN, None).await.unwrap();
    assert_eq!(receipt.removed, 2, "{receipt:?}");
    assert_eq!(receipt.residual, 0, "{receipt:?}");
    assert!(receipt.scanned >= receipt.removed, "{receipt:?}");
    // No entry is left; the tag's version key (a random number) stays until it expires.
    let keys = all_keys(&server);
    assert!(
        !keys
            .iter()
            .any(|k| k.contains(&h) && !k.starts_with("hc:__cachette:tag:")),
        "{keys:?}"
    );
    let events = sink.0.lock().unwrap().clone();
    let erased = events
        .iter()
        .find(|e| e.function == "healthcare::invalidate_patient")
        .expect("the erasure's audit event");
    assert_eq!(erased.erasure, Some(receipt));
    assert_eq!(erased.count, Some(2));
    let json = cachette::healthcare::to_json(erased);
    assert_eq!(json["residual"], 0);
    // B's L1 copy went with it: its next call loads.
    let loads = *runs.lock().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while *runs.lock().unwrap() == loads {
        assert!(
            std::time::Instant::now() < deadline,
            "B's copy outlived the erasure"
        );
        b.cache_medical_history(MRN, "c2", loader(MRN, &runs))
            .await
            .unwrap();
    }
}
