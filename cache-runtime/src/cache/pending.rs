//! Invalidations that could not reach the store, kept until it is reachable again.
//!
//! An invalidation issued while Redis is down must not be forgotten: when Redis comes back,
//! the entries it named would otherwise be served again. Failed invalidations are merged into
//! one bounded set (a key, tag or pattern queued twice is kept once); every call path applies
//! the set before it reads, and reads nothing from the store until it has. Past the bound, the
//! queue gives up on details and the cache clears its whole prefix on recovery instead.
//!
//! Each item carries the stamp of its latest queuing: an application removes only what was
//! queued before its snapshot, so an invalidation queued again while the same item is being
//! applied (it may come after the write that applies it) stays queued.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::Invalidation;

/// Queued items, each with the stamp of its latest queuing.
#[derive(Default)]
struct Set {
    keys: BTreeMap<String, u64>,
    tags: BTreeMap<String, u64>,
    patterns: BTreeMap<String, u64>,
    /// Too many to keep: clear everything on recovery. The stamp of the latest invalidation
    /// the clear must cover.
    overflow: Option<u64>,
    /// The stamp of the latest queuing.
    stamp: u64,
}

impl Set {
    fn len(&self) -> usize {
        self.keys.len() + self.tags.len() + self.patterns.len()
    }

    /// Forgets what was queued at or before `upto`.
    fn remove_upto(&mut self, upto: u64) {
        self.keys.retain(|_, s| *s > upto);
        self.tags.retain(|_, s| *s > upto);
        self.patterns.retain(|_, s| *s > upto);
    }
}

/// How many times in a row the store may refuse the backlog before it is escalated.
pub(crate) const REFUSALS: u32 = 3;

/// What to apply on recovery, and the stamp of the latest queuing it covers.
pub(crate) enum Backlog {
    /// These invalidations.
    Apply(Invalidation, u64),
    /// Everything under the prefix.
    Clear(u64),
}

pub(crate) struct Pending {
    set: Mutex<Set>,
    /// Held by the one caller applying the backlog; the others run uncached meanwhile.
    pub(crate) applier: tokio::sync::Mutex<()>,
    /// Failed applications in a row in which the store answered (with an error): a backlog
    /// the store keeps refusing is escalated, never retried for ever.
    refused: std::sync::atomic::AtomicU32,
    /// The store refused even the clear: nothing is read from it until the process restarts.
    pub(crate) lost: AtomicBool,
    /// Whether anything is queued; read on every call, so an atomic rather than the lock.
    any: AtomicBool,
    limit: usize,
    pub(crate) queued: AtomicU64,
    pub(crate) overflows: AtomicU64,
}

impl Pending {
    pub(crate) fn new(limit: usize) -> Self {
        Pending {
            set: Mutex::new(Set::default()),
            applier: tokio::sync::Mutex::new(()),
            refused: std::sync::atomic::AtomicU32::new(0),
            lost: AtomicBool::new(false),
            any: AtomicBool::new(false),
            limit: limit.max(1),
            queued: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Relaxed)
    }

