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
