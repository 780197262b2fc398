//! Helpers shared by the integration tests; include with `mod support;`.

#![allow(dead_code)] // each test binary uses a different part

pub mod caches;
pub mod http;
pub mod redis_cluster;
pub mod redis_server;
pub mod reply_gate;
pub mod rng;
pub mod slow_link;
pub mod workers;

pub use self::redis_cluster::RedisCluster;
pub use self::redis_server::RedisServer;
