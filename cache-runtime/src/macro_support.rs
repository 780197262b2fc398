//! What the attribute macros expand to, and nothing else: eight functions and the types their
//! signatures need. Not a public API: it changes with the macros, and the facade pins this
//! crate with `=` so that a macro crate and a runtime of different versions never meet.
//!
//! An expanded `#[cached]` function renders its key with [`key`] (and its tags with [`tag`]),
//! then hands the key, the tags and the original body to [`cached_in_background`] or
//! [`cached_inline`] (a batch to [`cached_batch`], its ordered body's values paired with their
//! ids by [`by_position`]); `#[cache_put]` calls [`put`]; `#[invalidate]` builds an
//! [`Invalidation`] from keys rendered with [`tag`] and calls [`invalidate`].

use std::future::Future;

use serde::Serialize;

use crate::cache::call::Sharing;
pub use crate::cache::call::put;
use crate::cache::call::{InBackground, Inline};
pub use crate::cache::{
    Keep, KeepNone, KeepViaClone, Keeper, Outcome, Plain, Share, ShareNone, ShareViaClone, Sharer,
};
#[cfg(not(feature = "testing"))]
pub use crate::global;
use crate::key::{KeyPart, KeyWriter, write_hash};
pub use crate::registry::REGISTRY;
pub use crate::{Cache, Compress, FnSpec, Invalidation, Priority};

/// The global cache, or the one a test scoped in its place (`testing::scope`).
#[cfg(feature = "testing")]
#[inline]
pub fn global() -> &'static Cache {
    crate::testing::scoped_global()
}

/// What the test kit decides for a cached call on `key` before it reaches the cache: `true`
/// to run the body uncached (`testing::pass_through`). A call probed by `testing::key_of`
/// records its key and never completes.
#[cfg(feature = "testing")]
pub(crate) async fn test_kit(key: &str) -> bool {
    if crate::testing::probe_key(key) {
        std::future::pending::<()>().await;
    }
    crate::testing::pass_through_active()
}
pub use core::clone::Clone;
pub use core::convert::Infallible;
pub use core::iter::IntoIterator;
pub use core::option::Option::{self, None, Some};
pub use core::result::Result::{Err, Ok};
pub use linkme;
pub use std::collections::{HashMap, HashSet};
pub use std::string::String;
pub use std::vec::Vec;

/// A key of `cache`: it starts with the cache's prefix.
#[inline]
pub fn key(cache: &Cache) -> KeyBuilder {
    KeyBuilder::key(cache)
}

/// A tag, or a key or pattern of an invalidation: no prefix (the cache adds it).
#[inline]
pub fn tag() -> KeyBuilder {
    KeyBuilder::tag()
}

/// A `#[cached]` call whose body owns what it uses (the default): a stale value is refreshed
/// in a background task, and a load past its `timeout` finishes there.
pub async fn cached_in_background<O, F, Fut>(
    cache: &Cache,
    spec: &'static FnSpec,
    key: String,
    tags: &[String],
    load: F,
    share: Option<&Share<O>>,
    keep: Option<&Keep<O::Value>>,
) -> O
where
    O: Outcome + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = O> + Send + 'static,
{
    #[cfg(feature = "testing")]
    if test_kit(&key).await {
        return load().await;
    }
    let sharing = Sharing {
        outcome: share,
        value: keep,
    };
    let out = cache
        .call_spec::<O, F, InBackground>(spec, &key, tags, load, sharing)
        .await;
    key_buffers::give(key);
    out
}

/// A `#[cached]` call whose body borrows from its caller (`refresh = "inline"`, or a
/// signature with references, `self` or generics): the caller that wins the key refreshes a
/// stale value itself, while every other caller is served the stale value at once.
pub async fn cached_inline<O, F, Fut>(
    cache: &Cache,
    spec: &'static FnSpec,
    key: String,
    tags: &[String],
    load: F,
    share: Option<&Share<O>>,
    keep: Option<&Keep<O::Value>>,
) -> O
where
    O: Outcome,
    F: FnOnce() -> Fut,
    Fut: Future<Output = O>,
{
    #[cfg(feature = "testing")]
    if test_kit(&key).await {
        return load().await;
    }
    let sharing = Sharing {
        outcome: share,
        value: keep,
    };
    let out = cache
        .call_spec::<O, F, Inline>(spec, &key, tags, load, sharing)
        .await;
    key_buffers::give(key);
    out
}

