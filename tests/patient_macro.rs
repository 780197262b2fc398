//! `#[patient_cache]` and `#[invalidate_patient_cache]` against a real `redis-server`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cachette::Cache;
use cachette::healthcare::{
    ClinicId, Healthcare, HmacIdHasher, Keyring, PatientId, invalidate_patient_cache, patient_cache,
};
use serde::{Deserialize, Serialize};
use support::RedisServer;
use support::reply_gate::{Decodes, ReplyGate};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chart {
    name: String,
    mrn: String,
}

/// Each test has its own clinic, and so its own count of loads: the tests run in parallel.
struct Clinic {
    cache: Cache,
    loads: AtomicU32,
}

impl Clinic {
    #[patient_cache(
        key = "patient:{patient_id}:clinic:{clinic_id}:chart",
        ttl = "30m",
        tags = ["charts"],
        patient = "patient_id",
        clinic = "clinic_id",
        cache = self.cache,
    )]
    async fn chart(&self, patient_id: &str, clinic_id: &str) -> Result<Chart, String> {
        self.loads.fetch_add(1, SeqCst);
        let _ = clinic_id;
        Ok(Chart {
            name: "Zebulon Quartermaine".into(),
            mrn: patient_id.into(),
        })
    }

    #[patient_cache(key = "patient:{patient_id}:emergency", ttl = "5m", emergency = true, patient = "patient_id", compliance = "restricted", cache = self.cache)]
    async fn emergency(&self, patient_id: &str) -> Result<Chart, String> {
        self.loads.fetch_add(1, SeqCst);
        Ok(Chart {
            name: "Zebulon Quartermaine".into(),
            mrn: patient_id.into(),
        })
    }

    /// No literal TTL: the cache's default (1 h) is lowered to the restricted cap.
    #[patient_cache(key = "patient:{patient_id}:psych", compliance = "restricted", patient = "patient_id", cache = self.cache)]
    async fn psych_notes(&self, patient_id: &str) -> Result<String, String> {
        Ok(format!("notes of {patient_id}"))
    }

    /// The clinic's visit count, read on behalf of a patient: a key without the patient
    /// (skipped), whose `PatientId` parameter still gives the entry the patient's tag, which
    /// `invalidate_patient` invalidates.
    #[patient_cache(key = "visits:{clinic}", ttl = "10m", skip = [patient], cache = self.cache)]
    async fn visits(&self, patient: PatientId, clinic: ClinicId) -> Result<u32, String> {
        let _ = (patient, clinic);
        Ok(self.loads.fetch_add(1, SeqCst))
    }

    #[invalidate_patient_cache(patterns = ["patient:{patient_id}:*"], patient = "patient_id", cache = self.cache)]
    async fn update(&self, patient_id: &str) -> Result<(), String> {
        let _ = patient_id;
        Ok(())
    }
}

fn clinic(server: &RedisServer) -> Clinic {
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("pm")
        .sealer(Arc::new(
            Keyring::new([("k1".to_string(), [1; 32])]).unwrap(),
        ))
        .id_hasher(Arc::new(HmacIdHasher::new(&[2; 32]).unwrap()))
        .build()
        .unwrap();
    Clinic {
        cache,
        loads: AtomicU32::new(0),
    }
}

fn keys(server: &RedisServer) -> Vec<String> {
    redis::cmd("KEYS")
        .arg("*")
        .query(&mut server.conn())
        .unwrap()
}

#[tokio::test]
async fn protected_functions_seal_values_and_hash_identifiers() {
    let server = RedisServer::start();
    let c = clinic(&server);
    let before = c.loads.load(SeqCst);
    assert_eq!(c.chart("MRN-0042", "C-7").await.unwrap().mrn, "MRN-0042");
    assert_eq!(c.chart("MRN-0042", "C-7").await.unwrap().mrn, "MRN-0042");
    assert_eq!(c.loads.load(SeqCst) - before, 1, "cached");

    let (p, cl) = (c.cache.hash_id("MRN-0042"), c.cache.hash_id("C-7"));
    let key = format!("pm:phi:patient:{p}:clinic:{cl}:chart");
    let all = keys(&server);
    assert!(all.contains(&key), "{all:?}");
    let mut conn = server.conn();
    for k in &all {
        assert!(!k.contains("MRN") && !k.contains("C-7"), "{k}");
        let v: Option<Vec<u8>> = redis::cmd("GET").arg(k).query(&mut conn).unwrap();
        let v = v.unwrap_or_default();
        assert!(
            !v.windows(7).any(|w| w == b"Zebulon") && !v.windows(8).any(|w| w == b"MRN-0042"),
            "{k}"
        );
    }
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(pttl > 0 && pttl <= 30 * 60 * 1000);

    // The helpers hash the same way: invalidate_patient reaches macro-cached entries.
    let removed = Healthcare::new(c.cache.clone())
        .invalidate_patient("MRN-0042", None)
        .await
        .unwrap();
    assert_eq!((removed.removed, removed.residual), (1, 0));
    c.chart("MRN-0042", "C-7").await.unwrap();
    assert_eq!(c.loads.load(SeqCst) - before, 2);
}

