//! Deploy safety: an entry records the shape of its value's type, and a function whose type
//! has another shape reads it as a miss, not as a value of its own type.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cachette::{Cache, cached};
use serde::{Deserialize, Serialize};
use support::RedisServer;

/// The type before a deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Before {
    first: String,
    last: String,
}

/// The type after it: the same fields in another order. postcard reads `Before`'s bytes as
/// this type without an error, with the names swapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct After {
    last: String,
    first: String,
}

#[cached(key = "person:{id}", ttl = "10m", cache = cache, skip = [cache, calls])]
async fn before(cache: &Cache, calls: &AtomicU32, id: u32) -> Result<Before, String> {
    calls.fetch_add(1, SeqCst);
    Ok(Before {
        first: format!("Ada {id}"),
        last: "Lovelace".into(),
    })
}

#[cached(key = "person:{id}", ttl = "10m", cache = cache, skip = [cache, calls])]
async fn after(cache: &Cache, calls: &AtomicU32, id: u32) -> Result<After, String> {
    calls.fetch_add(1, SeqCst);
    Ok(After {
        last: "Lovelace".into(),
        first: format!("Ada {id}"),
    })
}

/// `after` with the check turned off for this function alone.
#[cached(
    key = "person:{id}",
    ttl = "10m",
    cache = cache,
    skip = [cache, calls],
    value_shape = false
)]
async fn after_unchecked(cache: &Cache, calls: &AtomicU32, id: u32) -> Result<After, String> {
    calls.fetch_add(1, SeqCst);
    Ok(After {
        last: "Lovelace".into(),
        first: format!("Ada {id}"),
    })
}

fn ada() -> After {
    After {
        last: "Lovelace".into(),
        first: "Ada 1".into(),
    }
}

async fn a_deploy_that_changes_the_type_reads_no_old_entry(cache: Cache) {
    let calls = AtomicU32::new(0);
    before(&cache, &calls, 1).await.unwrap();
    assert_eq!(calls.load(SeqCst), 1);
    // The new type loads for itself, then is served its own entry.
    assert_eq!(after(&cache, &calls, 1).await.unwrap(), ada());
    assert_eq!(
        calls.load(SeqCst),
        2,
        "the old entry was read as the new type"
    );
    assert_eq!(after(&cache, &calls, 1).await.unwrap(), ada());
    assert_eq!(calls.load(SeqCst), 2, "the new entry is a hit");
    // And the other way round (a rollback).
    assert_eq!(before(&cache, &calls, 1).await.unwrap().first, "Ada 1");
    assert_eq!(calls.load(SeqCst), 3);
}

#[tokio::test]
async fn on_memory() {
    a_deploy_that_changes_the_type_reads_no_old_entry(Cache::builder().build().unwrap()).await;
}

#[tokio::test]
async fn on_redis() {
    let server = RedisServer::start();
    a_deploy_that_changes_the_type_reads_no_old_entry(support::caches::on_server(&server, "s"))
        .await;
}

/// Across two caches on one server (two versions of a program), and what the opt-out gives.
#[tokio::test]
async fn two_versions_of_a_program_on_one_server() {
    let server = RedisServer::start();
    let old = support::caches::on_server(&server, "p");
    let new = support::caches::on_server(&server, "p");
    let calls = AtomicU32::new(0);
    before(&old, &calls, 1).await.unwrap();
    assert_eq!(after(&new, &calls, 1).await.unwrap(), ada());
    assert_eq!(calls.load(SeqCst), 2);

    // Without shapes, the new program decodes the old bytes into the wrong fields: what the
    // check prevents.
    let unchecked = || {
        Cache::builder()
            .redis(server.url())
            .prefix("u")
            .value_shapes(false)
            .build()
            .unwrap()
    };
    let (unchecked_old, unchecked_new) = (unchecked(), unchecked());
    before(&unchecked_old, &calls, 1).await.unwrap();
    let read = after(&unchecked_new, &calls, 1).await.unwrap();
    assert_eq!(calls.load(SeqCst), 3, "served from the old entry");
    assert_eq!(read.last, "Ada 1", "the names swapped");
}

/// `value_shape = false` on one function: it reads an entry written for another shape (the
/// swap the cache-wide opt-out shows), while a function with the default still reloads.
async fn a_function_that_opts_out_reads_any_shape(cache: Cache) {
    let calls = AtomicU32::new(0);
    before(&cache, &calls, 1).await.unwrap();
    let read = after_unchecked(&cache, &calls, 1).await.unwrap();
    assert_eq!(calls.load(SeqCst), 1, "served from the old entry");
    assert_eq!(read.last, "Ada 1", "the names swapped");
    assert_eq!(after(&cache, &calls, 1).await.unwrap(), ada());
    assert_eq!(calls.load(SeqCst), 2, "the default checks the shape");
}

#[tokio::test]
async fn per_function_opt_out_on_memory() {
    a_function_that_opts_out_reads_any_shape(Cache::builder().build().unwrap()).await;
}

#[tokio::test]
async fn per_function_opt_out_on_redis() {
    let server = RedisServer::start();
    a_function_that_opts_out_reads_any_shape(support::caches::on_server(&server, "o")).await;
}
