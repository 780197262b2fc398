//! What the macros' expansions call. Hidden from docs; reached through `cachette::__private`.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::io::Write;
use super::load::{Attached, Call, Detached, Share};
use super::options::Policy;
use super::{Cache, Invalidation, now_ms};
use crate::key::{KeyPart, KeyWriter, write_hash};
use crate::registry::FnSpec;

/// How a function's return value maps to what is cached.
///
/// `Result<T, E>` caches `Ok` only; `Option<T>` caches `Some` only (and `None` too with
/// `cache_none = true`); any other `T` is wrapped in [`Plain`] and always cached.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached",
    label = "the value returned here must implement `Serialize` and `DeserializeOwned`"
)]
pub trait Outcome: Sized {
    /// What is stored.
    type Value: Serialize + DeserializeOwned;
    /// The value to store, if this outcome is cacheable.
    fn cached_value(&self, cache_none: bool) -> Option<&Self::Value>;
    /// Rebuilds the outcome from a stored value.
    fn from_cached(value: Self::Value) -> Self;
    /// Whether this outcome is a failure (an `Err`), for fail-safe.
    fn is_failure(&self) -> bool {
        false
    }
}

impl<T: Serialize + DeserializeOwned, E> Outcome for Result<T, E> {
    type Value = T;
    #[inline]
    fn cached_value(&self, _: bool) -> Option<&T> {
        self.as_ref().ok()
    }
    #[inline]
    fn from_cached(value: T) -> Self {
        Ok(value)
    }
    #[inline]
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}

impl<T: Serialize + DeserializeOwned> Outcome for Option<T> {
    type Value = Option<T>;
    #[inline]
    fn cached_value(&self, cache_none: bool) -> Option<&Option<T>> {
        (self.is_some() || cache_none).then_some(self)
    }
    #[inline]
    fn from_cached(value: Option<T>) -> Self {
        value
    }
}

/// A return value that is always cached.
#[doc(hidden)]
pub struct Plain<T>(pub T);

impl<T: Serialize + DeserializeOwned> Outcome for Plain<T> {
    type Value = T;
    #[inline]
    fn cached_value(&self, _: bool) -> Option<&T> {
        Some(&self.0)
    }
    #[inline]
    fn from_cached(value: T) -> Self {
        Plain(value)
    }
}

/// Builds one key (or tag) from a template's literals and rendered arguments.
#[doc(hidden)]
pub struct KeyBuilder {
    buf: String,
    /// A `{name:hash}` argument failed to serialize: the key must not be used.
    unhashable: bool,
}

