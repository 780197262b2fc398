//! The global cache the macros use when no `cache = ..` is given.

use std::sync::OnceLock;

use crate::cache::Cache;
use crate::error::AlreadyInstalled;

static GLOBAL: OnceLock<Cache> = OnceLock::new();

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
/// A configuration error in the environment cannot fail the calls that trigger this, so it is
/// logged as an error and the global cache is disabled (every call runs its function).
pub fn global() -> &'static Cache {
    GLOBAL.get_or_init(|| {
        Cache::from_env().unwrap_or_else(|e| {
            tracing::error!(target: "cachette", error = %e, "invalid cache configuration; caching is disabled");
            Cache::disabled()
        })
    })
}
