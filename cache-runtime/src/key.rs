//! Rendering arguments into key parts.
//!
//! A key is a template's literal text with each placeholder replaced by a rendered argument.
//! Rendered parts are *escaped*: every byte outside `[A-Za-z0-9_.@-]` becomes `%XX`. So a part
//! can never contain a separator such as `:` nor a glob character (`* ? [ ] \`), which is what
//! makes keys unambiguous and pattern invalidation safe: `user:{a}:{b}` with `a = "x:y"` renders
//! as `user:x%3Ay:…` and never collides with `a = "x", b = "y…"`. `None` renders as `~`, which
//! no escaped part can contain.
//!
//! `{arg:hash}` renders the first 128 bits of SHA-256 over the argument's postcard encoding, as
//! 32 lowercase hex digits. Postcard's wire format is stable since 1.0, so the hash is the same
//! across processes, machines and releases for the same value — as long as the type serializes
//! deterministically (use `BTreeMap`, not `HashMap`, in hashed arguments).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// A type that can be rendered into a cache key.
///
/// Implemented for integers, `bool`, `char`, floats, strings, references and smart pointers to
/// such types, `Option<T>`, and (with the `uuid` feature) `uuid::Uuid`. Implement it for a
/// newtype id by delegating to its field:
///
/// ```
/// use cache_runtime::{KeyPart, KeyWriter};
///
/// struct UserId(u64);
///
/// impl KeyPart for UserId {
///     fn write_key_part(&self, out: &mut KeyWriter<'_>) {
///         self.0.write_key_part(out)
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be rendered into a cache key",
    label = "this parameter is part of the cache key, so its type must implement `KeyPart`",
    note = "implement `cachette::KeyPart` for it, render a stable hash with `{{name:hash}}` (needs `Serialize`), key a field with `{{name.field}}`, or leave it out of the key with `skip = [name]`"
)]
pub trait KeyPart {
    /// Appends this value to the key, escaped through `out`.
    fn write_key_part(&self, out: &mut KeyWriter<'_>);
}

/// The sink a [`KeyPart`] writes into; everything written through it is escaped.
pub struct KeyWriter<'a> {
    buf: &'a mut String,
}

impl<'a> KeyWriter<'a> {
    /// Wraps a key buffer.
    pub fn new(buf: &'a mut String) -> Self {
        KeyWriter { buf }
    }

    /// Appends `s`, escaping every byte outside `[A-Za-z0-9_.@-]` as `%XX`.
    pub fn write_str(&mut self, s: &str) {
        escape_into(self.buf, s);
    }

    /// Appends the `None` marker `~`.
    pub fn write_none(&mut self) {
        self.buf.push('~');
    }

    /// Appends text that is known to need no escaping (digits, hex).
    fn write_safe(&mut self, s: &str) {
        debug_assert!(s.bytes().all(is_unescaped));
        self.buf.push_str(s);
    }
}

#[inline]
fn is_unescaped(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-')
}

/// Appends `s` to `buf` with every byte outside `[A-Za-z0-9_.@-]` written as `%XX`.
pub fn escape_into(buf: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !is_unescaped(b) {
            // `start < i` only when the byte at `start` is unescaped ASCII: a char boundary.
            if start < i {
                buf.push_str(&s[start..i]);
            }
            buf.push('%');
            buf.push(HEX[(b >> 4) as usize] as char);
            buf.push(HEX[(b & 0xF) as usize] as char);
            start = i + 1;
        }
    }
    if start < bytes.len() {
        buf.push_str(&s[start..]);
    }
}

/// Escapes `s` as a key part would be escaped; for building keys by hand that match
/// what the macros render.
///
/// ```
/// assert_eq!(cache_runtime::escape("a:b*"), "a%3Ab%2A");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Appends the decimal digits of `n`. Digits need no escaping; this is `write!(buf, "{n}")`
/// without the formatting machinery, which cost more than the rest of rendering a key.
#[inline]
fn push_decimal(buf: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend(digits[at..].iter().map(|&d| char::from(d)));
}

macro_rules! unsigned_parts {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            #[inline]
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                push_decimal(out.buf, *self as u64);
            }
        }
    )*};
}
unsigned_parts!(u8, u16, u32, u64, usize);