#[tokio::test]
async fn invalidate_patient_cache_removes_that_patient_only() {
    let server = RedisServer::start();
    let c = clinic(&server);
    c.chart("MRN-0042", "C-7").await.unwrap();
    c.chart("MRN-004", "C-7").await.unwrap();
    c.update("MRN-0042").await.unwrap();
    let p42 = c.cache.hash_id("MRN-0042");
    let p4 = c.cache.hash_id("MRN-004");
    let all = keys(&server);
    assert!(
        !all.iter().any(|k| k.contains(&p42) && k.contains(":chart")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|k| k.contains(&p4) && k.contains(":chart")),
        "{all:?}"
    );
}

#[tokio::test]
async fn emergency_and_compliance_caps_hold() {
    let server = RedisServer::start();
    let c = clinic(&server);
    c.emergency("MRN-1").await.unwrap();
    c.psych_notes("MRN-1").await.unwrap();
    let p = c.cache.hash_id("MRN-1");
    let mut conn = server.conn();
    let pttl = |k: String, conn: &mut redis::Connection| -> i64 {
        redis::cmd("PTTL").arg(k).query(conn).unwrap()
    };
    let e = pttl(format!("pm:phi:patient:{p}:emergency"), &mut conn);
    assert!(e > 0 && e <= 5 * 60 * 1000, "emergency TTL {e}");
    let n = pttl(format!("pm:phi:patient:{p}:psych"), &mut conn);
    assert!(
        n > 0 && n <= 15 * 60 * 1000,
        "restricted TTL from configuration is clamped: {n}"
    );
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(format!("pm:phi:patient:{p}:emergency"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        raw[10..18],
        raw[18..26],
        "emergency data is fresh until it expires: never stale"
    );
}

/// `PatientId` and `ClinicId` parameters are declared identifiers: hashed in keys, and the
/// patient's tag lets `invalidate_patient` reach an entry whose key does not hold the patient.
#[tokio::test]
async fn typed_identifiers_are_declared_by_their_type() {
    let server = RedisServer::start();
    let c = clinic(&server);
    let visits = || c.visits(PatientId::new("MRN-0042"), ClinicId::new("C-7"));
    let first = visits().await.unwrap();
    assert_eq!(visits().await.unwrap(), first, "cached");
    for k in keys(&server) {
        assert!(!k.contains("MRN") && !k.contains("C-7"), "{k}");
    }
    let p = c.cache.hash_id("MRN-0042");
    assert!(
        keys(&server).contains(&format!("pm:__cachette:tag:patient:{p}")),
        "the patient's tag"
    );
    Healthcare::new(c.cache.clone())
        .invalidate_patient("MRN-0042", None)
        .await
        .unwrap();
    assert_ne!(
        visits().await.unwrap(),
        first,
        "invalidated through the patient's tag"
    );
    assert_eq!(
        format!("{:?}", PatientId::new("MRN-0042")),
        "PatientId(<redacted>)"
    );
}

#[patient_cache(key = "patient:{patient_id}:decodes", ttl = "10m", patient = "patient_id", cache = cache, skip = [cache])]
async fn decodes(cache: &Cache, patient_id: &str) -> Result<Decodes, std::io::Error> {
    Ok(Decodes(patient_id.len() as u64))
}

/// A protected value is never kept decoded: each of the callers sharing a read opens and
/// decodes it (those of other values decode it once between them:
/// `stampede::callers_sharing_a_read_decode_its_value_once`).
#[tokio::test]
async fn callers_sharing_a_read_of_protected_data_each_decode_it() {
    let server = RedisServer::start();
    let gate = ReplyGate::start(&server).await;
    let cache = gate.cache(
        Cache::builder()
            .prefix("pd")
            .sealer(Arc::new(
                Keyring::new([("k1".to_string(), [1; 32])]).unwrap(),
            ))
            .id_hasher(Arc::new(HmacIdHasher::new(&[2; 32]).unwrap())),
    );
    let decoded = gate
        .decodings_behind_a_held_read(&cache, |cache| async move { decodes(&cache, "p-1").await })
        .await;
    assert_eq!(decoded, 21, "each caller decodes protected data itself");
}
