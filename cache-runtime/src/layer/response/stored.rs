//! What is cached of a response (status, the headers worth repeating, the body, when it was
//! made and how long it stays fresh), and the responses built from it: the full one, with `Age`
//! and `X-Cache`, or `304 Not Modified` for a matching `If-None-Match`.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Response, StatusCode};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `X-Cache` header.
pub(super) static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// How a response was answered, for `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Served {
    /// From the cache, fresh.
    Hit,
    /// By the handler, for this request (cached or not).
    Miss,
    /// From the cache, past its freshness, while a new one is made.
    Stale,
}

impl Served {
    pub fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Served::Hit => "hit",
            Served::Miss => "miss",
            Served::Stale => "stale",
        })
    }
}

/// A cached response.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredResponse {
    pub status: u16,
    /// Names (lowercase) and values, in the handler's order.
    pub headers: Vec<(String, Blob)>,
    pub body: Blob,
    /// Unix ms when the handler was called.
    pub stored_ms: u64,
    /// Unix ms from which it is stale.
    pub fresh_until_ms: u64,
    /// Unix ms from which it is not served at all.
    pub expires_ms: u64,
    /// Random, per load: tells the request whose load made it from the others.
    pub nonce: u64,
}

/// Bytes stored as one byte string rather than a sequence of numbers.
#[derive(Debug, Default)]
pub(super) struct Blob(pub Bytes);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(Bytes::from(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(Blob(Bytes::from(v)))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Headers that belong to one connection or one answer, never repeated from the cache.
fn repeated(name: &HeaderName, method: &Method) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "set-cookie"
            | "age"
            | "date"
            | "x-cache"
    ) && (name != header::CONTENT_LENGTH || method == Method::HEAD)
}

/// The strong validator of `body`: 128 bits of its SHA-256, quoted.
pub(super) fn etag(body: &[u8]) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(body);
    let mut tag = Vec::with_capacity(34);
    tag.push(b'"');
    for b in &digest[..16] {
        tag.push(HEX[usize::from(b >> 4)]);
        tag.push(HEX[usize::from(b & 0xf)]);
    }
    tag.push(b'"');
    HeaderValue::from_bytes(&tag).expect("hex digits are a valid header value")
}

impl StoredResponse {
    /// What to keep of a response to `method`; a `200` to `GET` without an `ETag` gets one made
    /// from its body.
    pub fn new(
        method: &Method,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        times: [u64; 3],
        nonce: u64,
    ) -> StoredResponse {
        let mut kept: Vec<(String, Blob)> = headers
            .iter()
            .filter(|(n, _)| repeated(n, method))
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    Blob(Bytes::copy_from_slice(v.as_bytes())),
                )
            })
            .collect();
        if status == StatusCode::OK && method == Method::GET && !headers.contains_key(header::ETAG)
        {
            let tag = etag(&body);
            kept.push((
                header::ETAG.as_str().to_owned(),
                Blob(Bytes::copy_from_slice(tag.as_bytes())),
            ));
        }
        let [stored_ms, fresh_until_ms, expires_ms] = times;
        StoredResponse {
            status: status.as_u16(),
            headers: kept,
            body: Blob(body),
            stored_ms,
            fresh_until_ms,
            expires_ms,
            nonce,
        }
    }

    /// The response to a request that sent `if_none_match`, `served` as said, at `now_ms`.
    /// Headers that do not parse (the store holds bytes anyone could have written) are left
    /// out, never a panic.
    pub fn respond(
        self,
        served: Served,
        if_none_match: Option<&HeaderValue>,
        now_ms: u64,
    ) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let not_modified = status == StatusCode::OK
            && if_none_match.is_some_and(|inm| {
                self.headers
                    .iter()
                    .find(|(n, _)| n == header::ETAG.as_str())
                    .is_some_and(|(_, tag)| matches(inm.as_bytes(), &tag.0))
            });
        let mut response = if not_modified {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            let mut r = Response::new(Body::from(self.body.0));
            *r.status_mut() = status;
            r
        };
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_maybe_shared(value.0),
            ) else {
                continue;
            };
            // RFC 9110 §15.4.5: a 304 carries what a 200 would have of these, nothing else.
            if not_modified
                && !matches!(
                    name.as_str(),
                    "etag" | "cache-control" | "vary" | "expires" | "content-location"
                )
            {
                continue;
            }
            headers.append(name, value);
        }
        let age = now_ms.saturating_sub(self.stored_ms) / 1000;
        headers.insert(header::AGE, HeaderValue::from(age));
        headers.insert(X_CACHE.clone(), served.header());
        response
    }
}

/// Whether `If-None-Match: inm` matches the entity tag `tag` (weak comparison, RFC 9110
/// §13.1.2: `W/` is ignored on both sides; `*` matches any).
pub(super) fn matches(inm: &[u8], tag: &[u8]) -> bool {
    let Ok(inm) = std::str::from_utf8(inm) else {
        return false;
    };
    let Ok(tag) = std::str::from_utf8(tag) else {
        return false;
    };
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let tag = opaque(tag);
    inm.split(',').any(|c| {
        let c = c.trim();
        c == "*" || opaque(c) == tag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(method: &Method, headers: &[(&'static str, &'static str)]) -> StoredResponse {
        let mut h = HeaderMap::new();
        for (n, v) in headers {
            h.append(*n, HeaderValue::from_static(v));
        }
        StoredResponse::new(
            method,
            StatusCode::OK,
            &h,
            Bytes::from_static(b"body"),
            [1_000, 2_000, 3_000],
            7,
        )
    }

    #[test]
    fn connection_headers_and_cookies_are_not_kept() {
        let s = stored(
            &Method::GET,
            &[
                ("content-type", "text/plain"),
                ("content-length", "4"),
                ("connection", "close"),
                ("set-cookie", "a=b"),
                ("date", "x"),
            ],
        );
        let names: Vec<&str> = s.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "etag"]);
        let head = stored(&Method::HEAD, &[("content-length", "4")]);
        let names: Vec<&str> = head.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["content-length"],
            "HEAD keeps its length and makes no tag"
        );
    }

    #[test]
    fn a_matching_tag_answers_304_without_a_body() {
        let tag = etag(b"body");
        let r = stored(&Method::GET, &[("content-type", "text/plain")]).respond(
            Served::Hit,
            Some(&tag),
            3_500,
        );
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], tag);
        assert!(!r.headers().contains_key(header::CONTENT_TYPE));
        assert_eq!(r.headers()[header::AGE], "2");
        assert_eq!(r.headers()[&X_CACHE], "hit");

        let other = HeaderValue::from_static("\"nope\"");
        let r = stored(&Method::GET, &[]).respond(Served::Stale, Some(&other), 1_000);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[&X_CACHE], "stale");
    }

    #[test]
    fn weak_comparison_lists_and_star() {
        assert!(matches(b"\"a\"", b"\"a\""));
        assert!(matches(b"W/\"a\"", b"\"a\""));
        assert!(matches(b"\"x\", \"a\"", b"\"a\""));
        assert!(matches(b"*", b"\"a\""));
        assert!(!matches(b"\"b\"", b"\"a\""));
    }

    #[test]
    fn the_body_round_trips_as_bytes() {
        let s = stored(&Method::GET, &[]);
        let bytes = postcard::to_allocvec(&s).unwrap();
        assert!(bytes.len() < 80, "{}", bytes.len());
        let back: StoredResponse = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(&back.body.0[..], b"body");
        assert_eq!(back.nonce, 7);
    }
}
