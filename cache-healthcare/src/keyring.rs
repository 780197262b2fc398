//! Sealing with AES-256-GCM under a key ring (`CACHE_ENCRYPTION_KEYS`).
//!
//! Sealed layout: `1` (layout version), key id length (u8), key id, 96-bit random nonce,
//! ciphertext with its 128-bit tag. The associated data is the context the runtime gives (full
//! key + entry format version) followed by the key id, so a value copied under another key, or
//! relabelled with another key id, fails to open.
//!
//! The first key of the ring seals; every key of the ring opens. Rotate by putting a new key
//! first and keeping the old one until its entries have expired; remove (retire) it after that,
//! and entries still sealed under it become misses. With random nonces, seal at most about 2^32
//! values under one key (NIST SP 800-38D); rotate well before.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;

use cache_runtime::Sealer;

const LAYOUT: u8 = 1;
const NONCE_LEN: usize = 12;

/// A ring of AES-256 keys; the first one seals.
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

/// Why a key ring could not be read. The message never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringError(pub String);

impl std::fmt::Display for KeyringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyringError {}

impl Keyring {
    /// A ring of `(key id, 32-byte key)`, current key first.
    pub fn new<I: IntoIterator<Item = (String, [u8; 32])>>(keys: I) -> Result<Self, KeyringError> {
        let mut ring = Vec::new();
        for (i, (id, key)) in keys.into_iter().enumerate() {
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                // Never echoed: a malformed id may be key material given in its place.
                return Err(KeyringError(format!(
                    "entry {}: a key id must be 1 to 32 letters, digits, `_` or `-` \
                     (`id:base64key`, id first)",
                    i + 1
                )));
            }
            if ring.iter().any(|(other, _)| *other == id) {
                return Err(KeyringError(format!("key id {id:?} appears twice")));
            }
            let key = Key::<Aes256Gcm>::try_from(&key[..])
                .map_err(|_| KeyringError("a key is not 32 bytes".into()))?;
            ring.push((id, Aes256Gcm::new(&key)));
        }
        if ring.is_empty() {
            return Err(KeyringError("the key ring is empty".into()));
        }
        Ok(Keyring { keys: ring })
    }

    /// Parses `CACHE_ENCRYPTION_KEYS`: `id:base64key[,id:base64key…]`, current key first; each
    /// key is 32 bytes in standard base64 (`openssl rand -base64 32`).
    pub fn parse(spec: &str) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        for (i, item) in spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let (id, b64) = item
                .split_once(':')
                .ok_or_else(|| KeyringError(format!("entry {} is not `id:base64key`", i + 1)))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| {
                    KeyringError(format!("entry {}: the key is not valid base64", i + 1))
                })?;
            let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                KeyringError(format!(
                    "entry {}: the key is {} bytes; AES-256 needs 32",
                    i + 1,
                    b.len()
                ))
            })?;
            keys.push((id.trim().to_owned(), key));
        }
        Self::new(keys)
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.keys[0].0
    }

    fn aad(context: &[u8], id: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(context.len() + 1 + id.len());
        aad.extend_from_slice(context);
        aad.push(id.len() as u8);
        aad.extend_from_slice(id.as_bytes());
        aad
    }
}

impl Sealer for Keyring {
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness for a nonce: {e}"))?;
        let nonce_arr = Nonce::try_from(&nonce[..]).map_err(|_| "nonce size".to_string())?;
        let aad = Self::aad(context, id);
        let ct = cipher
            .encrypt(
                &nonce_arr,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + ct.len());
        out.push(LAYOUT);
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        let (&layout, rest) = sealed.split_first().ok_or("empty sealed value")?;
        if layout != LAYOUT {
            return Err(format!("sealed layout {layout} is not {LAYOUT}"));
        }
        let (&id_len, rest) = rest.split_first().ok_or("truncated sealed value")?;
        let id_len = id_len as usize;
        if rest.len() < id_len + NONCE_LEN {
            return Err("truncated sealed value".into());
        }
        let id = std::str::from_utf8(&rest[..id_len]).map_err(|_| "key id is not UTF-8")?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| format!("key id {id:?} is not in the key ring (retired?)"))?;
        let nonce = Nonce::try_from(&rest[id_len..id_len + NONCE_LEN]).map_err(|_| "nonce size")?;
        let aad = Self::aad(context, id);
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &rest[id_len + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| {
                "the sealed value does not open (tampered, moved, or another key)".to_string()
            })
    }
}

#[cfg(test)]
mod tests {
    /// Regression: a malformed entry was echoed in the error, and the entry can be the key
    /// itself (given before its id, or without one).
    #[test]
    fn errors_never_echo_key_material() {
        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwMTI=";
        for spec in [
            format!("{secret}:k1"),
            format!("k1:{secret}x"),
            format!("k1:{}", &secret[..20]),
            secret.to_string(),
            format!("k2:{secret},{secret}"),
        ] {
            let err = Keyring::parse(&spec).err().map(|e| e.to_string());
            let err = err.unwrap_or_default();
            assert!(!err.is_empty(), "{spec} must be refused");
            assert!(!err.contains(&secret[..12]), "{err}");
        }
    }

    use super::*;

    fn ring(ids: &[(&str, u8)]) -> Keyring {
        Keyring::new(ids.iter().map(|(id, b)| (id.to_string(), [*b; 32]))).unwrap()
    }

    #[test]
    fn seals_and_opens_bound_to_context() {
        let k = ring(&[("k1", 1)]);
        let sealed = k.seal(b"key:a\x01", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(k.open(b"key:a\x01", &sealed).unwrap(), b"secret");
        assert!(
            k.open(b"key:b\x01", &sealed).is_err(),
            "moved to another key"
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(k.open(b"key:a\x01", &flipped).is_err(), "tampered");
        assert_ne!(
            k.seal(b"c", b"x").unwrap(),
            k.seal(b"c", b"x").unwrap(),
            "random nonces"
        );
    }

    #[test]
    fn rotates_and_retires() {
        let old = ring(&[("k1", 1)]);
        let sealed_k1 = old.seal(b"c", b"v1").unwrap();
        let rotated = ring(&[("k2", 2), ("k1", 1)]);
        assert_eq!(
            rotated.open(b"c", &sealed_k1).unwrap(),
            b"v1",
            "old entries still open"
        );
        let sealed_k2 = rotated.seal(b"c", b"v2").unwrap();
        assert_eq!(&sealed_k2[2..4], b"k2", "new writes carry k2");
        let retired = ring(&[("k2", 2)]);
        assert!(retired.open(b"c", &sealed_k1).unwrap_err().contains("k1"));
        assert_eq!(retired.open(b"c", &sealed_k2).unwrap(), b"v2");
        // Relabelling a value with another key id fails too.
        let mut relabelled = sealed_k2.clone();
        relabelled[3] = b'1';
        assert!(rotated.open(b"c", &relabelled).is_err());
    }

    #[test]
    fn parses_the_variable_without_leaking_keys() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let k = Keyring::parse(&format!("k2:{b64}, k1:{b64}")).unwrap();
        assert_eq!(k.current_id(), "k2");
        let short = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
        let err = Keyring::parse(&format!("k1:{short}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("16 bytes") && !err.contains(&short), "{err}");
        assert!(Keyring::parse("nocolon").is_err());
        assert!(Keyring::parse("").is_err());
        assert!(Keyring::parse(&format!("k1:{b64},k1:{b64}")).is_err());
    }
}
