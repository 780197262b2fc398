//! Random bytes for tombstones, tag versions and tokens.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Fills `buf` from the operating system's generator. Should that fail (it does not on the
/// platforms Redis clients run on), falls back to a per-process counter mixed by std's randomly
/// keyed SipHash: still unique within and, with overwhelming likelihood, across processes.
pub(crate) fn fill(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Relaxed));
        h.write_u32(std::process::id());
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
}

/// A uniform number in (0, 1], cheap enough for the hit path: a per-thread xorshift seeded
/// from the operating system.
pub(crate) fn unit() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(u64::from_le_bytes(token8()) | 1);
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    })
}

/// A random 64-bit token.
pub(crate) fn token8() -> [u8; 8] {
    let mut b = [0u8; 8];
    fill(&mut b);
    b
}