macro_rules! signed_parts {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            #[inline]
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                if *self < 0 {
                    out.buf.push('-');
                }
                push_decimal(out.buf, self.unsigned_abs() as u64);
            }
        }
    )*};
}
signed_parts!(i8, i16, i32, i64, isize);

macro_rules! wide_parts {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                // Digits and '-' need no escaping; formatting straight into the buffer avoids a
                // temporary string.
                let _ = write!(out.buf, "{}", self);
            }
        }
    )*};
}
wide_parts!(u128, i128);

macro_rules! display_parts {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                let mut tmp = String::new();
                let _ = write!(tmp, "{}", self);
                out.write_str(&tmp);
            }
        }
    )*};
}
display_parts!(f32, f64, char);

impl KeyPart for bool {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_safe(if *self { "true" } else { "false" });
    }
}

impl KeyPart for str {
    #[inline]
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self);
    }
}

impl KeyPart for String {
    #[inline]
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self);
    }
}

impl KeyPart for Cow<'_, str> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self);
    }
}

impl<T: KeyPart + ?Sized> KeyPart for &T {
    #[inline]
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        (**self).write_key_part(out);
    }
}

impl<T: KeyPart + ?Sized> KeyPart for &mut T {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        (**self).write_key_part(out);
    }
}

impl<T: KeyPart + ?Sized> KeyPart for Box<T> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        (**self).write_key_part(out);
    }
}

impl<T: KeyPart + ?Sized> KeyPart for Arc<T> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        (**self).write_key_part(out);
    }
}

impl<T: KeyPart + ?Sized> KeyPart for Rc<T> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        (**self).write_key_part(out);
    }
}

impl<T: KeyPart> KeyPart for Option<T> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        match self {
            Some(v) => v.write_key_part(out),
            None => out.write_none(),
        }
    }
}

#[cfg(feature = "uuid")]
impl KeyPart for uuid::Uuid {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        let mut buf = uuid::Uuid::encode_buffer();
        out.write_safe(self.hyphenated().encode_lower(&mut buf));
    }
}

/// Renders `value` for a key as `{name:hash}` does: 32 hex digits of SHA-256 over its postcard
/// encoding.
///
/// Postcard needs the length of every sequence and map up front; a value whose `Serialize`
/// does not give it (a struct with a `#[serde(flatten)]` field, a map or sequence serialized
/// from an iterator) is hashed over its MessagePack encoding instead and renders as `m`
/// followed by 32 hex digits, so the two encodings can never produce the same part. Both
/// encodings are decodable, so distinct values of one type hash apart.
///
/// # Errors
///
/// [`UnhashableValue`] when the value's `Serialize` implementation itself fails: nothing is
/// written then, and the caller must not use the key (rendering the error instead would give
/// every such value the same key).
///
/// ```
/// use std::collections::HashMap;
/// use cache_runtime::{KeyWriter, write_hash};
///
/// #[derive(serde::Serialize)]
/// struct Filter { user: u64, #[serde(flatten)] extra: HashMap<String, String> }
///
/// let render = |user| {
///     let mut s = String::new();
///     write_hash(&mut KeyWriter::new(&mut s), &Filter { user, extra: HashMap::new() }).unwrap();
///     s
/// };
/// assert_ne!(render(1), render(2));
/// ```
pub fn write_hash<T: serde::Serialize + ?Sized>(
    out: &mut KeyWriter<'_>,
    value: &T,
) -> Result<(), UnhashableValue> {
    let (marker, digest) = match postcard::to_allocvec(value) {
        Ok(bytes) => ("", Sha256::digest(&bytes)),
        Err(postcard::Error::SerializeSeqLengthUnknown) => match rmp_serde::to_vec(value) {
            Ok(bytes) => ("m", Sha256::digest(&bytes)),
            Err(e) => return Err(UnhashableValue(e.to_string())),
        },
        Err(e) => return Err(UnhashableValue(e.to_string())),
    };
    let mut hex = String::with_capacity(33);
    hex.push_str(marker);
    for b in &digest[..16] {
        let _ = write!(hex, "{b:02x}");
    }
    out.write_safe(&hex);
    Ok(())
}

