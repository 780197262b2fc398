//! Functions under the attribute macros with the facade renamed to `renamed_cachette`: with no
//! `cachette` in scope, they compile only if every generated path honours `crate = ".."`.

use std::sync::atomic::{AtomicU32, Ordering};

use renamed_cachette::{KeyPart, cache_put, cached, invalidate};

/// A newtype id, rendered as its field.
#[derive(KeyPart, Clone, Copy)]
#[cachette(crate = "renamed_cachette")]
pub struct UserId(pub u64);

/// A unit enum, rendered as the variant's name.
#[derive(KeyPart, Clone, Copy)]
#[cachette(crate = "renamed_cachette")]
pub enum Region {
    Eu,
    Us,
}

/// A generic newtype: the derive bounds its field by the renamed crate's `KeyPart`.
#[derive(KeyPart, Clone, Copy)]
#[cachette(crate = "::renamed_cachette")]
pub struct Tagged<T>(pub T);

/// How many times [`user`] ran its body.
pub static LOADS: AtomicU32 = AtomicU32::new(0);

/// Counts its loads.
#[cached(
    crate = "renamed_cachette",
    key = "rename:user:{id}:{region}",
    ttl = "5m"
)]
pub async fn user(id: UserId, region: Region) -> Result<String, std::io::Error> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let region = match region {
        Region::Eu => "eu",
        Region::Us => "us",
    };
    Ok(format!("user {} in {region}", id.0))
}

/// Borrows its argument, so its stale values are refreshed inline.
#[cached(crate = "renamed_cachette", key = "rename:shard:{shard}", ttl = "5m")]
pub async fn shard(shard: &Tagged<u32>) -> u32 {
    shard.0 * 2
}

/// Drops the entry of [`user`].
#[invalidate(crate = "renamed_cachette", keys = ["rename:user:{id}:{region}"])]
pub async fn forget_user(id: UserId, region: Region) -> Result<(), std::io::Error> {
    Ok(())
}

/// Writes the entry of [`user`].
#[cache_put(crate = "renamed_cachette", key = "rename:user:{id}:{region}")]
pub async fn put_user(id: UserId, region: Region, name: String) -> Result<String, std::io::Error> {
    Ok(name)
}
