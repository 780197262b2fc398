//! Tamper evidence for the audit file: each line carries a sequence number and a MAC over
//! the MAC of the line before it and its own text, so an edited line fails its MAC, and a
//! removed or reordered line breaks the numbering and the chain after it.
//!
//! A line is the event's JSON with `"seq":N` and, last, `"mac":"<64 hex>"` spliced in before
//! its closing brace; the MAC is HMAC-SHA256 under the audit key over
//! `previous MAC (32 bytes) ‖ the line up to ,"mac": and a closing brace`. The first line's
//! previous MAC is 32 zero bytes. Removing lines at the *end* of a file leaves a valid chain:
//! keep the last sequence number and MAC somewhere else (the verifier prints them) to notice
//! that too.

use std::io::BufRead;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const MAC_FIELD: &str = ",\"mac\":\"";

/// The audit key: HMAC-SHA256 under it chains the lines.
#[derive(Clone)]
pub struct AuditKey(Hmac<Sha256>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    /// A key of at least 32 bytes (`CACHE_AUDIT_KEY`, base64).
    pub fn new(key: &[u8]) -> Option<AuditKey> {
        (key.len() >= 32)
            .then(|| <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok())
            .flatten()
            .map(AuditKey)
    }

    /// The audit key derived from the identifier hash key (`CACHE_HASH_KEY`), for programs
    /// that set no audit key of their own: another key, so an audit MAC reveals nothing of
    /// identifier hashes.
    pub fn derived_from(hash_key: &[u8]) -> Option<AuditKey> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(hash_key).ok()?;
        mac.update(b"cachette audit chain v1");
        AuditKey::new(&mac.finalize().into_bytes())
    }

    fn mac(&self, prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(prev);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// Where a chain stands: the last line's number and MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub seq: u64,
    pub mac: [u8; 32],
}

impl Link {
    /// Before the first line.
    pub const GENESIS: Link = Link {
        seq: 0,
        mac: [0; 32],
    };
}

/// Appends `"seq"` and `"mac"` to `json` (an object), chained after `prev`.
pub(crate) fn seal_line(key: &AuditKey, prev: Link, json: &str) -> (String, Link) {
    let seq = prev.seq + 1;
    let open = json.strip_suffix('}').unwrap_or(json);
    let sep = if open.ends_with('{') { "" } else { "," };
    let body = format!("{open}{sep}\"seq\":{seq}}}");
    let mac = key.mac(&prev.mac, body.as_bytes());
    let line = format!("{}{MAC_FIELD}{}\"}}", &body[..body.len() - 1], hex(&mac));
    (line, Link { seq, mac })
}

/// The body a line's MAC covers, its sequence number and its MAC; `None` for a line that
/// is no chained audit line.
fn split(line: &str) -> Option<(String, u64, [u8; 32])> {
    let at = line.rfind(MAC_FIELD)?;
    let hex_mac = line[at + MAC_FIELD.len()..].strip_suffix("\"}")?;
    let mac = unhex(hex_mac)?;
    let body = format!("{}}}", &line[..at]);
    let seq_at = body.rfind("\"seq\":")?;
    let seq = body[seq_at + 6..body.len() - 1].parse().ok()?;
    Some((body, seq, mac))
}

/// The link of the last line of `text`, to go on appending to a file.
pub(crate) fn last_link(text: &str) -> Option<Link> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let (_, seq, mac) = split(line)?;
    Some(Link { seq, mac })
}

/// A whole, unbroken chain: how many lines, and the last one's number and MAC (keep them
/// elsewhere to notice lines removed from the end later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Lines checked.
    pub lines: u64,
    /// The last line's sequence number.
    pub last_seq: u64,
    /// The last line's MAC, in hex.
    pub last_mac: String,
}

/// The first line where the chain breaks, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ChainBreak {
    /// The line's number in the file, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks a chained audit file from its first line: the first line whose MAC does not match