/// A `{name:hash}` argument whose `Serialize` implementation failed; the call it belongs to
/// runs uncached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the argument could not be serialized for its key hash: {0}")]
pub struct UnhashableValue(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn render<T: KeyPart + ?Sized>(v: &T) -> String {
        let mut s = String::new();
        v.write_key_part(&mut KeyWriter::new(&mut s));
        s
    }

    #[test]
    fn escapes_separators_and_globs() {
        assert_eq!(render("a:b"), "a%3Ab");
        assert_eq!(render("*?[]\\{}"), "%2A%3F%5B%5D%5C%7B%7D");
        assert_eq!(render("50%"), "50%25");
        assert_eq!(render("é"), "%C3%A9");
        assert_eq!(render("user-1_x.y@z"), "user-1_x.y@z");
    }

    #[test]
    fn renders_scalars() {
        assert_eq!(render(&42u64), "42");
        assert_eq!(render(&-7i32), "-7");
        assert_eq!(render(&true), "true");
        assert_eq!(render(&Some(3u8)), "3");
        assert_eq!(render(&None::<u8>), "~");
        assert_eq!(render(&Some(String::new())), "");
    }

    #[test]
    fn integers_render_as_display_does() {
        fn check<T: KeyPart + std::fmt::Display>(values: &[T]) {
            for v in values {
                assert_eq!(render(v), v.to_string());
            }
        }
        check(&[0u8, 9, 10, 255]);
        check(&[0u16, u16::MAX]);
        check(&[0u32, 1_000_000, u32::MAX]);
        check(&[0u64, 1, 99, 100, 12_345_678_901, u64::MAX]);
        check(&[0usize, usize::MAX]);
        check(&[i8::MIN, -1, 0, i8::MAX]);
        check(&[i16::MIN, i16::MAX]);
        check(&[i32::MIN, -10, i32::MAX]);
        check(&[i64::MIN, -1, 0, i64::MAX]);
        check(&[isize::MIN, isize::MAX]);
        check(&[u128::MAX]);
        check(&[i128::MIN]);
    }

    #[test]
    fn hash_is_stable() {
        let mut s = String::new();
        write_hash(&mut KeyWriter::new(&mut s), &("filter", 3u32)).unwrap();
        // postcard("filter", 3) = 06 'filter' 03; the digest below is part of the documented
        // format and must never change between releases.
        assert_eq!(s.len(), 32);
        let mut again = String::new();
        write_hash(&mut KeyWriter::new(&mut again), &("filter", 3u32)).unwrap();
        assert_eq!(s, again);
        assert_eq!(s, HASH_OF_FILTER_3);
    }

    const HASH_OF_FILTER_3: &str = include_str!("../tests/fixtures/hash_filter_3.txt");

    fn hash_of<T: serde::Serialize>(v: &T) -> Result<String, UnhashableValue> {
        let mut s = String::new();
        write_hash(&mut KeyWriter::new(&mut s), v).map(|()| s)
    }

    /// Values postcard cannot encode (unknown lengths) used to render one shared part.
    #[test]
    fn unknown_lengths_hash_apart_and_never_like_postcard() {
        use std::collections::HashMap;
        #[derive(serde::Serialize)]
        struct Flat {
            q: String,
            #[serde(flatten)]
            extra: HashMap<String, u32>,
        }
        let flat = |q: &str| Flat {
            q: q.to_owned(),
            extra: HashMap::new(),
        };
        let (a, b) = (
            hash_of(&flat("alice")).unwrap(),
            hash_of(&flat("bob")).unwrap(),
        );
        assert_ne!(a, b);
        assert_eq!(a, hash_of(&flat("alice")).unwrap(), "stable");
        assert!(a.starts_with('m') && a.len() == 33, "{a}");
        assert!(a[1..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(HASH_OF_FILTER_3.bytes().all(|c| c.is_ascii_hexdigit()));

        struct Unsized(Vec<u8>);
        impl serde::Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().filter(|_| true))
            }
        }
        let one = hash_of(&Unsized(vec![1])).unwrap();
        assert_ne!(one, hash_of(&Unsized(vec![2])).unwrap());
        assert_ne!(one, hash_of(&Unsized(vec![1, 1])).unwrap());
    }

    #[test]
    fn a_failing_serialize_is_an_error_not_a_shared_part() {
        struct Fails;
        impl serde::Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut s = String::new();
        assert!(write_hash(&mut KeyWriter::new(&mut s), &Fails).is_err());
        assert!(s.is_empty(), "nothing written: {s}");
    }
}
