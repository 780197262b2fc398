//! Invalidation: keys, tags, patterns, `clear`, and event rules.
//!
//! - A key is replaced by a *tombstone* rather than deleted, and cached writes are conditional
//!   on the key still holding what their lookup saw: a load that was in flight when the key was
//!   invalidated cannot write its (older) value afterwards.
//! - A tag is one key holding a random *version*. Entries record their tags' versions as read
//!   before their load; invalidating a tag gives it a new version, which makes every entry that
//!   recorded an older one dead, in one O(1) write, with no index of members to maintain.
//! - A pattern is expanded with SCAN + UNLINK in batches, never KEYS.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::Cache;
use super::pending::Backlog;
use crate::error::{CacheError, StoreError};
use crate::l1::Notice;
use crate::store::Deleted;
use crate::store::Store as _;

/// What to invalidate: keys, tags and glob patterns (all without the cache's prefix).
///
/// ```
/// use cache_runtime::Invalidation;
///
/// let inv = Invalidation::tags(["doctors"]).and_keys(["doctor:17"]);
/// assert_eq!(inv.keys, ["doctor:17"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Invalidation {
    /// Exact keys.
    pub keys: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Redis glob patterns.
    pub patterns: Vec<String>,
}

impl Invalidation {
    /// Nothing to invalidate.
    pub fn none() -> Self {
        Self::default()
    }

    /// These keys.
    pub fn keys<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        Self::default().and_keys(keys)
    }

    /// These tags.
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(tags: I) -> Self {
        Self::default().and_tags(tags)
    }

    /// These patterns.
    pub fn patterns<I: IntoIterator<Item = S>, S: Into<String>>(patterns: I) -> Self {
        Self::default().and_patterns(patterns)
    }

    /// Adds keys.
    #[must_use]
    pub fn and_keys<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Adds tags.
    #[must_use]
    pub fn and_tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Adds patterns.
    #[must_use]
    pub fn and_patterns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, patterns: I) -> Self {
        self.patterns.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.tags.is_empty() && self.patterns.is_empty()
    }
}

/// What an [`Invalidation`] removed, where that is knowable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidationReport {
    /// Keys that held a value.
    pub keys: u64,
    /// Tags invalidated (how many entries carried them is not tracked, by design).
    pub tags: u64,
    /// Keys removed by patterns.
    pub pattern_keys: u64,
    /// Keys the patterns matched when scanned (those removed, and tombstones, which stay).
    pub scanned: u64,
}

/// What an erasure did ([`Cache::erase`]): the receipt of a deletion that must be shown to
/// have happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Erasure {
    /// Keys removed: the invalidation's keys that held a value, and every key its patterns
    /// matched.
    pub removed: u64,
    /// Keys the patterns matched, over both scans.
    pub scanned: u64,
    /// Keys a second scan still found matching a pattern after the first removed them
    /// (written meanwhile); removed too. 0 when the erasure was complete at once.
    pub residual: u64,
}

type Rule = Arc<dyn Fn(&serde_json::Value) -> Invalidation + Send + Sync>;

/// The event rules of a cache.
#[derive(Default)]
pub(crate) struct Rules {
    by_event: RwLock<HashMap<String, Vec<Rule>>>,
}

