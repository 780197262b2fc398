//! The in-process tier in front of Redis (L1): copies of fresh entries, kept coherent with
//! every process through the backplane.
//!
//! - A copy is the entry's bytes as the store holds them (sealed, for protected functions),
//!   plus, for values that can be cloned, the decoded value, made on the first hit: an L1 hit
//!   of a cloneable value decodes nothing.
//! - A copy is served only while its [`Stamp`] matches (no invalidation came after the read it
//!   was made from), before its own deadline (the entry's freshness, capped by the function's
//!   `l1` TTL), and while the backplane is known to carry every message (see
//!   [`backplane`]): otherwise the call reads the store, as without L1.
//! - Bounded in bytes (`CACHE_L1_MAX_SIZE_MB`) by `quick_cache`, whose read path is a hash
//!   lookup under a shard's read lock.

pub(crate) mod backplane;
mod message;
mod stamps;

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

pub(crate) use self::message::Notice;
pub(crate) use self::stamps::Stamp;
use self::stamps::Stamps;

/// How long L1 stays usable after the last proof that the backplane carries every message
/// (this process's own message coming back), by default: the longest another process's
/// invalidation can go unseen here, even when the channel fails silently
/// ([`CacheBuilder::l1_propagation_bound`](crate::CacheBuilder::l1_propagation_bound)).
pub const L1_PROPAGATION_BOUND: Duration = Duration::from_millis(500);

/// One kept copy.
pub(crate) struct Copy {
    /// The entry as stored.
    pub bytes: Bytes,
    /// The decoded value of a cloneable outcome, made on first use.
    pub decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
    /// Served until (unix ms).
    until_ms: u64,
    stamp: Stamp,
    tag_stripes: Box<[u16]>,
    /// The tags the entry carries: served only to calls with these very tags, as the store's
    /// entry would be (two functions sharing a key may tag it differently).
    tags: Box<[String]>,
}

impl Copy {
    /// Whether this copy carries exactly `tags`.
    pub fn tagged<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        self.tags.len() == tags.len() && self.tags.iter().zip(tags).all(|(a, b)| a == b.as_ref())
    }
}

#[derive(Clone)]
struct Weigh;

impl quick_cache::Weighter<String, Arc<Copy>> for Weigh {
    fn weight(&self, key: &String, copy: &Arc<Copy>) -> u64 {
        // The bytes, the key, and the bookkeeping around them.
        (key.len() + copy.bytes.len() + 128) as u64
    }
}

/// The L1 tier of one cache.
pub(crate) struct L1 {
    copies: quick_cache::sync::Cache<String, Arc<Copy>, Weigh>,
    stamps: Stamps,
    /// Copies may be served until (unix ms): the backplane moves it forward each time it
    /// proves the channel, and to 0 when the channel is lost.
    usable_until_ms: AtomicU64,
    /// Who this cache is on the backplane.
    pub id: u64,
    /// How long a proof of the channel lasts.
    bound: Duration,
    pub(crate) backplane: backplane::Handle,
    /// The cache's clock, which copies' deadlines are in; `usable_until_ms` is in wall-clock
    /// time (proofs compare times sent between processes).
    clock: crate::clock::Clock,
}

impl std::fmt::Debug for L1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1")
            .field("copies", &self.copies.len())
            .field("bytes", &self.copies.weight())
            .field("usable", &self.usable())
            .finish()
    }
}

impl L1 {
    pub fn new(max_bytes: u64, channel: String, bound: Duration, clock: crate::clock::Clock) -> L1 {
        let estimated = (max_bytes / 1024).clamp(16, 1 << 20) as usize;
        L1 {
            copies: quick_cache::sync::Cache::with_weighter(estimated, max_bytes, Weigh),
            stamps: Stamps::new(),
            usable_until_ms: AtomicU64::new(0),
            id: u64::from_le_bytes(crate::random::token8()),
            bound,
            // Five proofs per bound: a message lost or late by one heartbeat costs no gap.
            backplane: backplane::Handle::new(channel, (bound / 5).max(Duration::from_millis(2))),
            clock,
        }
    }

