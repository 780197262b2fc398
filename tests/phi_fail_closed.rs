//! A program that links in a protected function refuses to build a cache without keys.

use std::collections::HashMap;
use std::sync::Arc;

use cachette::healthcare::{HmacIdHasher, Keyring};
use cachette::{BuildError, Cache, CacheBuilder, FnSpec};

// What `#[patient_cache]` registers for a protected function.
#[linkme::distributed_slice(cachette::__macro_support::REGISTRY)]
#[linkme(crate = cachette::__macro_support::linkme)]
static PATIENT_RECORDS: FnSpec =
    FnSpec::new("patient_records", "clinic::records", "patient:{patient_id}").phi();

#[test]
fn building_without_keys_names_the_functions_and_the_variable() {
    let err = Cache::builder().build().unwrap_err();
    assert!(
        matches!(err, BuildError::PhiWithoutEncryption { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("clinic::records::patient_records"), "{msg}");
    assert!(msg.contains("CACHE_ENCRYPTION_KEYS"), "{msg}");

    let sealed_only = Cache::builder()
        .sealer(Arc::new(
            Keyring::new([("k1".to_string(), [1; 32])]).unwrap(),
        ))
        .build();
    let msg = sealed_only.unwrap_err().to_string();
    assert!(msg.contains("CACHE_HASH_KEY"), "{msg}");
}

#[test]
fn the_environment_configures_the_keys() {
    let b64 = |b: u8| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([b; 32])
    };
    let vars: HashMap<&str, String> = [
        (
            "CACHE_ENCRYPTION_KEYS",
            format!("k2:{},k1:{}", b64(2), b64(1)),
        ),
        ("CACHE_HASH_KEY", b64(3)),
        ("CACHE_AUDIT_TRACING", "false".into()),
    ]
    .into_iter()
    .collect();
    let cache = CacheBuilder::from_env_with(|n| vars.get(n).cloned())
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(cache.hash_id("MRN-1"), {
        let h = HmacIdHasher::new(&[3; 32]).unwrap();
        let mut s = String::new();
        cachette::healthcare::IdHasher::write_hash(&h, b"MRN-1", &mut s);
        s
    });

    let bad: HashMap<&str, String> = [("CACHE_ENCRYPTION_KEYS", "k1:c2hvcnQ=".to_string())]
        .into_iter()
        .collect();
    let err = CacheBuilder::from_env_with(|n| bad.get(n).cloned())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CACHE_ENCRYPTION_KEYS") && !err.contains("c2hvcnQ"),
        "{err}"
    );
    let empty: HashMap<&str, String> = HashMap::new();
    let err = CacheBuilder::from_env_with(|n| empty.get(n).cloned())
        .unwrap()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("CACHE_ENCRYPTION_KEYS"));
}

fn keyed() -> CacheBuilder {
    Cache::builder()
        .sealer(Arc::new(
            Keyring::new([("k1".to_string(), [1; 32])]).unwrap(),
        ))
        .id_hasher(Arc::new(HmacIdHasher::new(&[3; 32]).unwrap()))
}

/// Health data never crosses the network in plaintext unless the program says so.
#[test]
fn a_plaintext_redis_on_another_machine_is_refused_unless_allowed() {
    for url in [
        "redis://10.1.2.3:6379",
        "redis://:secret@cache.internal:6379/2",
    ] {
        let err = keyed().redis(url).build().unwrap_err();
        assert!(matches!(err, BuildError::PhiOverPlaintext { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("clinic::records::patient_records"), "{msg}");
        assert!(msg.contains("CACHE_ALLOW_PLAINTEXT_PHI=true"), "{msg}");
        assert!(msg.contains("rediss://"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        keyed()
            .redis(url)
            .allow_plaintext_phi(true)
            .build()
            .unwrap();
    }
    let err = keyed()
        .redis_cluster(["redis://127.0.0.1:7000", "redis://10.0.0.9:7000"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("10.0.0.9"), "{err}");
    // This machine, a Unix socket, and TLS are fine.
    for url in [
        "redis://127.0.0.1:6379",
        "redis://localhost:6379",
        "redis://[::1]:6379",
        "redis+unix:///run/redis.sock",
        "rediss://cache.internal:6380",
    ] {
        keyed()
            .redis(url)
            .build()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    // From the environment.
    let vars: HashMap<&str, String> = [
        ("REDIS_URL", "redis://10.1.2.3:6379".to_string()),
        ("CACHE_ALLOW_PLAINTEXT_PHI", "true".to_string()),
    ]
    .into_iter()
    .collect();
    let b = CacheBuilder::from_env_with(|n| vars.get(n).cloned()).unwrap();
    b.sealer(Arc::new(
        Keyring::new([("k1".to_string(), [1; 32])]).unwrap(),
    ))
    .id_hasher(Arc::new(HmacIdHasher::new(&[3; 32]).unwrap()))
    .build()
    .unwrap();
}