/// (it was edited), or whose number does not follow the previous one (lines were removed or
/// moved before it), is named.
///
/// ```
/// use cache_healthcare::{AuditKey, verify_audit_chain};
///
/// let key = AuditKey::new(&[7; 32]).unwrap();
/// assert_eq!(verify_audit_chain(&b""[..], &key).unwrap().lines, 0);
/// ```
pub fn verify_audit_chain(reader: impl BufRead, key: &AuditKey) -> Result<ChainReport, ChainBreak> {
    let mut prev = Link::GENESIS;
    let mut lines = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let n = i as u64 + 1;
        let fail = |reason: String| ChainBreak { line: n, reason };
        let line = line.map_err(|e| fail(format!("cannot be read ({e})")))?;
        if line.trim().is_empty() {
            continue;
        }
        let (body, seq, mac) = split(&line)
            .ok_or_else(|| fail("not a chained audit line (no seq and mac): written by something else, or cut short".into()))?;
        if seq != prev.seq + 1 {
            let reason = if seq > prev.seq + 1 {
                format!(
                    "number {seq} follows {}: {} line(s) before it were removed",
                    prev.seq,
                    seq - prev.seq - 1
                )
            } else {
                format!(
                    "number {seq} follows {}: lines were moved or repeated",
                    prev.seq
                )
            };
            return Err(fail(reason));
        }
        if key.mac(&prev.mac, body.as_bytes()) != mac {
            return Err(fail(
                "its MAC does not match: the line was edited (or the key is not the one that wrote it)".into(),
            ));
        }
        prev = Link { seq, mac };
        lines += 1;
    }
    Ok(ChainReport {
        lines,
        last_seq: prev.seq,
        last_mac: hex(&prev.mac),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(key: &AuditKey, n: usize) -> Vec<String> {
        let mut prev = Link::GENESIS;
        (0..n)
            .map(|i| {
                let (line, next) = seal_line(key, prev, &format!("{{\"op\":\"hit\",\"i\":{i}}}"));
                prev = next;
                line
            })
            .collect()
    }

    fn verify(lines: &[String], key: &AuditKey) -> Result<ChainReport, ChainBreak> {
        verify_audit_chain(lines.join("\n").as_bytes(), key)
    }

    #[test]
    fn an_intact_chain_verifies_and_a_tampered_one_names_its_first_broken_line() {
        let key = AuditKey::new(&[7; 32]).unwrap();
        let lines = chain(&key, 5);
        let report = verify(&lines, &key).unwrap();
        assert_eq!((report.lines, report.last_seq), (5, 5));
        assert_eq!(last_link(&lines.join("\n")).unwrap().seq, 5);

        let mut edited = lines.clone();
        edited[2] = edited[2].replace("\"hit\"", "\"miss\"");
        let err = verify(&edited, &key).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("edited"), "{err}");

        let mut removed = lines.clone();
        removed.remove(1);
        let err = verify(&removed, &key).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.reason.contains("1 line(s) before it were removed"),
            "{err}"
        );

        let mut swapped = lines.clone();
        swapped.swap(3, 4);
        assert_eq!(verify(&swapped, &key).unwrap_err().line, 4);

        let other = AuditKey::new(&[8; 32]).unwrap();
        assert_eq!(verify(&lines, &other).unwrap_err().line, 1);

        let mut cut = lines.clone();
        cut[4].truncate(20);
        assert!(verify(&cut, &key).unwrap_err().reason.contains("cut short"));
    }

    #[test]
    fn short_keys_are_refused_and_derived_keys_differ_from_their_source() {
        assert!(AuditKey::new(&[1; 31]).is_none());
        let derived = AuditKey::derived_from(&[9; 32]).unwrap();
        let direct = AuditKey::new(&[9; 32]).unwrap();
        let line = chain(&derived, 1);
        assert!(verify(&line, &derived).is_ok());
        assert!(verify(&line, &direct).is_err());
    }
}
