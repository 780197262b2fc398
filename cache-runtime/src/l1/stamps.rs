//! Generations: how an in-process copy knows that an invalidation came after the read it was
//! made from, without a list of copies to visit.
//!
//! Every invalidation applied in this process (its own, or another process's through the
//! backplane) bumps a counter: one for everything (a lost message), one per stripe of keys,
//! one per stripe of tags, and one for patterns (which only reads in flight check: kept
//! copies that match a pattern are removed instead, so that the others stay). A call takes a [`Stamp`] of its key's and tags'
//! counters *before* it reads the store; a copy is kept with that stamp and served only while
//! the counters still say the same. An invalidation bumps after the store took it, so a read
//! that began after the bump saw the invalidated state, and a copy made from a read that
//! began before it never matches again. Stripes are shared by many keys (or tags): a bump
//! costs the others a miss, never a stale hit.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes of keys: 64 KiB of counters.
const KEY_STRIPES: usize = 8192;
/// Stripes of tags.
const TAG_STRIPES: usize = 1024;

/// What the counters said before a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    global: u64,
    patterns: u64,
    key: u64,
    /// The sum of the call's tag stripes: counters only grow, so the sum changes whenever one
    /// of them does.
    tags: u64,
    key_stripe: u32,
}

pub(crate) struct Stamps {
    global: AtomicU64,
    patterns: AtomicU64,
    keys: Box<[AtomicU64]>,
    tags: Box<[AtomicU64]>,
    hasher: std::hash::RandomState,
}

impl Stamps {
    pub fn new() -> Stamps {
        let counters = |n| (0..n).map(|_| AtomicU64::new(0)).collect();
        Stamps {
            global: AtomicU64::new(0),
            patterns: AtomicU64::new(0),
            keys: counters(KEY_STRIPES),
            tags: counters(TAG_STRIPES),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn stripe(&self, s: &str, n: usize) -> usize {
        let mut h = self.hasher.build_hasher();
        s.hash(&mut h);
        (std::hash::Hasher::finish(&h) as usize) % n
    }

    pub fn key_stripe(&self, key: &str) -> u32 {
        self.stripe(key, KEY_STRIPES) as u32
    }

    pub fn tag_stripe(&self, tag: &str) -> u16 {
        self.stripe(tag, TAG_STRIPES) as u16
    }

    /// The stamp of `key` with the tags in `tag_stripes`, now.
    pub fn stamp(&self, key_stripe: u32, tag_stripes: &[u16]) -> Stamp {
        // Acquire pairs with the bumps' release: a read that follows sees what the store
        // held when the invalidation that bumped had been applied.
        Stamp {
            global: self.global.load(Ordering::Acquire),
            patterns: self.patterns.load(Ordering::Acquire),
            key: self.keys[key_stripe as usize].load(Ordering::Acquire),
            tags: tag_stripes
                .iter()
                .map(|&t| self.tags[t as usize].load(Ordering::Acquire))
                .fold(0u64, u64::wrapping_add),
            key_stripe,
        }
    }

    pub fn bump_key(&self, key: &str) {
        self.keys[self.key_stripe(key) as usize].fetch_add(1, Ordering::AcqRel);
    }

    pub fn bump_tag(&self, tag: &str) {
        self.tags[self.tag_stripe(tag) as usize].fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `stamp` still holds for a copy: everything but patterns, which remove the
    /// copies they match.
    pub fn holds(&self, stamp: &Stamp, tag_stripes: &[u16]) -> bool {
        let now = self.stamp(stamp.key_stripe, tag_stripes);
        Stamp {
            patterns: stamp.patterns,
            ..now
        } == *stamp
    }

    /// Whether a pattern was invalidated since `stamp`.
    pub fn pattern_since(&self, stamp: &Stamp) -> bool {
        self.patterns.load(Ordering::Acquire) != stamp.patterns
    }

    pub fn bump_patterns(&self) {
        self.patterns.fetch_add(1, Ordering::AcqRel);
    }

    pub fn bump_all(&self) {
        self.global.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_bump_changes_the_stamps_it_covers() {
        let s = Stamps::new();
        let k = s.key_stripe("user:1");
        let tags = [s.tag_stripe("users")];
        let before = s.stamp(k, &tags);
        assert_eq!(before, s.stamp(k, &tags));
        s.bump_key("user:1");
        let after_key = s.stamp(k, &tags);
        assert_ne!(before, after_key);
        s.bump_tag("users");
        let after_tag = s.stamp(k, &tags);
        assert_ne!(after_key, after_tag);
        s.bump_all();
        assert_ne!(after_tag, s.stamp(k, &tags));
    }
}
