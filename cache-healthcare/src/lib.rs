//! PHI policy for [cachette](https://docs.rs/cachette): values sealed with AES-256-GCM under a
//! rotating key ring, identifiers in key names replaced by HMAC-SHA256, compliance levels with
//! TTL caps, audit events, and the healthcare helpers of the NestJS original.
//!
//! A redis dump, a `redis-cli --scan`, a SLOWLOG or a log file shows no protected health
//! information: values are sealed, identifiers hashed, and audit events carry hashes only.
//! Configure with `CACHE_ENCRYPTION_KEYS` and `CACHE_HASH_KEY` (see [`env`](mod@env)); a cache refuses
//! to build when protected functions are linked in and these are missing.

#![warn(missing_docs)]

mod audit;
mod compliance;
pub mod env;
mod helpers;
mod id_hash;
mod keyring;

pub use crate::audit::chain::{AuditKey, ChainBreak, ChainReport, verify_audit_chain};
pub use crate::audit::{AUDIT_TARGET, JsonLinesAudit, TracingAudit, to_json};
pub use crate::compliance::{Compliance, EMERGENCY_MAX_TTL};
pub use crate::helpers::{Area, Fetch, Healthcare, HealthcareMetrics, HelperTtls, Value};
pub use crate::id_hash::HmacIdHasher;
pub use crate::keyring::{Keyring, KeyringError};
pub use cache_runtime::{
    AuditEvent, AuditOperation, AuditSink, IdHasher, PHI_NAMESPACE, Sealer, current_actor,
    with_actor,
};
