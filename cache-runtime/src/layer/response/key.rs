//! The cache key of a request: method, host, path, normalized query, and the values of the
//! headers the response varies on, hashed into a fixed-length name.
//!
//! Every part is hashed (SHA-256, first 128 bits), so a hostile query cannot make a long key,
//! and no path, query or credential appears in a key name on the store. Parts are length-
//! prefixed before hashing, so no two requests that differ in a part share a key.

use axum::http::HeaderName;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

/// Queries longer than this are not cached (the handler still answers them).
pub(super) const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Queries with more parameters than this are not cached.
pub(super) const MAX_QUERY_PARAMS: usize = 256;

/// The key of `parts` under the route `name`, or `None` when the query is too large to be
/// worth a key. `headers` are the names whose values select a variant, sorted and without
/// repeats.
pub(super) fn key(
    name: &str,
    protected: bool,
    parts: &Parts,
    headers: &[HeaderName],
) -> Option<String> {
    let mut h = Hashed(Sha256::new());
    h.field(b"cachette-http-v1");
    h.field(parts.method.as_str().as_bytes());
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| {
            parts
                .headers
                .get(axum::http::header::HOST)
                .map(|v| v.as_bytes())
        });
    h.optional(host);
    h.field(parts.uri.path().as_bytes());
    let query = parts.uri.query().unwrap_or("");
    if query.len() > MAX_QUERY_BYTES {
        return None;
    }
    let params = normalized_query(query)?;
    h.count(params.len());
    for (k, v) in &params {
        h.field(k);
        h.field(v);
    }
    h.count(headers.len());
    for name in headers {
        h.field(name.as_str().as_bytes());
        let values = parts.headers.get_all(name);
        h.count(values.iter().count());
        for v in values {
            h.field(v.as_bytes());
        }
    }
    let digest = h.0.finalize();
    let mut key = String::with_capacity(64);
    if protected {
        key.push_str(crate::PHI_NAMESPACE);
    }
    key.push_str("http:");
    crate::key::escape_into(&mut key, name);
    key.push(':');
    for b in &digest[..16] {
        key.push(char::from(HEX[usize::from(b >> 4)]));
        key.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Some(key)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

struct Hashed(Sha256);

impl Hashed {
    fn count(&mut self, n: usize) {
        self.0.update((n as u64).to_le_bytes());
    }
    fn field(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.update(bytes);
    }
    fn optional(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            Some(b) => {
                self.0.update([1]);
                self.field(b);
            }
            None => self.0.update([0]),
        }
    }
}

/// The query's parameters as a form decoder reads them (`+` is a space, `%XX` a byte, `a` is
/// `a=`, empty pieces are nothing), ordered by name; parameters of one name keep their order,
/// since a handler reading a list sees it in that order. `None` past [`MAX_QUERY_PARAMS`].
pub(super) fn normalized_query(query: &str) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut params = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        if params.len() == MAX_QUERY_PARAMS {
            return None;
        }
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        params.push((decode(k), decode(v)));
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    Some(params)
}

/// Form decoding; a `%` not followed by two hex digits stays as it is.
fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::get(uri);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    fn k(uri: &str, headers: &[(&str, &str)], vary: &[&'static str]) -> String {
        let vary: Vec<HeaderName> = vary.iter().map(|v| HeaderName::from_static(v)).collect();
        key("r", false, &parts(uri, headers), &vary).unwrap()
    }

    #[test]
    fn equivalent_queries_share_a_key() {
        let base = k("/a?x=1&y=2", &[], &[]);
        assert_eq!(k("/a?y=2&x=1", &[], &[]), base);
        assert_eq!(k("/a?x=%31&&y=2&", &[], &[]), base);
        assert_eq!(k("/a?q=a+b", &[], &[]), k("/a?q=a%20b", &[], &[]));
        assert_eq!(k("/a?q", &[], &[]), k("/a?q=", &[], &[]));
        assert_eq!(k("/a?q=%zz%4", &[], &[]), k("/a?q=%25zz%254", &[], &[]));
    }

    #[test]
    fn different_requests_never_share_a_key() {
        let base = k("/a?x=1&x=2", &[], &[]);
        assert_ne!(k("/a?x=2&x=1", &[], &[]), base, "a list keeps its order");
        assert_ne!(k("/a?x=1", &[], &[]), base);
        assert_ne!(k("/b?x=1&x=2", &[], &[]), base);
        assert_ne!(k("/a?x=1%26x%3D2", &[], &[]), base);
        assert_ne!(k("/a%2Fb", &[], &[]), k("/a/b", &[], &[]));
        assert_ne!(
            k("/a", &[("host", "one.example")], &[]),
            k("/a", &[("host", "two.example")], &[])
        );
        let fr = k("/a", &[("accept-language", "fr")], &["accept-language"]);
        assert_ne!(
            k("/a", &[("accept-language", "de")], &["accept-language"]),
            fr
        );
        assert_ne!(k("/a", &[], &["accept-language"]), fr);
        assert_ne!(
            k("/a", &[("accept-language", "")], &["accept-language"]),
            k("/a", &[], &["accept-language"])
        );
        assert_eq!(
            k("/a", &[("accept-language", "fr")], &[]),
            k("/a", &[], &[])
        );
    }

    #[test]
    fn keys_are_short_whatever_the_query_and_hostile_queries_have_none() {
        let long = format!("/a?{}", "x=1&".repeat(200));
        let short = k(&long, &[], &[]);
        assert!(
            short.starts_with("http:r:") && short.len() == "http:r:".len() + 32,
            "{short}"
        );
        let many = format!("/a?{}", "x=1&".repeat(MAX_QUERY_PARAMS + 1));
        assert!(key_of(&many).is_none());
        let huge = format!("/a?x={}", "y".repeat(MAX_QUERY_BYTES));
        assert!(key_of(&huge).is_none());
        let p = parts("/a", &[]);
        assert!(key("r", true, &p, &[]).unwrap().starts_with("phi:http:r:"));
    }

    fn key_of(uri: &str) -> Option<String> {
        key("r", false, &parts(uri, &[]), &[])
    }
}
