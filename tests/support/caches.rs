//! The two caches most behavioural tests run against: in process, and on a `redis-server`
//! of their own (kept alive by the returned handle).

use cachette::Cache;

use super::RedisServer;

/// An in-process cache with the prefix `t`.
pub fn memory() -> (Cache, Option<RedisServer>) {
    (Cache::builder().prefix("t").build().unwrap(), None)
}

/// A cache with the prefix `t` on a fresh `redis-server`.
pub fn redis() -> (Cache, Option<RedisServer>) {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("t")
        .build()
        .unwrap();
    (cache, Some(server))
}

/// Runs each named `async fn(Cache)` as two tests, `memory::name` and `redis_server::name`.
/// Needs `memory` and `redis` from this module in scope at the crate root.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let (c, _s) = super::memory(); super::$name(c).await; } )*
        }
        mod redis_server {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let (c, _s) = super::redis(); super::$name(c).await; } )*
        }
    };
}
