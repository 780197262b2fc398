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