/// A `#[cached(batch = "id in ids")]` call: `items` are the distinct ids with their rendered
/// keys (prefix included) and tags; `load` is the original body called with the missing ids,
/// its result turned into a map by id. Values come back in the order of `items`.
pub async fn cached_batch<I, T, E, F, Fut>(
    cache: &Cache,
    spec: &'static FnSpec,
    items: Vec<(I, String, Vec<String>)>,
    load: F,
) -> Result<Vec<Option<T>>, E>
where
    I: std::hash::Hash + Eq + Clone,
    T: Serialize + serde::de::DeserializeOwned + Clone,
    F: FnOnce(Vec<I>) -> Fut,
    Fut: Future<Output = Result<std::collections::HashMap<I, T>, E>>,
{
    #[cfg(feature = "testing")]
    if crate::testing::pass_through_active() {
        let ids = items.iter().map(|(id, _, _)| id.clone()).collect();
        let mut loaded = load(ids).await?;
        return Ok(items.iter().map(|(id, _, _)| loaded.remove(id)).collect());
    }
    cache.call_batch(spec, items, load).await
}

/// The values of a batch body of the ordered form (`Vec<Option<T>>`, one per id it was given,
/// in their order), by id. A body that returned another number of values than ids has no
/// pairing to trust (a query that returned only the rows it found, say): nothing of it is
/// cached or served, its ids come back `None`, and a warning names the function.
pub fn by_position<I: std::hash::Hash + Eq, T>(
    spec: &'static FnSpec,
    asked: Vec<I>,
    values: Vec<Option<T>>,
) -> std::collections::HashMap<I, T> {
    if asked.len() != values.len() {
        tracing::warn!(
            target: "cachette",
            function = spec.name,
            ids = asked.len(),
            values = values.len(),
            "a batch body returned another number of values than ids it was given: none of \
             them is cached or returned"
        );
        return std::collections::HashMap::new();
    }
    asked
        .into_iter()
        .zip(values)
        .filter_map(|(id, value)| value.map(|value| (id, value)))
        .collect()
}

/// The invalidation of an `#[invalidate]` call (`protected`: `#[invalidate_patient_cache]`,
/// which audits it). Failures are logged and counted: the function's result stands.
pub async fn invalidate(
    cache: &Cache,
    function: &'static str,
    inv: &Invalidation,
    protected: bool,
) {
    #[cfg(feature = "testing")]
    if crate::testing::pass_through_active() {
        return;
    }
    cache.invalidate_after_call(function, inv, protected).await
}

/// Key buffers of this thread, handed back by the calls that used them and taken again by the
/// next key rendered here: a hit then allocates no key (a `malloc` and a `free` were a tenth
/// of an in-process hit).
mod key_buffers {
    use std::cell::RefCell;

    /// Buffers kept per thread: one per call in progress on it is plenty.
    const KEPT: usize = 4;
    /// Larger buffers go back to the allocator.
    const MAX_CAPACITY: usize = 512;

