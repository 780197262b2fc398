//! Protected data on the handle: the hashes identifiers take in key names, audit records, and
//! the audited invalidations of `#[invalidate_patient_cache]`.

use super::{Cache, Invalidation};
use crate::key::{KeyPart, KeyWriter};
use crate::phi::{Audit, AuditOperation};

impl Cache {
    /// The keyed hash an identifier takes in key names of protected functions (`patient =
    /// ".."` parameters): for building keys, tags and patterns by hand that match theirs. The
    /// identifier is rendered as a key part first (escaped), as the macros render it.
    pub fn hash_id(&self, id: &str) -> String {
        let mut rendered = String::with_capacity(id.len());
        id.write_key_part(&mut KeyWriter::new(&mut rendered));
        let mut out = String::with_capacity(32);
        self.write_id_hash(rendered.as_bytes(), &mut out);
        out
    }

    /// Whether identifiers are hashed under a configured key (`CACHE_HASH_KEY`,
    /// [`CacheBuilder::id_hasher`](crate::CacheBuilder::id_hasher)). Without one,
    /// [`hash_id`](Self::hash_id) uses a key of this process only: its hashes match no other
    /// process's keys (and none of this process's after a restart).
    pub fn hashes_ids(&self) -> bool {
        self.inner.phi.hasher.is_some()
    }

    /// Appends the keyed hash of an identifier already rendered as a key part.
    pub(crate) fn write_id_hash(&self, rendered: &[u8], out: &mut String) {
        self.inner.phi.write_id_hash(rendered, out);
    }

    /// Records an audit event for protected data through this cache's audit sinks, for code
    /// that touches protected entries outside the macros (the healthcare helpers do). `key` is
    /// recorded as its keyed hash, never as given; `count` is how many entries were affected,
    /// where known.
    ///
    /// ```
    /// use cache_runtime::{AuditOperation, Cache};
    ///
    /// let cache = Cache::builder().build().unwrap();
    /// cache.audit("clinic::export", AuditOperation::Invalidate, "ok", "phi:patient:*", Some(3));
    /// ```
    pub fn audit(
        &self,
        function: &str,
        operation: AuditOperation,
        outcome: &'static str,
        key: &str,
        count: Option<u64>,
    ) {
        self.inner.phi.record(Audit {
            function,
            operation,
            outcome,
            key,
            count,
            erasure: None,
        });
    }

    /// Records the audit event of an erasure, carrying its receipt (`count` is what it
    /// removed).
    pub fn audit_erasure(
        &self,
        function: &str,
        operation: AuditOperation,
        key: &str,
        receipt: &crate::Erasure,
    ) {
        self.inner.phi.record(Audit {
            function,
            operation,
            outcome: if receipt.residual == 0 {
                "ok"
            } else {
                "residual_removed"
            },
            key,
            count: Some(receipt.removed),
            erasure: Some(*receipt),
        });
    }

    /// Applies the invalidation of an `#[invalidate]` call (audited when `protected`: an
    /// `#[invalidate_patient_cache]`). Failures are logged and counted, never returned: the
    /// function's own result stands.
    pub(crate) async fn invalidate_after_call(
        &self,
        function: &'static str,
        inv: &Invalidation,
        protected: bool,
    ) {
        if self.inner.disabled || inv.is_empty() {
            return;
        }
        let (outcome, count) = match self.apply(inv).await {
            Ok(report) => ("ok", Some(report.keys + report.pattern_keys)),
            Err(e) => {
                self.count_error(None);
                tracing::warn!(target: "cachette", function, error = %e, "invalidation failed");
                ("store_error", None)
            }
        };
        if protected {
            let what = [&inv.keys[..], &inv.tags[..], &inv.patterns[..]]
                .concat()
                .join(" ");
            self.audit(function, AuditOperation::Invalidate, outcome, &what, count);
        }
    }
}
