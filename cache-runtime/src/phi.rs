//! Hooks for protected data: sealing values, hashing identifiers in keys, auditing access.
//!
//! The runtime knows *where* protected values flow; the policy (which cipher, which keys, where
//! audit events go) is plugged in through these traits, by `cache-healthcare` or by you. A cache
//! refuses to build when a protected function is linked into the program and no [`Sealer`] is
//! configured: protected values are never stored in plaintext.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::error::BuildError;

/// Encrypts and authenticates values (an AEAD such as AES-256-GCM).
pub trait Sealer: Send + Sync + 'static {
    /// Seals `plaintext`, bound to `context` (the full key and the entry format version): a
    /// sealed value copied under another key must fail to open. The output carries whatever
    /// opening needs (key id, nonce).
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String>;
    /// Opens what [`seal`](Self::seal) produced under the same `context`; any tampering,
    /// another context, or a retired key is an error.
    fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String>;
}

/// Replaces identifiers in key names by a keyed hash, so that key names reveal no identifier.
pub trait IdHasher: Send + Sync + 'static {
    /// Appends the keyed hash of `id` to `out`, as lowercase hex.
    fn write_hash(&self, id: &[u8], out: &mut String);
}

/// What happened to protected data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditOperation {
    /// A lookup served a cached value.
    Hit,
    /// A lookup found nothing usable.
    Miss,
    /// A value was written.
    Write,
    /// Entries were invalidated.
    Invalidate,
    /// Every protected entry was removed.
    ClearPhi,
}

impl AuditOperation {
    /// The operation's name in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOperation::Hit => "hit",
            AuditOperation::Miss => "miss",
            AuditOperation::Write => "write",
            AuditOperation::Invalidate => "invalidate",
            AuditOperation::ClearPhi => "clear_phi",
        }
    }
}

/// One audit record. Never carries a value or a raw identifier: `key` is the keyed hash of
/// the full key (whose identifiers are hashed already).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuditEvent {
    /// Unix ms.
    pub time_ms: u64,
    /// `module::function`, or the helper's name.
    pub function: String,
    /// What happened.
    pub operation: AuditOperation,
    /// `ok`, or what failed (`store_error`, `not_stored`, …).
    pub outcome: &'static str,
    /// The keyed hash of the key, or of the pattern or tag invalidated.
    pub key: String,
    /// Who, from [`with_actor`].
    pub actor: Option<Arc<str>>,
    /// How many entries an invalidation or `clear_phi` removed, where known.
    pub count: Option<u64>,
}

/// Receives audit events. Implementations must not block: they run on the call path.
pub trait AuditSink: Send + Sync + 'static {
    /// Records one event.
    fn record(&self, event: &AuditEvent);
}

tokio::task_local! {
    static ACTOR: Arc<str>;
}

/// Runs `fut` with `actor` (a user or service id) as the actor of its audit events.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let who = cache_runtime::with_actor("dr.house", async { cache_runtime::current_actor() }).await;
/// assert_eq!(who.as_deref(), Some("dr.house"));
/// # }
/// ```
pub async fn with_actor<F: std::future::Future>(actor: impl Into<Arc<str>>, fut: F) -> F::Output {
    ACTOR.scope(actor.into(), fut).await
}

/// The actor set by [`with_actor`] around the current task, if any.
pub fn current_actor() -> Option<Arc<str>> {
    ACTOR.try_with(Clone::clone).ok()
}

/// What one audit record says, before it is stamped (time, actor) and its key hashed.
pub(crate) struct Audit<'a> {
    pub function: &'a str,
    pub operation: AuditOperation,
    pub outcome: &'static str,
    pub key: &'a str,
    pub count: Option<u64>,
}

/// The protected-data hooks of one cache.
#[derive(Clone, Default)]
pub(crate) struct PhiHooks {
    pub sealer: Option<Arc<dyn Sealer>>,
    pub hasher: Option<Arc<dyn IdHasher>>,
    pub audit: Vec<Arc<dyn AuditSink>>,
}

impl std::fmt::Debug for PhiHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhiHooks")
            .field("sealer", &self.sealer.is_some())
            .field("hasher", &self.hasher.is_some())
            .field("audit_sinks", &self.audit.len())
            .finish()
    }
}

/// The protected functions linked into this program.
pub(crate) fn protected_functions() -> Vec<String> {
    crate::registry::registry()
        .iter()
        .filter(|s| s.phi)
        .map(|s| s.path())
        .collect()
}

/// The first of `urls` that reaches another machine without TLS, by its host.
pub(crate) fn plaintext_remote<'a>(urls: impl IntoIterator<Item = &'a String>) -> Option<String> {
    urls.into_iter().find_map(|url| {
        let info = redis::IntoConnectionInfo::into_connection_info(url.as_str()).ok()?;
        match info.addr() {
            redis::ConnectionAddr::Tcp(host, _) => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let local = host.eq_ignore_ascii_case("localhost")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                (!local).then(|| host.to_owned())
            }
            _ => None,
        }
    })
}

impl PhiHooks {
    /// Fails closed: protected functions are linked in and nothing would seal their values.
    pub(crate) fn check(&self) -> Result<(), BuildError> {
        let protected = protected_functions();
        if protected.is_empty() {
            return Ok(());
        }
        if self.sealer.is_none() {
            return Err(BuildError::PhiWithoutEncryption {
                functions: protected,
            });
        }
        if self.hasher.is_none() {
            return Err(BuildError::PhiWithoutHashKey {
                functions: protected,
            });
        }
        Ok(())
    }

    /// Appends the keyed hash of `id`. Without a hasher (only a disabled cache has none), a
    /// per-process random key is used: never the plaintext, never useful across processes.
    pub(crate) fn write_id_hash(&self, id: &[u8], out: &mut String) {
        match &self.hasher {
            Some(h) => h.write_hash(id, out),
            None => {
                use sha2::{Digest, Sha256};
                static PROCESS_KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
                let key = PROCESS_KEY.get_or_init(|| {
                    let mut k = [0u8; 32];
                    crate::random::fill(&mut k);
                    k
                });
                let digest = Sha256::new().chain_update(key).chain_update(id).finalize();
                for b in &digest[..16] {
                    let _ = write!(out, "{b:02x}");
                }
            }
        }
    }

    /// Records one event in every sink; `key` is recorded as its keyed hash.
    pub(crate) fn record(&self, record: Audit<'_>) {
        let Audit {
            function,
            operation,
            outcome,
            key,
            count,
        } = record;
        if self.audit.is_empty() {
            return;
        }
        let mut hashed = String::with_capacity(32);
        self.write_id_hash(key.as_bytes(), &mut hashed);
        let event = AuditEvent {
            time_ms: crate::clock::now_ms(),
            function: function.to_owned(),
            operation,
            outcome,
            key: hashed,
            actor: current_actor(),
            count,
        };
        for sink in &self.audit {
            sink.record(&event);
        }
    }
}
