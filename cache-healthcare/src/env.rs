//! Reads the healthcare variables when a cache is configured from the environment.
//!
//! | variable | meaning |
//! |---|---|
//! | `CACHE_ENCRYPTION_KEYS` | key ring: `id:base64key[,…]`, current first (32-byte keys) |
//! | `CACHE_HASH_KEY` | base64, at least 32 bytes: the key of identifier hashes |
//! | `CACHE_AUDIT_FILE` | append audit events as JSON lines to this file, each line chained to the one before by a MAC |
//! | `CACHE_AUDIT_KEY` | base64, at least 32 bytes: the key of those MACs (default: derived from `CACHE_HASH_KEY`) |
//! | `CACHE_AUDIT_TRACING` | `false` turns off audit events on the `cachette::audit` target |

use std::sync::Arc;

use cache_runtime::{BuildError, CacheBuilder};

use base64::Engine as _;

use crate::audit::chain::AuditKey;
use crate::audit::{JsonLinesAudit, TracingAudit};
use crate::id_hash::HmacIdHasher;
use crate::keyring::Keyring;

#[linkme::distributed_slice(cache_runtime::__private::ENV_HOOKS)]
#[linkme(crate = linkme)]
static HEALTHCARE_ENV: cache_runtime::__private::EnvHook = configure;

fn invalid(name: &'static str, expected: &'static str) -> BuildError {
    // The value is a secret: it is never echoed.
    BuildError::InvalidEnv {
        name,
        value: "<redacted>".into(),
        expected,
    }
}

/// The key that chains the audit file's lines: `CACHE_AUDIT_KEY`, or one derived from
/// `CACHE_HASH_KEY`; `None` without either (no protected function can run without the latter).
pub fn audit_key(
    var: &dyn Fn(&'static str) -> Option<String>,
) -> Result<Option<AuditKey>, BuildError> {
    let decode = |name: &'static str, b64: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| invalid(name, "at least 32 bytes in standard base64"))
    };
    if let Some(b64) = var("CACHE_AUDIT_KEY") {
        let key = decode("CACHE_AUDIT_KEY", &b64)?;
        return AuditKey::new(&key)
            .map(Some)
            .ok_or_else(|| invalid("CACHE_AUDIT_KEY", "at least 32 bytes in standard base64"));
    }
    match var("CACHE_HASH_KEY") {
        Some(b64) => Ok(AuditKey::derived_from(&decode("CACHE_HASH_KEY", &b64)?)),
        None => Ok(None),
    }
}

/// Applies the healthcare variables to `b`.
pub fn configure(
    mut b: CacheBuilder,
    var: &dyn Fn(&'static str) -> Option<String>,
) -> Result<CacheBuilder, BuildError> {
    if let Some(spec) = var("CACHE_ENCRYPTION_KEYS") {
        let ring = Keyring::parse(&spec).map_err(|e| {
            tracing::error!(target: "cachette", error = %e, "CACHE_ENCRYPTION_KEYS is invalid");
            invalid(
                "CACHE_ENCRYPTION_KEYS",
                "id:base64key[,id:base64key…] with 32-byte keys, current first",
            )
        })?;
        b = b.sealer(Arc::new(ring));
    }
    if let Some(key) = var("CACHE_HASH_KEY") {
        let hasher = HmacIdHasher::parse(&key)
            .map_err(|_| invalid("CACHE_HASH_KEY", "at least 32 bytes in standard base64"))?;
        b = b.id_hasher(Arc::new(hasher));
    }
    let tracing_on = var("CACHE_AUDIT_TRACING")
        .is_none_or(|v| !matches!(v.trim(), "0" | "false" | "off" | "no"));
    if tracing_on {
        b = b.audit_sink(Arc::new(TracingAudit));
    }
    if let Some(path) = var("CACHE_AUDIT_FILE") {
        let key = audit_key(var)?;
        let opened = match key {
            Some(key) => JsonLinesAudit::open_chained(path.trim(), key),
            None => JsonLinesAudit::open(path.trim()),
        };
        let sink = opened.map_err(|_| {
            invalid(
                "CACHE_AUDIT_FILE",
                "a path to a file this process can read and append to",
            )
        })?;
        b = b.audit_sink(Arc::new(sink));
    }
    Ok(b)
}