    thread_local! {
        static FREE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// An empty buffer of at least `capacity` bytes.
    pub(super) fn take(capacity: usize) -> String {
        let kept = FREE
            .try_with(|free| free.try_borrow_mut().ok()?.pop())
            .ok()
            .flatten();
        match kept {
            Some(mut buf) => {
                buf.clear();
                buf.reserve(capacity);
                buf
            }
            None => String::with_capacity(capacity),
        }
    }

    /// Keeps `buf` for the next key, unless enough are kept or it has grown large.
    pub(super) fn give(buf: String) {
        if buf.capacity() > MAX_CAPACITY {
            return;
        }
        let _ = FREE.try_with(|free| {
            if let Ok(mut free) = free.try_borrow_mut() {
                if free.len() < KEPT {
                    free.push(buf);
                }
            }
        });
    }
}

/// Builds one key (or tag) from a template's literals and rendered arguments.
pub struct KeyBuilder {
    buf: String,
    /// A `{name:hash}` argument failed to serialize: the key must not be used.
    unhashable: bool,
}

impl KeyBuilder {
    /// A key of `cache`: starts with its prefix.
    #[inline]
    pub fn key(cache: &Cache) -> Self {
        let prefix = cache.prefix();
        let mut buf = key_buffers::take(prefix.len() + 48);
        buf.push_str(prefix);
        KeyBuilder {
            buf,
            unhashable: false,
        }
    }

    /// A tag: no prefix.
    #[inline]
    pub fn tag() -> Self {
        KeyBuilder {
            buf: String::with_capacity(32),
            unhashable: false,
        }
    }

    /// Appends template text, unescaped (the macro has checked it).
    #[inline]
    pub fn lit(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Appends an argument, escaped.
    #[inline]
    pub fn part<T: KeyPart + ?Sized>(&mut self, value: &T) {
        value.write_key_part(&mut KeyWriter::new(&mut self.buf));
    }

    /// Appends an identifier as its keyed hash under `cache`'s identifier key, so that the key
    /// name does not reveal it. The identifier is rendered (and escaped) first, so
    /// [`Cache::hash_id`] of the same text gives the same hash.
    pub fn id<T: KeyPart + ?Sized>(&mut self, cache: &Cache, value: &T) {
        let mut rendered = String::new();
        value.write_key_part(&mut KeyWriter::new(&mut rendered));
        cache.write_id_hash(rendered.as_bytes(), &mut self.buf);
    }

    /// Appends `{arg:hash}` of a protected function: the stable hash of the argument, hashed
    /// again under `cache`'s identifier key, since an unkeyed hash of an identifier can be
    /// reversed by hashing every plausible value. Fails like [`hash`](Self::hash).
    pub fn id_hash<T: Serialize + ?Sized>(&mut self, cache: &Cache, value: &T) {
        let mut stable = String::new();
        match write_hash(&mut KeyWriter::new(&mut stable), value) {
            Ok(()) => cache.write_id_hash(stable.as_bytes(), &mut self.buf),
            Err(e) => {
                if !self.unhashable {
                    tracing::warn!(target: "cachette", error = %e, "key not rendered; running uncached");
                }
                self.unhashable = true;
            }
        }
    }

    /// Appends the stable hash of an argument (`{arg:hash}`). An argument that fails to
    /// serialize spoils the key: [`finish`](Self::finish) then gives `None`, so the call runs
    /// uncached rather than under a key that other arguments could share.
    pub fn hash<T: Serialize + ?Sized>(&mut self, value: &T) {
        if let Err(e) = write_hash(&mut KeyWriter::new(&mut self.buf), value) {
            if !self.unhashable {
                tracing::warn!(target: "cachette", error = %e, "key not rendered; running uncached");
            }
            self.unhashable = true;
        }
    }

    /// The finished key, with the function's `version` segment; `None` when an argument could
    /// not be rendered.
    #[inline]
    pub fn finish(mut self, spec: &FnSpec) -> Option<String> {
        if self.unhashable {
            return None;
        }
        if let Some(v) = spec.version {
            self.buf.push_str(":v");
            self.buf.push_str(v);
        }
        Some(self.buf)
    }

    /// A key, tag or pattern without the cache's prefix (for invalidations).
    #[inline]
    pub fn bare() -> Self {
        Self::tag()
    }

    /// The finished tag; `None` when an argument could not be rendered.
    #[inline]
    pub fn finish_tag(self) -> Option<String> {
        (!self.unhashable).then_some(self.buf)
    }
}