impl KeyBuilder {
    /// A key of `cache`: starts with its prefix.
    #[inline]
    pub fn key(cache: &Cache) -> Self {
        let mut buf = String::with_capacity(cache.inner.prefix.len() + 48);
        buf.push_str(&cache.inner.prefix);
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
        cache
            .inner
            .phi
            .write_id_hash(rendered.as_bytes(), &mut self.buf);
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

impl Cache {
    /// Runs one `#[cached]` call: `make` is called on a miss only and yields the rendered tags
    /// and the original body.
    #[doc(hidden)]
    pub async fn __call<O, F, Fut>(&self, spec: &'static FnSpec, key: String, make: F) -> O
    where
        O: Outcome,
        F: FnOnce() -> (Vec<String>, Fut),
        Fut: Future<Output = O>,
    {
        let (tags, fut) = make();
        self.__call_tagged(spec, key, &tags, || fut, None).await
    }

    /// Runs one `#[cached]` call whose loader borrows from the caller: a stale value is
    /// refreshed by the caller that wins the key's flight and lease, while the others are
    /// served the stale value at once.
    #[doc(hidden)]
    pub async fn __call_tagged<O, F, Fut>(
        &self,
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
        let call = Call {
            key: &key,
            tags,
            spec: Some(spec),
            policy: Policy::of_spec(spec, self.inner.default_ttl),
        };
        if let Some(v) = self.fresh_in_memory::<O::Value, String>(&call) {
            return O::from_cached(v);
        }
        self.run::<O, String, F, Fut, Attached>(call, load, share)
            .await
    }

    /// Runs one `#[cached]` call whose loader owns what it uses: stale values are refreshed in
    /// the background, and a load past its timeout finishes there.
    #[doc(hidden)]
    pub async fn __call_detached<O, F, Fut>(
        &self,
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
        let call = Call {
            key: &key,
            tags,
            spec: Some(spec),
            policy: Policy::of_spec(spec, self.inner.default_ttl),
        };
        if let Some(v) = self.fresh_in_memory::<O::Value, String>(&call) {
            return O::from_cached(v);
        }
        self.run::<O, String, F, Fut, Detached>(call, load, share)
            .await
    }
}

impl Cache {
    /// Runs one `#[cache_put]` call: always runs `body`, then stores a cacheable result
    /// unconditionally (it is newer than whatever the key holds). Tag versions are read before
    /// the body runs, so an invalidation of a tag during the call still wins.
    #[doc(hidden)]
    pub async fn __put<O, Fut, S>(
        &self,
        spec: &'static FnSpec,
        key: String,
        tags: &[S],
        body: Fut,
    ) -> O
    where
        O: Outcome,
        S: AsRef<str>,
        Fut: Future<Output = O>,
    {
        let policy = Policy::of_spec(spec, self.inner.default_ttl);
        if self.inner.disabled || policy.ttl.is_zero() {
            return body.await;
        }
        // What the key and its tags hold before the body runs: an invalidation from here on
        // wins over this write.
        let read = match self.flush_pending().await {
            Ok(()) => {
                let keys: Vec<String> = tags.iter().map(|t| self.tag_key(t.as_ref())).collect();
                self.read_with_versions(&key, &keys).await
            }
            Err(e) => Err(e),
        };
        let started_ms = now_ms();
        let started = std::time::Instant::now();
        let out = body.await;
        let load_time = started.elapsed();
        self.inner.stats.load();
        spec.stats.load();
        match read {
            Ok((observed, versions)) => {
                if let Some(value) = out.cached_value(spec.cache_none) {
                    let times = (started_ms, load_time);
                    self.write_entry(
                        &key,
                        value,
                        tags,
                        &versions,
                        Write::Replace(observed.as_deref()),
                        times,
                        &policy,
                        Some(spec),
                    )
                    .await;
                }
            }
            Err(e) => self.store_error(Some(spec), "get", &e),
        }
        out
    }

    /// Applies the invalidation of an `#[invalidate]` call. Failures are logged and counted:
    /// the function's own result is returned either way.
    #[doc(hidden)]
    pub async fn __invalidate(&self, function: &'static str, inv: &Invalidation) {
        if self.inner.disabled || inv.is_empty() {
            return;
        }
        if let Err(e) = self.apply(inv).await {
            self.inner.stats.error();
            tracing::warn!(target: "cachette", function, error = %e, "invalidation failed");
        }
    }
}

impl Cache {
    /// The keyed hash an identifier takes in key names of protected functions (`patient =
    /// ".."` parameters): for building keys, tags and patterns by hand that match theirs.
    pub fn hash_id(&self, id: &str) -> String {
        let mut rendered = String::with_capacity(id.len());
        id.write_key_part(&mut KeyWriter::new(&mut rendered));
        let mut out = String::with_capacity(32);
        self.inner.phi.write_id_hash(rendered.as_bytes(), &mut out);
        out
    }

    /// Records an audit event for protected data (used by the healthcare helpers).
    #[doc(hidden)]
    pub fn __audit(
        &self,
        function: &str,
        operation: crate::phi::AuditOperation,
        outcome: &'static str,
        key: &str,
        count: Option<u64>,
    ) {
        self.inner
            .phi
            .audit(function, operation, outcome, key, count);
    }

    /// Applies the invalidation of an `#[invalidate_patient_cache]` call, and audits it.
    #[doc(hidden)]
    pub async fn __invalidate_phi(&self, function: &'static str, inv: &Invalidation) {
        if self.inner.disabled || inv.is_empty() {
            return;
        }
        let (outcome, count) = match self.apply(inv).await {
            Ok(report) => ("ok", Some(report.keys + report.pattern_keys)),
            Err(e) => {
                self.inner.stats.error();
                tracing::warn!(target: "cachette", function, error = %e, "invalidation failed");
                ("store_error", None)
            }
        };
        let what = [&inv.keys[..], &inv.tags[..], &inv.patterns[..]]
            .concat()
            .join(" ");
        self.inner.phi.audit(
            function,
            crate::phi::AuditOperation::Invalidate,
            outcome,
            &what,
            count,
        );
    }
}
