//! The stored entry: a fixed header that carries the entry's own freshness, its tags, then the
//! payload.
//!
//! ```text
//! offset size
//!  0      1   format version (1)
//!  1      1   flags: bits 0-1 codec (0 postcard, 1 json), bit 2 deflate, bit 3 sealed,
//!             bit 4 LZ4 (at most one of bits 2 and 4), bit 5 shape
//!  2      8   created: unix ms when the load started (u64 LE)
//! 10      8   fresh until: unix ms (u64 LE)
//! 18      8   expires: unix ms (u64 LE)
//! 26      4   load time in µs (u32 LE, saturating)
//! (30     8   with bit 5: the shape of the value's type, `fingerprint.rs` (u64 LE); the
//!             offsets below move by 8)
//! 30      2   tag count (u16 LE), then per tag: name length (u16 LE) + UTF-8 name,
//!             version length (u8) + the tag's version as read before the load (empty: the tag
//!             was never invalidated)
//!  …          payload: the value in the codec, deflated when bit 2 is set, LZ4-compressed
//!             when bit 4 is (the original length as u32 LE, then one LZ4 block)
//! ```
//!
//! A *tombstone* (written by `invalidate(key)`) is one byte `0xFE` followed by 16 random bytes:
//! it reads as a miss, and a load that started before it cannot overwrite it.
//!
//! Everything a hit needs is in the entry, so a hit is one GET. Anything that does not parse
//! (another format version, a truncated header, a payload the codec rejects) is a decode error,
//! which callers treat as a miss.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, Codec, Compression};

pub(crate) const FORMAT_VERSION: u8 = 1;
const TOMBSTONE: u8 = 0xFE;
const TOMBSTONE_LEN: usize = 17;
const HEADER_LEN: usize = 30;
const FLAG_DEFLATE: u8 = 0b100;
const FLAG_SEALED: u8 = 0b1000;
const FLAG_LZ4: u8 = 0b1_0000;
const FLAG_SHAPE: u8 = 0b10_0000;
const CODEC_MASK: u8 = 0b11;

/// The timestamps an entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryTimes {
    /// Unix ms when the load that produced the value started.
    pub created_ms: u64,
    /// Unix ms until which the value is fresh.
    pub fresh_until_ms: u64,
    /// Unix ms at which the value expires.
    pub expires_ms: u64,
    /// How long the load took, in µs.
    pub load_micros: u32,
}

impl EntryTimes {
    /// The times of a value whose load started at `started_ms` and took `took`: fresh for
    /// `stale` (at most `ttl`), served for `ttl`.
    pub(crate) fn starting(
        started_ms: u64,
        took: Duration,
        ttl: Duration,
        stale: Duration,
    ) -> Self {
        use crate::clock::millis;
        EntryTimes {
            created_ms: started_ms,
            fresh_until_ms: started_ms.saturating_add(millis(stale.min(ttl))),
            expires_ms: started_ms.saturating_add(millis(ttl)),
            load_micros: u32::try_from(took.as_micros()).unwrap_or(u32::MAX),
        }
    }
}

/// How to encode one entry.
pub(crate) struct EncodeOptions<'a> {
    pub codec: Codec,
    /// Compress payloads of at least this many bytes; `None` never compresses.
    pub compress_above: Option<usize>,
    pub compression: Compression,
    /// The shape of the value's type, recorded so that a reader of another shape skips it.
    pub shape: Option<u64>,
    /// The deflate level.
    pub level: u32,
    /// Seal the payload (after compression).
    pub seal: Option<Seal<'a>>,
}

/// A sealer and the context a sealed payload is bound to: the full key and format version.
#[derive(Clone, Copy)]
pub(crate) struct Seal<'a> {
    pub sealer: &'a dyn crate::phi::Sealer,
    pub context: &'a [u8],
}

/// The context a value under `key` is sealed with.
pub(crate) fn seal_context(key: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(key.len() + 1);
    c.extend_from_slice(key.as_bytes());
    c.push(FORMAT_VERSION);
    c
}

/// A tag of an entry and the tag's version when the load started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagStamp<'a> {
    pub name: &'a str,
    pub version: &'a [u8],
}

/// A new tombstone: unique, so a conditional write can tell two invalidations apart.
pub(crate) fn tombstone() -> Vec<u8> {
    let mut t = vec![0u8; TOMBSTONE_LEN];
    t[0] = TOMBSTONE;
    crate::random::fill(&mut t[1..]);
    t
}

