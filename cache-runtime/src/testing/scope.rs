//! Per-test scopes: the global cache replaced, or no caching at all, for one task; and the key
//! a call would use.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::{Context, Waker};

use crate::cache::Cache;

tokio::task_local! {
    /// The cache that stands for the global one in this task.
    static SCOPED: &'static Cache;
    /// Whether cached calls in this task run their functions uncached.
    static PASS_THROUGH: bool;
}

thread_local! {
    /// Set while [`key_of`] polls a call: the key its cached call rendered.
    static PROBE: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Runs `test` with `cache` standing for the global cache: every `#[cached]`,
/// `#[invalidate]` and `#[cache_put]` function without a `cache = ..` of its own, called in
/// this task, uses `cache` (with its clock, faults and counters). Other tasks, and the tests
/// running beside this one, still see the global cache. Tasks spawned inside do not inherit
/// the scope (wrap their futures in `scope` too).
///
/// The handle given stays alive until the process exits (functions hold the global cache by a
/// `'static` reference): one per cache, reused when the same cache is scoped again.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use cache_runtime::{Cache, testing};
///
/// let cache = Cache::builder().prefix("test-a").build().unwrap();
/// let answer = testing::scope(&cache, async {
///     // `#[cached]` functions called here read and write `cache` (keys `test-a:…`).
///     42
/// })
/// .await;
/// assert_eq!(answer, 42);
/// # }
/// ```
pub async fn scope<F: Future>(cache: &Cache, test: F) -> F::Output {
    SCOPED.scope(leaked(cache), test).await
}

/// Runs `test` with caching off for every cached function called in this task, whatever
/// cache it uses (the global one or its own `cache = ..`): each call runs its body, nothing
/// is read or written, and `#[invalidate]` functions invalidate nothing. Tests running beside
/// it in other tasks or threads are untouched; tasks spawned inside do not inherit it.
///
/// It covers the macros' calls; for a [`Cache`] used directly
/// ([`get_or_load`](Cache::get_or_load)), give the test [`Cache::disabled`] (or a builder
/// with [`disabled(true)`](crate::CacheBuilder::disabled)): a per-cache setting, which touches
/// no other cache.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// cache_runtime::testing::pass_through(async {
///     // `#[cached]` functions called here run every time.
/// })
/// .await;
/// # }
/// ```
pub async fn pass_through<F: Future>(test: F) -> F::Output {
    PASS_THROUGH.scope(true, test).await
}

/// The key the cached call `call` would read and write, prefix included, without running it:
/// `key_of(get_user(7))` asserts a template's rendering. `None` when the call renders no key
/// (its `condition` is false, or an argument could not be hashed).
///
/// `call` is polled once, up to the point where it would reach the cache, and dropped: the
/// function's body does not run, and nothing is read from the store. A call that renders no
/// key runs its body until the body first waits.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use cache_runtime::testing::key_of;
///
/// // Any call that reaches a cache through `#[cached]` is probed; other futures give `None`.
/// assert_eq!(key_of(async { 1 }), None);
/// # }
/// ```
pub fn key_of<F: Future>(call: F) -> Option<String> {
    let mut call = std::pin::pin!(call);
    let previous = PROBE.with(|p| p.replace(Some(None)));
    let mut cx = Context::from_waker(Waker::noop());
    let _ = call.as_mut().poll(&mut cx);
    PROBE.with(|p| p.replace(previous)).flatten()
}

/// [`key_of`](fn@crate::testing::key_of) as a macro, for tests that read better with one:
/// `key_of!(get_user(7))` is `key_of(get_user(7))`.
///
/// ```
/// use cache_runtime::testing::key_of;
///
/// assert_eq!(key_of!(async { 1 }), None);
/// ```
#[macro_export]
macro_rules! key_of {
    ($call:expr $(,)?) => {
        $crate::testing::key_of($call)
    };
}

/// Whether a cached call on `key` is being probed by [`key_of`] (then the key is recorded and
/// the call must go no further).
pub(crate) fn probe_key(key: &str) -> bool {
    PROBE.with(|p| match &mut *p.borrow_mut() {
        Some(slot) => {
            *slot = Some(key.to_owned());
            true
        }
        None => false,
    })
}

/// Whether cached calls in this task run uncached ([`pass_through`]).
pub(crate) fn pass_through_active() -> bool {
    PASS_THROUGH.try_with(|p| *p).unwrap_or(false)
}

/// The cache standing for the global one in this task ([`scope`]), or the global one.
pub(crate) fn scoped_global() -> &'static Cache {
    SCOPED
        .try_with(|c| *c)
        .unwrap_or_else(|_| crate::global::global())
}

/// A `'static` handle on `cache`: the one made for it before, or a new one, kept forever.
fn leaked(cache: &Cache) -> &'static Cache {
    static KEPT: OnceLock<Mutex<Vec<&'static Cache>>> = OnceLock::new();
    let mut kept = KEPT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = kept
        .iter()
        .find(|c| std::sync::Arc::ptr_eq(&c.inner, &cache.inner))
    {
        return c;
    }
    let c: &'static Cache = Box::leak(Box::new(cache.clone()));
    kept.push(c);
    c
}
