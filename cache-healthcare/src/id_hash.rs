//! Identifiers in key names as HMAC-SHA256 under `CACHE_HASH_KEY`.
//!
//! The hash is keyed so that a patient id cannot be recovered by hashing every plausible MRN,
//! and it is a separate key from the encryption keys so either can rotate alone (rotating this
//! one changes every protected key name: the old entries simply become unreachable and expire).
//! Hashes are the first 128 bits, as 32 lowercase hex digits.

use std::fmt::Write as _;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::keyring::KeyringError;
use cache_runtime::IdHasher;

/// HMAC-SHA256 of identifiers.
#[derive(Clone)]
pub struct HmacIdHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for HmacIdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacIdHasher")
    }
}

impl HmacIdHasher {
    /// A hasher under `key` (at least 32 bytes).
    pub fn new(key: &[u8]) -> Result<Self, KeyringError> {
        if key.len() < 32 {
            return Err(KeyringError(format!(
                "the identifier hash key is {} bytes; use at least 32",
                key.len()
            )));
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .map_err(|_| KeyringError("invalid identifier hash key".into()))?;
        Ok(HmacIdHasher { mac })
    }

    /// Parses `CACHE_HASH_KEY`: at least 32 bytes in standard base64.
    pub fn parse(b64: &str) -> Result<Self, KeyringError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| KeyringError("CACHE_HASH_KEY is not valid base64".into()))?;
        Self::new(&key)
    }
}

impl IdHasher for HmacIdHasher {
    fn write_hash(&self, id: &[u8], out: &mut String) {
        let mut mac = self.mac.clone();
        mac.update(id);
        for b in &mac.finalize().into_bytes()[..16] {
            let _ = write!(out, "{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_and_stable() {
        let a = HmacIdHasher::new(&[1; 32]).unwrap();
        let b = HmacIdHasher::new(&[2; 32]).unwrap();
        let h = |x: &HmacIdHasher, id: &str| {
            let mut s = String::new();
            x.write_hash(id.as_bytes(), &mut s);
            s
        };
        assert_eq!(h(&a, "MRN-0042"), h(&a, "MRN-0042"));
        assert_eq!(h(&a, "MRN-0042").len(), 32);
        assert_ne!(h(&a, "MRN-0042"), h(&b, "MRN-0042"));
        assert_ne!(h(&a, "MRN-0042"), h(&a, "MRN-004"));
        assert!(HmacIdHasher::new(&[1; 16]).is_err());
    }
}