/// Whether `bytes` is a tombstone.
pub(crate) fn is_tombstone(bytes: &[u8]) -> bool {
    bytes.len() == TOMBSTONE_LEN && bytes[0] == TOMBSTONE
}

/// Encodes `value` with its header and tags.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    times: EntryTimes,
    tags: &[TagStamp<'_>],
    opts: &EncodeOptions<'_>,
) -> Result<Vec<u8>, String> {
    let tags_len: usize = tags
        .iter()
        .map(|t| 3 + t.name.len() + t.version.len())
        .sum();
    let mut out = Vec::with_capacity(HEADER_LEN + 2 + tags_len + 64);
    out.push(FORMAT_VERSION);
    out.push(opts.codec.id());
    out.extend_from_slice(&times.created_ms.to_le_bytes());
    out.extend_from_slice(&times.fresh_until_ms.to_le_bytes());
    out.extend_from_slice(&times.expires_ms.to_le_bytes());
    out.extend_from_slice(&times.load_micros.to_le_bytes());
    if let Some(shape) = opts.shape {
        out[1] |= FLAG_SHAPE;
        out.extend_from_slice(&shape.to_le_bytes());
    }
    let count = u16::try_from(tags.len()).map_err(|_| "more than 65535 tags".to_string())?;
    out.extend_from_slice(&count.to_le_bytes());
    for tag in tags {
        let name = tag.name.as_bytes();
        let len = u16::try_from(name.len()).map_err(|_| "a tag longer than 65535 bytes")?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name);
        let vlen = u8::try_from(tag.version.len()).map_err(|_| "a tag version over 255 bytes")?;
        out.push(vlen);
        out.extend_from_slice(tag.version);
    }
    let payload_at = out.len();
    let mut out = opts.codec.encode_into(value, out)?;
    if let Some(threshold) = opts.compress_above {
        let payload = &out[payload_at..];
        if payload.len() >= threshold {
            // Only keep the compressed form when it is actually smaller.
            let (small, flag) = match opts.compression {
                Compression::Lz4 => (codec::lz4(payload), FLAG_LZ4),
                Compression::Deflate => (codec::deflate(payload, opts.level), FLAG_DEFLATE),
            };
            if let Some(small) = small.filter(|small| small.len() < payload.len()) {
                out.truncate(payload_at);
                out.extend_from_slice(&small);
                out[1] |= flag;
            }
        }
    }
    if let Some(seal) = opts.seal {
        out[1] |= FLAG_SEALED;
        // The header (flags, times, tags) is authenticated with the payload: a sealed value
        // cannot be made fresh again, or stripped of a tag, by editing its header.
        let mut context = Vec::with_capacity(seal.context.len() + payload_at);
        context.extend_from_slice(seal.context);
        context.extend_from_slice(&out[..payload_at]);
        let sealed = seal.sealer.seal(&context, &out[payload_at..])?;
        out.truncate(payload_at);
        out.extend_from_slice(&sealed);
    }
    Ok(out)
}

/// A parsed entry whose payload has not been decoded yet.
#[derive(Debug)]
pub(crate) struct RawEntry<'a> {
    pub flags: u8,
    /// Everything before the payload: what sealing authenticates besides the key.
    header: &'a [u8],
    #[allow(dead_code)] // read by freshness checks and the admin listing
    pub times: EntryTimes,
    /// The shape of the value's type, when the writer recorded it.
    pub shape: Option<u64>,
    tags: &'a [u8],
    tag_count: u16,
    payload: &'a [u8],
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses the header of `bytes`.
pub(crate) fn parse(bytes: &[u8]) -> Result<RawEntry<'_>, String> {
    if bytes.len() < HEADER_LEN + 2 {
        return Err(format!(
            "{} bytes is shorter than an entry header",
            bytes.len()
        ));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(format!(
            "entry format version {} is not {FORMAT_VERSION}",
            bytes[0]
        ));
    }
    let times = EntryTimes {
        created_ms: u64_at(bytes, 2),
        fresh_until_ms: u64_at(bytes, 10),
        expires_ms: u64_at(bytes, 18),
        load_micros: u32::from_le_bytes([bytes[26], bytes[27], bytes[28], bytes[29]]),
    };
    let (shape, tags_at) = if bytes[1] & FLAG_SHAPE != 0 {
        if bytes.len() < HEADER_LEN + 8 + 2 {
            return Err(format!(
                "{} bytes is shorter than an entry header with a shape",
                bytes.len()
            ));
        }
        (Some(u64_at(bytes, HEADER_LEN)), HEADER_LEN + 8)
    } else {
        (None, HEADER_LEN)
    };
    let tag_count = u16::from_le_bytes([bytes[tags_at], bytes[tags_at + 1]]);
    let mut at = tags_at + 2;
    for _ in 0..tag_count {
        let len_bytes = bytes.get(at..at + 2).ok_or("truncated tag list")?;
        let len = u16::from_le_bytes([len_bytes[0], len_bytes[1]]) as usize;
        at += 2 + len;
        std::str::from_utf8(bytes.get(at - len..at).ok_or("truncated tag list")?)
            .map_err(|_| "a tag that is not UTF-8")?;
        let vlen = *bytes.get(at).ok_or("truncated tag list")? as usize;
        at += 1 + vlen;
        if at > bytes.len() {
            return Err("truncated tag list".into());
        }
    }
    Ok(RawEntry {
        flags: bytes[1],
        header: &bytes[..at],
        times,
        shape,
        tags: &bytes[tags_at + 2..at],
        tag_count,
        payload: &bytes[at..],
    })
}

