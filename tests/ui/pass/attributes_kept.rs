//! Doc comments and other attributes on a cached function stay on it.

#![deny(missing_docs)]

use cachette::cached;

/// Loads a value. This doc comment must survive the macro, or `missing_docs` fails the build.
#[cached(key = "kept:{id}")]
#[must_use]
#[allow(clippy::unused_async)]
#[inline]
pub async fn load(id: u64) -> u64 {
    id
}

#[cached(key = "deprecated:{id}")]
#[deprecated = "use `load`"]
/// Doc after the attribute.
pub async fn old(id: u64) -> u64 {
    id
}

/// Entry point.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(load(1).await, 1);
    #[allow(deprecated)]
    let v = old(2).await;
    assert_eq!(v, 2);
}
