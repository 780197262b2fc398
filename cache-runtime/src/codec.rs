//! Value serialization: the codec and optional compression of an entry's payload.

use std::io::{Read as _, Write as _};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How values are serialized into entries.
///
/// Each entry records its codec, so a cache can switch codecs without misreading old entries
/// (they decode with the codec they were written with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// [postcard](https://docs.rs/postcard): compact, fast, a stable wire format. The default.
    #[default]
    Postcard,
    /// JSON, for other languages reading the same Redis.
    Json,
}

impl Codec {
    pub(crate) fn id(self) -> u8 {
        match self {
            Codec::Postcard => 0,
            Codec::Json => 1,
        }
    }

    pub(crate) fn from_id(id: u8) -> Option<Codec> {
        match id {
            0 => Some(Codec::Postcard),
            1 => Some(Codec::Json),
            _ => None,
        }
    }

    pub(crate) fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        match self {
            Codec::Postcard => postcard::to_extend(value, out).map_err(|e| e.to_string()),
            Codec::Json => {
                let mut out = out;
                serde_json::to_writer(&mut out, value).map_err(|e| json_error(&e))?;
                Ok(out)
            }
        }
    }

    pub(crate) fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, String> {
        match self {
            Codec::Postcard => {
                let (value, rest) =
                    postcard::take_from_bytes::<T>(bytes).map_err(|e| e.to_string())?;
                if rest.is_empty() {
                    Ok(value)
                } else {
                    Err(format!("{} trailing bytes after the value", rest.len()))
                }
            }
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| json_error(&e)),
        }
    }
}

/// A JSON error described by its kind and position only: serde_json's own message quotes
/// the offending value ("invalid type: string \"…\""), and these reach logs.
fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "an I/O error",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "JSON of another shape than the value's type",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// When payloads are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compress {
    /// Use the cache's setting (`CACHE_COMPRESSION_THRESHOLD`, 1 KiB by default).
    #[default]
    Default,
    /// Never compress this function's values.
    Never,
    /// Compress above the cache's threshold, or above the default 1 KiB where the cache has
    /// compression off (`compress = true`).
    Enabled,
    /// Compress payloads of at least this many bytes (when it makes them smaller).
    Above(usize),
}

/// The algorithm that compresses payloads over the threshold. Every entry records which one
/// compressed it, so a change of setting reads old entries as before.
///
/// ```
/// use cache_runtime::{Cache, Compression};
/// let cache = Cache::builder().compression(Compression::Deflate).build().unwrap();
/// # drop(cache);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// LZ4 (block format): about a third of deflate's ratio gain on typical JSON-like
    /// values, at several times its speed both ways; what a hit pays to inflate stays far
    /// below a round trip. The default (BENCHMARKS.md, "Compression").
    #[default]
    Lz4,
    /// Deflate at the cache's `compression_level`: the smallest entries, and the slowest to
    /// write and to read.
    Deflate,
}

impl std::str::FromStr for Compression {
    type Err = String;

    /// `lz4` or `deflate`, in any case, as `CACHE_COMPRESSION_ALGORITHM` takes it.
    fn from_str(text: &str) -> Result<Compression, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "lz4" => Ok(Compression::Lz4),
            "deflate" => Ok(Compression::Deflate),
            _ => Err(format!(
                "`{text}` is not a compression algorithm: lz4 or deflate"
            )),
        }
    }
}

/// LZ4-compresses `data`: its length (u32 LE), then one LZ4 block. `None` for payloads over
/// 4 GiB.
pub(crate) fn lz4(data: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(data.len()).ok()?;
    let mut out = vec![0u8; 4 + lz4_flex::block::get_maximum_output_size(data.len())];
    out[..4].copy_from_slice(&len.to_le_bytes());
    let n = lz4_flex::block::compress_into(data, &mut out[4..]).ok()?;
    out.truncate(4 + n);
    Some(out)
}

/// Reverses [`lz4`]; a stated length over `limit` is refused before anything is allocated, so
/// a corrupted or hostile entry cannot make us allocate more.
pub(crate) fn unlz4(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let (len, block) = data
        .split_first_chunk::<4>()
        .ok_or("an LZ4 payload shorter than its length")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > limit {
        return Err(format!("inflates past the limit of {limit} bytes"));
    }
    let mut out = vec![0u8; len];
    let n = lz4_flex::block::decompress_into(block, &mut out).map_err(|e| e.to_string())?;
    if n != len {
        return Err(format!(
            "an LZ4 payload of {n} bytes where {len} were stated"
        ));
    }
    Ok(out)
}

pub(crate) fn deflate(data: &[u8], level: u32) -> Option<Vec<u8>> {
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::new(level),
    );
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

pub(crate) fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(data.len() * 3);
    // The limit bounds what a corrupted or hostile entry can make us allocate.
    flate2::read::DeflateDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() > limit {
        return Err(format!("inflates past the limit of {limit} bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Codec;

    /// Regression: decode errors quoted the value ("invalid type: string \"…\"") into logs.
    #[test]
    fn decode_errors_never_quote_the_value() {
        for stored in [
            &br#""MRN-0042 Zebulon""#[..],
            br#"{"mrn":"MRN-0042"}"#,
            br#"["MRN-0042""#,
        ] {
            let err = Codec::Json.decode::<u32>(stored).unwrap_err();
            assert!(!err.contains("MRN") && !err.contains("Zebulon"), "{err}");
            assert!(err.contains("line 1"), "{err}");
        }
    }
}
