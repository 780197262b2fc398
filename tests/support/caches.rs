//! The caches most behavioural tests run against: in process, on a `redis-server` of their
//! own, and on a Redis Cluster of their own (servers kept alive by the returned handle).

use std::time::Duration;

use cachette::{Cache, RateLimitPolicy};

use super::{RedisCluster, RedisServer};

/// An in-process cache with the prefix `t`.
pub fn memory() -> (Cache, Option<RedisServer>) {
    (Cache::builder().prefix("t").build().unwrap(), None)
}

/// A cache with the prefix `t` on a fresh `redis-server`.
pub fn redis() -> (Cache, Option<RedisServer>) {
    let server = RedisServer::start();
    (on_server(&server, "t"), Some(server))
}

/// A cache with `prefix` on `server`, with the default settings.
pub fn on_server(server: &RedisServer, prefix: &str) -> Cache {
    Cache::builder()
        .redis(server.url())
        .prefix(prefix)
        .build()
        .unwrap()
}

/// A cache with `prefix` on `server` whose commands and connections give up after `timeout`:
/// for tests that stop the server.
pub fn on_server_with_timeout(server: &RedisServer, prefix: &str, timeout: Duration) -> Cache {
    Cache::builder()
        .redis(server.url())
        .prefix(prefix)
        .command_timeout(timeout)
        .connection_timeout(timeout)
        .build()
        .unwrap()
}

/// A cache with the prefix `t` on `server` that gives up on a stopped server within 200 ms,
/// with `policy` for rate limits while the server is away.
pub fn on_server_with_policy(server: &RedisServer, policy: RateLimitPolicy) -> Cache {
    Cache::builder()
        .redis(server.url())
        .prefix("t")
        .command_timeout(Duration::from_millis(200))
        .connection_timeout(Duration::from_millis(200))
        .rate_limit_policy(policy)
        .build()
        .unwrap()
}

/// A cache with the prefix `t` on a fresh Redis Cluster of three masters with a replica each.
pub fn cluster() -> (Cache, Option<RedisCluster>) {
    let cluster = RedisCluster::start(3, 1);
    let cache = Cache::builder()
        .redis_cluster(cluster.urls())
        .prefix("t")
        .build()
        .unwrap();
    (cache, Some(cluster))
}

/// Runs each named `async fn(Cache)` as three tests, `memory::name`, `redis_server::name` and
/// `redis_cluster::name`. Needs `memory`, `redis` and `cluster` from this module in scope at
/// the crate root.
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
        mod redis_cluster {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let (c, _s) = super::cluster(); super::$name(c).await; } )*
        }
    };
}
