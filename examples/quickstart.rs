//! The first thing to run: `cargo run --example quickstart`.
//!
//! Caches a slow "database" call in process memory (no Redis needed; set `REDIS_URL` to use
//! Redis instead) and prints the cache it got, what was a hit, what was a miss, and how long
//! each call took.

use std::time::{Duration, Instant};

use cachette::cached;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct NotFound(u64);

/// A lookup that takes 200 ms, like a slow query.
#[cached(key = "user:{id}", ttl = "5m", stale = "1m", tags = ["users", "user:{id}"])]
async fn get_user(id: u64) -> Result<User, NotFound> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    if id == 0 {
        return Err(NotFound(id));
    }
    Ok(User {
        id,
        name: format!("user #{id}"),
    })
}

#[tokio::main]
async fn main() -> Result<(), cachette::InitError> {
    // A variable of the wrong form (CACHE_DEFAULT_TTL=abc) stops the program here, naming it.
    let cache = cachette::init_from_env()?;
    // Says at once when Redis is unreachable, or which prefix the keys get.
    println!("cache: {}", cache.health().await);

    for id in [1, 2, 1, 1, 2, 0, 0] {
        let before = cache.stats().total;
        let started = Instant::now();
        let result = get_user(id).await;
        let took = started.elapsed();
        let after = cache.stats().total;
        let outcome = if after.hits > before.hits {
            "hit "
        } else {
            "miss"
        };
        match result {
            Ok(user) => println!("get_user({id}): {outcome} {:>9.3?}  -> {}", took, user.name),
            Err(e) => println!(
                "get_user({id}): {outcome} {:>9.3?}  -> error {e:?} (errors are not cached)",
                took
            ),
        }
    }

    let s = cache.stats().total;
    println!(
        "\nhits {} misses {} loads {} hit ratio {:.0}% avg lookup {:?} p99 lookup {:?}",
        s.hits,
        s.misses,
        s.loads,
        s.hit_ratio * 100.0,
        s.avg_lookup,
        s.p99_lookup
    );
    for f in cachette::registry() {
        println!(
            "registered: {}::{} key={:?} ttl={:?} tags={:?}",
            f.module, f.name, f.template, f.ttl, f.tags
        );
    }
    Ok(())
}
