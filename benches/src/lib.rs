//! What the benchmarks share: a `redis-server` of their own, the hit rows' payload, statistics
//! over repetitions, the measuring loops of an A/B comparison and its rows, and markdown
//! tables.

pub mod ab;
pub mod payload;
pub mod stats;
pub mod table;

/// A `redis-server` on a free loopback port, the integration tests' harness.
#[path = "../../tests/support/redis_server.rs"]
#[allow(dead_code)]
pub mod redis_server;

pub use redis_server::RedisServer;

/// A redis-rs `ConnectionManager` to `server` with the settings of cachette's `RedisStore`
/// defaults (response and connection timeouts, retries, delay): the raw side of a comparison.
pub async fn raw_connection(server: &RedisServer) -> redis::aio::ConnectionManager {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_millis(250)))
        .set_connection_timeout(Some(std::time::Duration::from_secs(1)))
        .set_number_of_retries(2)
        .set_max_delay(std::time::Duration::from_secs(2));
    redis::aio::ConnectionManager::new_with_config(server.client(), config)
        .await
        .expect("a connection manager to the bench server")
}
