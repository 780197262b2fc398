//! What the attribute macros expand to, and nothing else: six functions and the types their
//! signatures need. Not a public API: it changes with the macros, and the facade pins this
//! crate with `=` so that a macro crate and a runtime of different versions never meet.
//!
//! An expanded `#[cached]` function renders its key with [`key`] (and its tags with [`tag`]),
//! then hands the key, the tags and the original body to [`cached_in_background`] or
//! [`cached_inline`]; `#[cache_put]` calls [`put`]; `#[invalidate]` builds an
//! [`Invalidation`] from keys rendered with [`tag`] and calls [`invalidate`].

use std::future::Future;

pub use crate::cache::{KeyBuilder, Outcome, Plain, Share, ShareNone, ShareViaClone, Sharer};
pub use crate::registry::REGISTRY;
pub use crate::{Cache, Compress, FnSpec, Invalidation, Priority, global};
pub use core::option::Option::{self, None, Some};
pub use linkme;
pub use std::string::String;

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
) -> O
where
    O: Outcome + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = O> + Send + 'static,
{
    cache.__call_detached(spec, key, tags, load, share).await
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
) -> O
where
    O: Outcome,
    F: FnOnce() -> Fut,
    Fut: Future<Output = O>,
{
    cache.__call_tagged(spec, key, tags, load, share).await
}

/// A `#[cache_put]` call: runs `body`, then stores a cacheable result over whatever the key
/// holds (but never over an invalidation that happened while the body ran).
pub async fn put<O, Fut>(
    cache: &Cache,
    spec: &'static FnSpec,
    key: String,
    tags: &[String],
    body: Fut,
) -> O
where
    O: Outcome,
    Fut: Future<Output = O>,
{
    cache.__put(spec, key, tags, body).await
}

/// The invalidation of an `#[invalidate]` call (`protected`: `#[invalidate_patient_cache]`,
/// which audits it). Failures are logged and counted: the function's result stands.
pub async fn invalidate(
    cache: &Cache,
    function: &'static str,
    inv: &Invalidation,
    protected: bool,
) {
    if protected {
        cache.__invalidate_phi(function, inv).await
    } else {
        cache.__invalidate(function, inv).await
    }
}