    /// Whether copies may be served (and kept) now.
    pub fn usable(&self) -> bool {
        let until = self.usable_until_ms.load(Ordering::Acquire);
        crate::clock::now_ms_for(until) < until
    }

    /// The stamp of a call on `key` with `tags`, to take before its read.
    pub fn stamp<S: AsRef<str>>(&self, key: &str, tags: &[S]) -> Stamp {
        let stripes: Vec<u16> = tags
            .iter()
            .map(|t| self.stamps.tag_stripe(t.as_ref()))
            .collect();
        self.stamps.stamp(self.stamps.key_stripe(key), &stripes)
    }

    /// The copy of `key`, if it may be served now.
    pub fn get(&self, key: &str) -> Option<Arc<Copy>> {
        let usable_until = self.usable_until_ms.load(Ordering::Acquire);
        if usable_until == 0 {
            return None;
        }
        let copy = self.copies.get(key)?;
        // One clock reading for both deadlines, on the cache's clock.
        let until = usable_until
            .saturating_add(self.clock.offset_ms())
            .min(copy.until_ms);
        if self.clock.now_ms_for(until) >= until {
            return None;
        }
        self.stamps
            .holds(&copy.stamp, &copy.tag_stripes)
            .then_some(copy)
    }

    /// Keeps `bytes` (a fresh entry read from the store) for `key` until `until_ms`, if no
    /// invalidation came since `stamp` was taken.
    pub fn keep<S: AsRef<str>>(
        &self,
        key: &str,
        bytes: Bytes,
        until_ms: u64,
        stamp: Stamp,
        tags: &[S],
    ) {
        if !self.usable() {
            return;
        }
        let tag_stripes: Box<[u16]> = tags
            .iter()
            .map(|t| self.stamps.tag_stripe(t.as_ref()))
            .collect();
        if !self.stamps.holds(&stamp, &tag_stripes) || self.stamps.pattern_since(&stamp) {
            return;
        }
        // A key or tag invalidation between the check and the insert bumps after it: the copy
        // is then kept but never matches. A pattern removes what matches after its bump: a
        // copy inserted before that removal goes with it, one inserted after is seen here.
        let copy = Arc::new(Copy {
            bytes,
            decoded: OnceLock::new(),
            until_ms,
            stamp,
            tag_stripes,
            tags: tags.iter().map(|t| t.as_ref().to_owned()).collect(),
        });
        self.copies.insert(key.to_owned(), copy.clone());
        if self.stamps.pattern_since(&stamp) {
            self.copies.remove_if(key, |kept| Arc::ptr_eq(kept, &copy));
        }
    }

    /// Applies a notice: the copies it covers are never served again, and the bytes of
    /// removed keys (and of everything, for `All`) are dropped from memory at once.
    pub fn forget(&self, notice: &Notice) {
        match notice {
            Notice::Keys(keys) => {
                for key in keys {
                    self.stamps.bump_key(key);
                    self.copies.remove(key.as_str());
                }
            }
            Notice::Tags(tags) => tags.iter().for_each(|t| self.stamps.bump_tag(t)),
            Notice::Patterns(patterns) => {
                self.stamps.bump_patterns();
                self.copies.retain(|key, _| {
                    !patterns
                        .iter()
                        .any(|p| crate::store::glob::glob_match(p.as_bytes(), key.as_bytes()))
                });
            }
            Notice::Event { .. } => {}
        }
    }

    /// Every copy goes.
    pub fn forget_all(&self) {
        self.stamps.bump_all();
        self.copies.clear();
    }

    /// The channel is lost: nothing is served or kept until it is proven again.
    pub fn suspend(&self) {
        self.usable_until_ms.store(0, Ordering::Release);
        self.forget_all();
    }