impl RawEntry<'_> {
    /// Decodes the payload; `max_inflated` bounds decompression.
    #[cfg(test)]
    pub(crate) fn value<T: DeserializeOwned>(&self, max_inflated: usize) -> Result<T, String> {
        self.open_value(max_inflated, None, false)
    }

    /// Decodes the payload, opening it with `open` when sealed. With `require_sealed`, an
    /// unsealed payload is refused: protected values are never read from plaintext.
    pub(crate) fn open_value<T: DeserializeOwned>(
        &self,
        max_inflated: usize,
        open: Option<Seal<'_>>,
        require_sealed: bool,
    ) -> Result<T, String> {
        let codec = Codec::from_id(self.flags & CODEC_MASK)
            .ok_or_else(|| format!("unknown codec id {}", self.flags & CODEC_MASK))?;
        let opened;
        let payload = match (self.flags & FLAG_SEALED != 0, open) {
            (true, Some(seal)) => {
                let mut context = Vec::with_capacity(seal.context.len() + self.header.len());
                context.extend_from_slice(seal.context);
                context.extend_from_slice(self.header);
                opened = seal.sealer.open(&context, self.payload)?;
                &opened[..]
            }
            (true, None) => return Err("a sealed entry, and no sealer to open it".into()),
            (false, _) if require_sealed => {
                return Err("an unsealed entry where sealing is required".into());
            }
            (false, _) => self.payload,
        };
        match (self.flags & FLAG_DEFLATE != 0, self.flags & FLAG_LZ4 != 0) {
            (false, false) => codec.decode(payload),
            (true, false) => codec.decode(&codec::inflate(payload, max_inflated)?),
            (false, true) => codec.decode(&codec::unlz4(payload, max_inflated)?),
            (true, true) => Err("an entry flagged both deflated and LZ4-compressed".into()),
        }
    }

    /// The entry's tags and their versions (validated by [`parse`]).
    pub(crate) fn tags(&self) -> impl Iterator<Item = TagStamp<'_>> {
        let mut rest = self.tags;
        (0..self.tag_count).map(move |_| {
            let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
            let name = std::str::from_utf8(&rest[2..2 + len]).unwrap_or_default();
            let vlen = rest[2 + len] as usize;
            let version = &rest[3 + len..3 + len + vlen];
            rest = &rest[3 + len + vlen..];
            TagStamp { name, version }
        })
    }

    /// Whether the entry carries exactly the reader's tags, each still at the version it was
    /// loaded under: a tag invalidated since (its version changed) makes the entry dead.
    /// `names` and `versions` are the tags the reader fetched. An entry tag the reader did not
    /// fetch cannot be checked, and a reader's tag the entry lacks was never stamped on it
    /// (written by a function or a deploy without that tag), so an invalidation of that tag
    /// would not reach it: either makes the entry dead (a reload writes it with the reader's
    /// tags).
    pub(crate) fn tags_current<S: AsRef<str>>(
        &self,
        names: &[S],
        versions: &[Option<bytes::Bytes>],
    ) -> bool {
        self.tags().all(|stamp| {
            names
                .iter()
                .position(|n| n.as_ref() == stamp.name)
                .and_then(|i| versions.get(i))
                .is_some_and(|now| stamp.version == now.as_deref().unwrap_or_default())
        }) && names
            .iter()
            .all(|n| self.tags().any(|stamp| stamp.name == n.as_ref()))
    }

    /// Whether the payload is sealed (protected).
    pub(crate) fn is_sealed(&self) -> bool {
        self.flags & FLAG_SEALED != 0
    }

    #[cfg(test)]
    pub(crate) fn is_compressed(&self) -> bool {
        self.flags & (FLAG_DEFLATE | FLAG_LZ4) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(compress_above: Option<usize>) -> EncodeOptions<'static> {
        EncodeOptions {
            codec: Codec::Postcard,
            compress_above,
            compression: Compression::default(),
            shape: None,
            level: 6,
            seal: None,
        }
    }

    const TIMES: EntryTimes = EntryTimes {
        created_ms: 1,
        fresh_until_ms: 2,
        expires_ms: 3,
        load_micros: 4,
    };

    #[test]
    fn round_trips_with_tags() {
        let tags = [
            TagStamp {
                name: "users",
                version: b"",
            },
            TagStamp {
                name: "user:1",
                version: b"12345678",
            },
        ];
        let bytes = encode(&("hello", 7u32), TIMES, &tags, &opts(None)).unwrap();
        let raw = parse(&bytes).unwrap();
        assert_eq!(raw.times, TIMES);
        assert_eq!(raw.tags().collect::<Vec<_>>(), tags);
        let v = Some(bytes::Bytes::from_static(b"12345678"));
        assert!(raw.tags_current(&["users", "user:1"], &[None, v.clone()]));
        assert!(!raw.tags_current(&["users", "user:1"], &[None, Some("other".into())]));
        assert!(!raw.tags_current(&["users", "user:2"], &[None, v.clone()]));
        assert!(
            !raw.tags_current(&["users"], &[None]),
            "a tag the reader did not fetch"
        );
        assert!(raw.tags_current(&["user:1", "users"], &[v.clone(), None]));
        assert!(
            !raw.tags_current(&["user:1", "extra", "users"], &[v.clone(), None, None]),
            "a tag of the reader's that the entry lacks"
        );
        let untagged = encode(&1u8, TIMES, &[], &opts(None)).unwrap();
        assert!(!parse(&untagged).unwrap().tags_current(&["users"], &[None]));
        assert!(parse(&untagged).unwrap().tags_current::<&str>(&[], &[]));
        assert_eq!(
            raw.value::<(String, u32)>(1 << 20).unwrap(),
            ("hello".into(), 7)
        );
    }

    #[test]
    fn compresses_only_when_smaller() {
        let big = "x".repeat(10_000);
        let bytes = encode(&big, TIMES, &[], &opts(Some(1024))).unwrap();
        assert!(bytes.len() < 1_000);
        let raw = parse(&bytes).unwrap();
        assert!(raw.is_compressed());
        assert_eq!(raw.value::<String>(1 << 20).unwrap(), big);
        // Inflating past the limit is an error, not an allocation.
        assert!(raw.value::<String>(100).is_err());

        let small = encode(&"tiny", TIMES, &[], &opts(Some(0))).unwrap();
        assert!(!parse(&small).unwrap().is_compressed());
    }

    #[test]
    fn the_shape_is_recorded_and_read_back_with_the_tags() {
        let tags = [TagStamp {
            name: "users",
            version: b"v1",
        }];
        let o = EncodeOptions {
            shape: Some(0x0123_4567_89ab_cdef),
            ..opts(Some(1024))
        };
        let bytes = encode(&"value".repeat(300), TIMES, &tags, &o).unwrap();
        let raw = parse(&bytes).unwrap();
        assert_eq!(raw.shape, Some(0x0123_4567_89ab_cdef));
        assert_eq!(raw.times, TIMES);
        assert_eq!(raw.tags().collect::<Vec<_>>(), tags);
        assert_eq!(raw.value::<String>(1 << 20).unwrap(), "value".repeat(300));
        let without = encode(&1u8, TIMES, &tags, &opts(None)).unwrap();
        assert_eq!(parse(&without).unwrap().shape, None);
        assert_eq!(
            without.len() + 8,
            encode(
                &1u8,
                TIMES,
                &tags,
                &EncodeOptions {
                    shape: Some(1),
                    ..opts(None)
                }
            )
            .unwrap()
            .len()
        );
        // A header cut inside the shape is an error, not a panic.
        assert!(parse(&bytes[..HEADER_LEN + 5]).is_err());
    }

    #[test]
    fn each_algorithm_reads_back_whatever_the_setting() {
        let big = "abcdefgh".repeat(2_000);
        for compression in [Compression::Lz4, Compression::Deflate] {
            let o = EncodeOptions {
                compression,
                ..opts(Some(1024))
            };
            let bytes = encode(&big, TIMES, &[], &o).unwrap();
            let raw = parse(&bytes).unwrap();
            assert!(raw.is_compressed(), "{compression:?}");
            let flag = match compression {
                Compression::Lz4 => FLAG_LZ4,
                Compression::Deflate => FLAG_DEFLATE,
            };
            assert_eq!(raw.flags & (FLAG_LZ4 | FLAG_DEFLATE), flag);
            assert_eq!(raw.value::<String>(1 << 20).unwrap(), big);
            assert!(raw.value::<String>(1000).is_err(), "past the limit");
        }
    }

    #[test]
    fn hostile_lz4_payloads_are_errors_not_allocations() {
        let big = "abcdefgh".repeat(2_000);
        let o = EncodeOptions {
            compression: Compression::Lz4,
            ..opts(Some(1024))
        };
        let bytes = encode(&big, TIMES, &[], &o).unwrap();
        let at = bytes.len() - parse(&bytes).unwrap().payload.len();
        // A stated length of 4 GiB is refused before any allocation.
        let mut huge = bytes.clone();
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = parse(&huge).unwrap().value::<String>(1 << 20).unwrap_err();
        assert!(err.contains("limit"), "{err}");
        // A stated length the block does not fill.
        let mut short = bytes.clone();
        let len = u32::from_le_bytes(short[at..at + 4].try_into().unwrap());
        short[at..at + 4].copy_from_slice(&(len + 10).to_le_bytes());
        assert!(parse(&short).unwrap().value::<String>(1 << 20).is_err());
        // A truncated block, and a payload too short for its length.
        assert!(
            parse(&bytes[..bytes.len() - 7])
                .unwrap()
                .value::<String>(1 << 20)
                .is_err()
        );
        assert!(
            parse(&bytes[..at + 2])
                .unwrap()
                .value::<String>(1 << 20)
                .is_err()
        );
        // Both algorithms flagged at once.
        let mut both = bytes.clone();
        both[1] |= FLAG_DEFLATE;
        assert!(parse(&both).unwrap().value::<String>(1 << 20).is_err());
    }

    /// XOR with the context's length, and the context appended: enough to see binding.
    struct ToySealer;
    impl crate::phi::Sealer for ToySealer {
        fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
            let mut out: Vec<u8> = plaintext.iter().map(|b| b ^ 0x5A).collect();
            out.extend_from_slice(context);
            Ok(out)
        }
        fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
            let body = sealed.strip_suffix(context).ok_or("another context")?;
            Ok(body.iter().map(|b| b ^ 0x5A).collect())
        }
    }

    #[test]
    fn sealed_payloads_open_only_in_their_context() {
        let seal = Seal {
            sealer: &ToySealer,
            context: b"k1",
        };
        let o = EncodeOptions {
            seal: Some(seal),
            ..opts(Some(0))
        };
        let bytes = encode(&"secret value".repeat(20), TIMES, &[], &o).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"secret"));
        let raw = parse(&bytes).unwrap();
        let got: String = raw.open_value(1 << 20, Some(seal), true).unwrap();
        assert_eq!(got, "secret value".repeat(20));
        let other = Seal {
            sealer: &ToySealer,
            context: b"k2",
        };
        assert!(
            raw.open_value::<String>(1 << 20, Some(other), true)
                .is_err()
        );
        assert!(raw.value::<String>(1 << 20).is_err(), "no sealer, no value");
        // An edited header (fresh again) no longer opens.
        let mut edited = bytes.clone();
        edited[10] ^= 0xFF;
        assert!(
            parse(&edited)
                .unwrap()
                .open_value::<String>(1 << 20, Some(seal), true)
                .is_err()
        );
        // An unsealed entry is refused where sealing is required.
        let plain = encode(&"x", TIMES, &[], &opts(None)).unwrap();
        assert!(
            parse(&plain)
                .unwrap()
                .open_value::<String>(1 << 20, Some(seal), true)
                .is_err()
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"not an entry").is_err());
        let t = [TagStamp {
            name: "t",
            version: b"v",
        }];
        let mut bytes = encode(&1u8, TIMES, &t, &opts(None)).unwrap();
        bytes[0] = 9;
        assert!(parse(&bytes).is_err());
        let bytes = encode(&1u8, TIMES, &t, &opts(None)).unwrap();
        assert!(parse(&bytes[..34]).is_err());
        assert!(is_tombstone(&tombstone()));
        assert_ne!(tombstone(), tombstone());
        assert!(parse(&tombstone()).is_err());
        // A value of another type: trailing bytes or a bad payload, never a panic.
        let bytes = encode(&(1u8, 2u8), TIMES, &[], &opts(None)).unwrap();
        assert!(parse(&bytes).unwrap().value::<u8>(1 << 20).is_err());
    }
}
