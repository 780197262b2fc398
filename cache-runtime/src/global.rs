//! The global cache the macros use when no `cache = ..` is given.

use std::sync::OnceLock;

use crate::cache::{Cache, CacheBuilder};
use crate::error::{AlreadyInstalled, InitError};
use crate::notice::{Cause, unheard};

static GLOBAL: OnceLock<Cache> = OnceLock::new();

/// Builds the global cache from the environment and installs it: the way to start a program,
/// so that a configuration mistake is an error at startup rather than a cache that is quietly
/// off. See [`CacheBuilder::from_env`] for the variables; with none set, the cache is in
/// process memory.
///
/// ```
/// # fn main() -> Result<(), cache_runtime::InitError> {
/// let cache = cache_runtime::init_from_env()?;
/// assert!(std::ptr::eq(cache, cache_runtime::global()));
/// # Ok(()) }
/// ```
///
/// Call it once, before the first cached call: afterwards a global cache is in place and this
/// returns [`InitError::AlreadyInstalled`], changing nothing.
pub fn init_from_env() -> Result<&'static Cache, InitError> {
    init_with(|builder| builder)
}

/// [`init_from_env`] with the settings the environment gives adjusted in code before the cache
/// is built: what a variable cannot carry (a sealer, an audit sink, a codec), or a setting
/// that must not be left to the environment.
///
/// ```
/// # fn main() -> Result<(), cache_runtime::InitError> {
/// let cache = cache_runtime::init_with(|builder| builder.prefix("orders"))?;
/// assert_eq!(cache.prefix(), "orders:");
/// # Ok(()) }
/// ```
pub fn init_with(
    configure: impl FnOnce(CacheBuilder) -> CacheBuilder,
) -> Result<&'static Cache, InitError> {
    if GLOBAL.get().is_some() {
        return Err(AlreadyInstalled.into());
    }
    install(configure(CacheBuilder::from_env()?).build()?)?;
    Ok(global())
}

/// Installs `cache` as the global cache. Call it once at startup, before the first cached call;
/// afterwards it returns [`AlreadyInstalled`] and changes nothing.
///
/// ```
/// let cache = cache_runtime::Cache::builder().prefix("app").build().unwrap();
/// cache_runtime::install(cache).unwrap();
/// assert_eq!(cache_runtime::global().prefix(), "app:");
/// ```
pub fn install(cache: Cache) -> Result<(), AlreadyInstalled> {
    GLOBAL.set(cache).map_err(|_| AlreadyInstalled)
}

/// The global cache: the installed one, or else one built from the environment on first use.
///
/// A configuration error in the environment cannot fail the calls that trigger this, so the
/// global cache caches nothing (every call runs its function), and says why: one `error`
/// event on the `cachette` target, the same line on stderr when no `tracing` subscriber is
/// installed, and [`Cache::health`] reporting `disabled:` and the error.
/// [`init_from_env`] returns the error instead.
pub fn global() -> &'static Cache {
    GLOBAL.get_or_init(|| {
        Cache::from_env().unwrap_or_else(|e| {
            tracing::error!(target: "cachette", error = %e, "invalid cache configuration; caching is disabled");
            unheard(Cause::Config, || {
                format!("invalid cache configuration, caching is disabled: {e}")
            });
            CacheBuilder::new().build_disabled(e.to_string())
        })
    })
}