impl Cache {
    /// Invalidates `key`: it reads as a miss from now on, and a load of it that is in flight
    /// cannot write its value afterwards. Returns whether the key held a value.
    ///
    /// When the store cannot be reached, the invalidation is kept and applied before the next
    /// read that reaches it (see [`health`](Self::health)), and the error is returned.
    pub async fn invalidate(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.invalidate_many(&[key]).await? > 0)
    }

    /// Invalidates every key in `keys` in one round trip; returns how many held a value.
    pub async fn invalidate_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64, CacheError> {
        let keys: Vec<String> = keys.iter().map(|k| k.as_ref().to_owned()).collect();
        Ok(self.apply(&Invalidation::keys(keys)).await?.keys)
    }

    /// Invalidates every entry carrying `tag`, including entries whose load is in flight. O(1):
    /// one write, whatever the number of entries.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<(), CacheError> {
        self.invalidate_tags(&[tag]).await
    }

    /// Invalidates every entry carrying any of `tags`, in one round trip.
    pub async fn invalidate_tags<T: AsRef<str>>(&self, tags: &[T]) -> Result<(), CacheError> {
        let tags: Vec<String> = tags.iter().map(|t| t.as_ref().to_owned()).collect();
        self.apply(&Invalidation::tags(tags)).await.map(|_| ())
    }

    /// Removes every key of this cache matching the Redis glob `pattern` (without the prefix),
    /// with SCAN and batched UNLINK, but the tombstones of key invalidations (see
    /// [`clear`](Self::clear)); returns how many. Build patterns from arguments with
    /// [`escape`](crate::escape), so that an id of `*` matches only itself.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        Ok(self
            .apply(&Invalidation::patterns([pattern]))
            .await?
            .pattern_keys)
    }

    async fn invalidate_keys_now(&self, keys: &[String]) -> Result<u64, StoreError> {
        let full: Vec<String> = keys.iter().map(|k| self.full_key(k)).collect();
        self.inner
            .store
            .write_tombstones(&full, self.inner.tombstone_ttl)
            .await
    }

    async fn invalidate_tags_now(&self, tags: &[String]) -> Result<(), StoreError> {
        let keys: Vec<String> = tags.iter().map(|t| self.tag_key(t)).collect();
        self.inner
            .store
            .bump_versions(&keys, self.inner.tag_ttl)
            .await
    }

    /// Deletes the keys matching `pattern`, and first the leases of those keys: a load of a
    /// matching key that is in flight and found the key empty would write its (older) value
    /// after the deletion, and a key found empty is written only under a lease still held.
    /// (A load that writes and lets go of its lease before its lease is deleted has its entry
    /// deleted with the keys.)
    async fn invalidate_pattern_now(&self, pattern: &str) -> Result<Deleted, StoreError> {
        let full = self.full_pattern(pattern);
        let lease_prefix = self.lease_key("");
        let lease_prefix = lease_prefix.trim_end_matches('}');
        let mut leases = String::with_capacity(lease_prefix.len() * 2 + full.len() + 1);
        escape_glob_into(&mut leases, lease_prefix);
        leases.push_str(&full);
        leases.push('}');
        let store = &self.inner.store;
        store.delete_matching(&leases, &[]).await?;
        let [locks, fences] = self.lock_key_prefixes();
        store
            .delete_matching(&full, &[locks, fences, self.rate_limit_prefix()])
            .await
    }

    /// `pattern` under this cache's prefix (escaped).
    fn full_pattern(&self, pattern: &str) -> String {
        let mut full = String::with_capacity(self.inner.prefix.len() * 2 + pattern.len());
        escape_glob_into(&mut full, &self.inner.prefix);
        full.push_str(pattern);
        full
    }

    /// Removes every key under this cache's prefix (entries, tag versions, leases), but not the
    /// locks of [`lock`](Cache::lock) and their fencing counters (a holder keeps its lock, and
    /// fencing tokens never go backwards), nor the [rate limits](Cache::rate_limit) (clearing a
    /// cache hands out no fresh quotas), nor the tombstones of key invalidations, which stay
    /// until they expire: a load in flight is checked against them. Returns how many keys it
    /// removed.
    /// Never FLUSHDB: keys outside the prefix are untouched. A cache without a prefix on Redis
    /// refuses, since its keys cannot be told from other programs' keys.
    pub async fn clear(&self) -> Result<u64, CacheError> {
        if self.inner.prefix.is_empty()
            && !matches!(self.inner.store, crate::store::AnyStore::Memory(_))
        {
            return Err(CacheError::NoPrefix);
        }
        self.invalidate_pattern("*").await
    }

    /// Applies `inv` as [`apply`](Self::apply) does, then scans its patterns a second time to
    /// confirm that nothing matching them is left (removing what a write put back meanwhile),
    /// and returns the receipt: keys removed, keys scanned, and the residual the second scan
    /// found. In every process's L1, the copies the patterns match are removed as well.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use cache_runtime::{Cache, Invalidation};
    /// use std::time::Duration;
    ///
    /// let cache = Cache::builder().build().unwrap();
    /// cache.set("patient:7:records", &"...", Duration::from_secs(60)).await.unwrap();
    /// let receipt = cache.erase(&Invalidation::patterns(["patient:7:*"])).await.unwrap();
    /// assert_eq!((receipt.removed, receipt.residual), (1, 0));
    /// # }
    /// ```
    pub async fn erase(&self, inv: &Invalidation) -> Result<Erasure, CacheError> {
        let report = self.apply(inv).await?;
        let mut receipt = Erasure {
            removed: report.keys + report.pattern_keys,
            scanned: report.scanned,
            residual: 0,
        };
        for p in &inv.patterns {
            let again = self.invalidate_pattern_now(p).await?;
            receipt.scanned += again.scanned;
            receipt.residual += again.removed;
        }
        Ok(receipt)
    }

    /// Applies `inv`: keys, then tags, then patterns. What the store could not take is kept
    /// and applied before the next read that reaches it; the error is returned.
    pub async fn apply(&self, inv: &Invalidation) -> Result<InvalidationReport, CacheError> {
        // A malformed pattern refuses the whole invalidation before anything is applied or
        // queued: an outage must not turn bad input into a backlog entry that never drains.
        for pattern in &inv.patterns {
            crate::store::glob::check(pattern).map_err(|reason| CacheError::InvalidPattern {
                pattern: pattern.clone(),
                reason,
            })?;
        }
        // Nothing to apply or announce (an event with no rules in this process, say).
        if inv.is_empty() {
            return Ok(InvalidationReport::default());
        }
        // Older invalidations first, so that none is applied after a newer one.
        if let Err(e) = self.flush_pending().await {
            self.inner.pending.add(inv);
            return Err(e.into());
        }
        match self.apply_now(inv).await {
            Ok(report) => Ok(report),
            Err(e) => {
                self.inner.pending.add(inv);
                Err(e.into())
            }
        }
    }

    /// Applies `inv` to the store, then to this process's L1 (at once, whatever the store
    /// said: copies read before it must go) and, through the backplane, to every other
    /// process's (waiting until the server took the notice; if it did not, the invalidation
    /// goes to the backlog with the rest and is announced again).
    async fn apply_now(&self, inv: &Invalidation) -> Result<InvalidationReport, StoreError> {
        let applied = self.apply_to_store(inv).await;
        let Some(l1) = &self.inner.l1 else {
            return applied;
        };
        let mut notices = Vec::new();
        if !inv.keys.is_empty() {
            notices.push(Notice::Keys(
                inv.keys.iter().map(|k| self.full_key(k)).collect(),
            ));
        }
        if !inv.tags.is_empty() {
            notices.push(Notice::Tags(inv.tags.clone()));
        }
        if !inv.patterns.is_empty() {
            notices.push(Notice::Patterns(
                inv.patterns.iter().map(|p| self.full_pattern(p)).collect(),
            ));
        }
        notices.iter().for_each(|n| l1.forget(n));
        let report = applied?;
        l1.backplane.start(Arc::downgrade(&self.inner));
        let limit = self.command_timeout().saturating_mul(2);
        l1.backplane.announce(notices, limit).await?;
        Ok(report)
    }

    async fn apply_to_store(&self, inv: &Invalidation) -> Result<InvalidationReport, StoreError> {
        let mut report = InvalidationReport::default();
        if !inv.keys.is_empty() {
            report.keys = self.invalidate_keys_now(&inv.keys).await?;
        }
        if !inv.tags.is_empty() {
            self.invalidate_tags_now(&inv.tags).await?;
            report.tags = inv.tags.len() as u64;
        }
        for p in &inv.patterns {
            let done = self.invalidate_pattern_now(p).await?;
            report.pattern_keys += done.removed;
            report.scanned += done.scanned;
        }
        Ok(report)
    }

    /// Applies the invalidations queued while the store was unreachable. Until this succeeds,
    /// nothing is read from the store.
    pub(crate) async fn flush_pending(&self) -> Result<(), StoreError> {
        if self.inner.pending.is_empty() {
            return Ok(());
        }
        // Boxed: every call awaits this, and the applying future is kilobytes that a call's
        // own future would otherwise carry (and move) on every hit.
        Box::pin(self.apply_pending()).await
    }

    async fn apply_pending(&self) -> Result<(), StoreError> {
        // One applier at a time, each with one pass; the others run uncached meanwhile
        // rather than queue behind it (through an outage, each pass may cost a timeout).
        if self
            .inner
            .pending
            .lost
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(StoreError::BacklogLost);
        }
        let Ok(_applying) = self.inner.pending.applier.try_lock() else {
            return Err(StoreError::BacklogApplying);
        };
        let Some(backlog) = self.inner.pending.snapshot() else {
            return Ok(());
        };
        let applied = match &backlog {
            Backlog::Apply(inv, _) => self.apply_now(inv).await.map(|_| ()),
            // Clearing everything without a prefix would clear other programs' keys, and
            // dropping the backlog would serve what it invalidated: read nothing instead.
            Backlog::Clear(_) if self.inner.prefix.is_empty() => Err(StoreError::BacklogLost),
            Backlog::Clear(_) => self
                .apply_now(&Invalidation::patterns(["*"]))
                .await
                .map(|_| ()),
        };
        match applied {
            Ok(()) => {
                self.inner.pending.applied(&backlog);
                tracing::info!(target: "cachette", "invalidations queued during the outage applied");
                Ok(())
            }
            Err(e) if e.answered() && self.inner.pending.refused() => {
                // The store answers and keeps refusing (not an outage): retrying the same
                // backlog for ever would keep every call uncached. A clear of the prefix
                // covers it; refused too, the cache reads nothing (as without a prefix).
                match backlog {
                    Backlog::Apply(..) => {
                        tracing::error!(target: "cachette", error = %e, "the store keeps refusing the invalidations queued during an outage; clearing the prefix instead");
                        self.inner.pending.escalate();
                    }
                    Backlog::Clear(_) => {
                        tracing::error!(target: "cachette", error = %e, "the store keeps refusing to clear the prefix; reading nothing from it until restarted");
                        self.inner
                            .pending
                            .lost
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Adds a rule: when `event` is emitted, `rule` turns its payload into an invalidation.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use cache_runtime::{Cache, Invalidation};
    ///
    /// let cache = Cache::builder().build().unwrap();
    /// cache.on("doctor.updated", |p| {
    ///     Invalidation::tags(["doctors"]).and_keys([format!("doctor:{}", p["id"])])
    /// });
    /// let report = cache.emit("doctor.updated", &serde_json::json!({ "id": 17 })).await.unwrap();
    /// assert_eq!(report.tags, 1);
    /// # }
    /// ```
    pub fn on(
        &self,
        event: impl Into<String>,
        rule: impl Fn(&serde_json::Value) -> Invalidation + Send + Sync + 'static,
    ) {
        let mut rules = self
            .inner
            .events
            .by_event
            .write()
            .unwrap_or_else(|e| e.into_inner());
        rules.entry(event.into()).or_default().push(Arc::new(rule));
    }

    /// Emits `event`: applies every rule registered for it. With Redis the invalidation reaches
    /// every process sharing the store.
    pub async fn emit<P: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &P,
    ) -> Result<InvalidationReport, CacheError> {
        let payload = serde_json::to_value(payload).map_err(|e| CacheError::Encode {
            key: format!("event {event}"),
            reason: e.to_string(),
        })?;
        let report = self.apply(&self.rules_of(event, &payload)).await;
        if let Some(l1) = &self.inner.l1 {
            // The other processes run their own rules for it.
            let notice = Notice::Event {
                name: event.to_owned(),
                payload: payload.to_string(),
            };
            l1.backplane.start(Arc::downgrade(&self.inner));
            let limit = self.command_timeout().saturating_mul(2);
            if let Err(e) = l1.backplane.announce(vec![notice], limit).await {
                tracing::warn!(target: "cachette", event, error = %e, "the event did not reach the other processes");
                report?;
                return Err(e.into());
            }
        }
        report
    }

    /// What this process's rules for `event` invalidate.
    fn rules_of(&self, event: &str, payload: &serde_json::Value) -> Invalidation {
        let rules: Vec<Rule> = {
            let by_event = self
                .inner
                .events
                .by_event
                .read()
                .unwrap_or_else(|e| e.into_inner());
            by_event.get(event).cloned().unwrap_or_default()
        };
        let mut total = Invalidation::none();
        for rule in rules {
            let inv = rule(payload);
            total = total
                .and_keys(inv.keys)
                .and_tags(inv.tags)
                .and_patterns(inv.patterns);
        }
        total
    }

    /// Runs this process's rules for an event another process emitted.
    pub(crate) async fn run_rules_of(&self, event: &str, payload: &str) {
        let Ok(payload) = serde_json::from_str::<serde_json::Value>(payload) else {
            return;
        };
        let inv = self.rules_of(event, &payload);
        if inv.is_empty() {
            return;
        }
        if let Err(e) = self.apply(&inv).await {
            tracing::warn!(target: "cachette", event, error = %e, "rules of an event from another process failed; kept in the backlog");
        }
    }
}

/// Appends `s` with the Redis glob characters escaped by `\`.
fn escape_glob_into(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}
