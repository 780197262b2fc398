//! The value the Redis and memory rows cache: an id and a body of pseudo-random printable ASCII,
//! sized so that its postcard encoding is exactly `id` bytes.

use serde::{Deserialize, Serialize};

/// The cached value of the hit rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// Also the size of the postcard encoding, in bytes.
    pub id: u64,
    /// Printable ASCII.
    pub body: String,
}

/// The value for `id`: deterministic, and `id` bytes long in postcard.
pub fn make_payload(id: u64) -> Payload {
    let target = usize::try_from(id).expect("a small size");
    let chars = random_ascii(id, target);
    // The varint lengths make the overhead depend on the body length: find the body that fits.
    for len in (0..=target).rev() {
        let candidate = Payload {
            id,
            body: chars[..len].to_owned(),
        };
        if postcard::to_allocvec(&candidate).expect("encodes").len() == target {
            return candidate;
        }
    }
    panic!("no body length gives a {target}-byte encoding");
}

/// `n` characters of deterministic pseudo-random printable ASCII.
pub fn random_ascii(seed: u64, n: usize) -> String {
    let mut rng = TextRng::new(seed);
    (0..n)
        .map(|_| char::from(b' ' + (rng.next() % 95) as u8))
        .collect()
}

/// xorshift64* (the high 32 bits of each output): the generator of the values' text.
pub struct TextRng(u64);

impl TextRng {
    /// A generator seeded from `seed`.
    pub fn new(seed: u64) -> Self {
        TextRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 32 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32
    }

    /// One of `from`, at random.
    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() as usize) % from.len()]
    }
}