    pub(crate) fn len(&self) -> usize {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Queues `inv`. An empty one queues nothing: marked as queued with nothing to apply, the
    /// backlog would never drain, and every read would wait for it.
    pub(crate) fn add(&self, inv: &Invalidation) {
        if inv.is_empty() {
            return;
        }
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        self.queued.fetch_add(1, Relaxed);
        set.stamp += 1;
        let stamp = set.stamp;
        if set.overflow.is_some() {
            set.overflow = Some(stamp);
        } else {
            set.keys.extend(inv.keys.iter().map(|k| (k.clone(), stamp)));
            set.tags.extend(inv.tags.iter().map(|t| (t.clone(), stamp)));
            set.patterns
                .extend(inv.patterns.iter().map(|p| (p.clone(), stamp)));
            if set.len() > self.limit {
                *set = Set {
                    overflow: Some(stamp),
                    stamp,
                    ..Set::default()
                };
                self.overflows.fetch_add(1, Relaxed);
                tracing::error!(
                    target: "cachette",
                    limit = self.limit,
                    "too many invalidations queued while the store is unreachable; the whole \
                     prefix will be cleared when it is back"
                );
            }
        }
        self.any.store(true, Relaxed);
    }

    /// A copy of the backlog. It stays queued until [`applied`](Self::applied) removes it, so
    /// that a caller cancelled while applying it loses nothing, and every reader meanwhile
    /// applies it too (invalidating twice is harmless).
    pub(crate) fn snapshot(&self) -> Option<Backlog> {
        if self.is_empty() {
            return None;
        }
        let set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        if set.overflow.is_some() {
            return Some(Backlog::Clear(set.stamp));
        }
        if set.len() == 0 {
            return None;
        }
        Some(Backlog::Apply(
            Invalidation::keys(set.keys.keys().cloned())
                .and_tags(set.tags.keys().cloned())
                .and_patterns(set.patterns.keys().cloned()),
            set.stamp,
        ))
    }

    /// Counts an application the store refused; `true` once it has refused
    /// [`REFUSALS`] in a row.
    pub(crate) fn refused(&self) -> bool {
        self.refused.fetch_add(1, Relaxed) + 1 >= REFUSALS
    }

    /// Gives up on the details: what is queued is replaced by a clear of the whole prefix,
    /// which covers it (and more).
    pub(crate) fn escalate(&self) {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = set.stamp;
        *set = Set {
            overflow: Some(stamp),
            stamp,
            ..Set::default()
        };
        self.refused.store(0, Relaxed);
        self.overflows.fetch_add(1, Relaxed);
        self.any.store(true, Relaxed);
    }

    /// Removes what `backlog` held, once applied; anything queued since its snapshot stays,
    /// the same items queued again included.
    pub(crate) fn applied(&self, backlog: &Backlog) {
        self.refused.store(0, Relaxed);
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        match backlog {
            Backlog::Clear(upto) => {
                if set.overflow.is_some_and(|s| s <= *upto) {
                    set.overflow = None;
                }
                set.remove_upto(*upto);
            }
            // Under an overflow, a clear is due: it covers these and more.
            Backlog::Apply(_, upto) if set.overflow.is_none() => set.remove_upto(*upto),
            Backlog::Apply(..) => return,
        }
        if set.len() == 0 && set.overflow.is_none() {
            self.any.store(false, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty invalidation (an event no rule of this process matched) whose announcement
    /// failed queued nothing but marked the backlog as queued: it never drained, and every
    /// read waited for it.
    #[test]
    fn an_empty_invalidation_queues_nothing() {
        let p = Pending::new(3);
        p.add(&Invalidation::default());
        assert!(p.is_empty());
        assert!(p.snapshot().is_none());
    }

    #[test]
    fn merges_and_overflows() {
        let p = Pending::new(3);
        assert!(p.is_empty());
        p.add(&Invalidation::keys(["a"]).and_tags(["t"]));
        p.add(&Invalidation::keys(["a"]));
        assert_eq!(p.len(), 2, "latest per key wins");
        let Some(backlog) = p.snapshot() else {
            panic!("a backlog")
        };
        let Backlog::Apply(inv, _) = &backlog else {
            panic!("details")
        };
        assert_eq!((inv.keys.len(), inv.tags.len()), (1, 1));
        assert!(
            !p.is_empty(),
            "kept until applied: a cancelled flush loses nothing"
        );
        p.add(&Invalidation::keys(["b"]));
        p.add(&Invalidation::keys(["a"]));
        p.applied(&backlog);
        assert_eq!(
            p.len(),
            2,
            "what came meanwhile stays, the same key queued again included"
        );

        p.add(&Invalidation::patterns(["x:*", "y:*", "z:*"]));
        let Some(clear) = p.snapshot() else { panic!() };
        assert!(
            matches!(clear, Backlog::Clear(_)),
            "over the bound: clear everything"
        );
        p.applied(&clear);
        assert!(p.is_empty() && p.snapshot().is_none());
    }

    #[test]
    fn what_is_queued_during_a_clear_stays() {
        let p = Pending::new(1);
        p.add(&Invalidation::keys(["a", "b"]));
        let Some(clear) = p.snapshot() else { panic!() };
        assert!(matches!(clear, Backlog::Clear(_)));
        p.add(&Invalidation::keys(["c"]));
        p.applied(&clear);
        assert!(
            matches!(p.snapshot(), Some(Backlog::Clear(_))),
            "queued after the clear's snapshot: another clear is due"
        );
        let Some(again) = p.snapshot() else { panic!() };
        p.applied(&again);
        assert!(p.is_empty() && p.snapshot().is_none());
    }
}