    /// The channel carried everything published before `sent_ms` (this process's own message,
    /// sent then, came back).
    pub fn proven(&self, sent_ms: u64) {
        let until = sent_ms.saturating_add(crate::clock::millis(self.bound));
        self.usable_until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// How many copies, and their weight in bytes.
    pub fn size(&self) -> (usize, u64) {
        (self.copies.len(), self.copies.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l1() -> L1 {
        let l1 = L1::new(
            1 << 20,
            "c".into(),
            L1_PROPAGATION_BOUND,
            Default::default(),
        );
        l1.proven(crate::clock::now_ms());
        l1
    }

    fn far() -> u64 {
        crate::clock::now_ms() + 60_000
    }

    #[test]
    fn a_copy_is_served_until_an_invalidation_covers_it() {
        let l1 = l1();
        let tags = ["users"];
        let stamp = l1.stamp("user:1", &tags);
        l1.keep("user:1", Bytes::from_static(b"v1"), far(), stamp, &tags);
        let copy = l1.get("user:1").unwrap();
        assert!(copy.tagged(&tags));
        assert!(!copy.tagged(&["users", "admins"]) && !copy.tagged::<&str>(&[]));
        l1.forget(&Notice::Tags(vec!["users".into()]));
        assert!(l1.get("user:1").is_none(), "tag invalidation");

        let stamp = l1.stamp("user:1", &tags);
        l1.keep("user:1", Bytes::from_static(b"v2"), far(), stamp, &tags);
        assert_eq!(&l1.get("user:1").unwrap().bytes[..], b"v2");
        l1.forget(&Notice::Keys(vec!["user:1".into()]));
        assert!(l1.get("user:1").is_none(), "key invalidation");

        let stamp = l1.stamp("user:1", &tags);
        l1.keep("user:1", Bytes::from_static(b"v3"), far(), stamp, &tags);
        let other = l1.stamp("post:1", &tags);
        l1.keep("post:1", Bytes::from_static(b"p"), far(), other, &tags);
        l1.forget(&Notice::Patterns(vec!["user:*".into()]));
        assert!(l1.get("user:1").is_none(), "a pattern");
        assert!(
            l1.get("post:1").is_some(),
            "a copy the pattern does not match stays"
        );
        let late = l1.stamp("user:2", &tags);
        l1.forget(&Notice::Patterns(vec!["nothing:*".into()]));
        l1.keep("user:2", Bytes::from_static(b"v"), far(), late, &tags);
        assert!(
            l1.get("user:2").is_none(),
            "read before a pattern, kept after it"
        );
        l1.forget_all();
        assert!(l1.get("post:1").is_none(), "everything");
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_never_kept() {
        let l1 = l1();
        let none: [&str; 0] = [];
        let stamp = l1.stamp("k", &none);
        // The invalidation lands between the read and the keep.
        l1.forget(&Notice::Keys(vec!["k".into()]));
        l1.keep("k", Bytes::from_static(b"old"), far(), stamp, &none);
        assert!(l1.get("k").is_none());
    }

    #[test]
    fn nothing_is_served_past_its_deadline_or_without_a_proven_channel() {
        let l1 = l1();
        let none: [&str; 0] = [];
        let stamp = l1.stamp("k", &none);
        l1.keep(
            "k",
            Bytes::from_static(b"v"),
            crate::clock::now_ms(),
            stamp,
            &none,
        );
        assert!(l1.get("k").is_none(), "past its deadline");

        let stamp = l1.stamp("k", &none);
        l1.keep("k", Bytes::from_static(b"v"), far(), stamp, &none);
        assert!(l1.get("k").is_some());
        l1.suspend();
        assert!(l1.get("k").is_none(), "channel lost");
        l1.proven(crate::clock::now_ms());
        assert!(
            l1.get("k").is_none(),
            "what was kept before the loss stays gone"
        );

        let never = L1::new(
            1 << 20,
            "c".into(),
            L1_PROPAGATION_BOUND,
            Default::default(),
        );
        let stamp = never.stamp("k", &none);
        never.keep("k", Bytes::from_static(b"v"), far(), stamp, &none);
        assert!(never.get("k").is_none(), "never proven");
    }
}
