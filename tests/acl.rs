//! The ACL rules the README gives for a cache user are enough for every feature, and deny
//! what a cache must never run (FLUSHALL, FLUSHDB, KEYS).

mod support;

use std::time::Duration;

use cachette::{Cache, Invalidation, LoadOptions};
use support::RedisServer;

/// The rule from the README, for the prefix `app`.
const RULE: &str = "on >s3cret ~app:* resetchannels -@all +get +set +mget +unlink +exists +pttl +pexpire +strlen +del +incr +scan +evalsha +eval +script|load +ping +time";

#[tokio::test]
async fn a_cache_user_with_the_documented_acl_can_do_everything_it_needs() {
    let server = RedisServer::start();
    let mut admin = server.conn();
    let mut args = vec!["SETUSER", "cachette"];
    args.extend(RULE.split(' '));
    let _: () = redis::cmd("ACL").arg(&args).query(&mut admin).unwrap();

    let url = format!("redis://cachette:s3cret@127.0.0.1:{}", server.port());
    let cache = Cache::builder()
        .redis(url.clone())
        .prefix("app")
        .build()
        .unwrap();
    let o = LoadOptions::ttl(Duration::from_secs(60)).tag("users");
    let load = |v: u32| move || async move { Ok::<u32, String>(v) };
    assert_eq!(cache.get_or_load("user:1", &o, load(1)).await, Ok(1));
    let second = cache.get_or_load("user:1", &o, load(2)).await;
    let log: redis::Value = redis::cmd("ACL").arg("LOG").query(&mut admin).unwrap();
    assert_eq!(second, Ok(1), "denied: {log:?}");
    assert_eq!(cache.stats().total.errors, 0, "{:?}", cache.health().await);
    cache
        .set_many(&[("a", 1u8), ("b", 2u8)], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get_many::<u8, _>(&["a", "b"]).await.unwrap(),
        [Some(1), Some(2)]
    );
    assert!(cache.exists("a").await.unwrap());
    assert!(cache.ttl("a").await.unwrap().is_some());
    cache.invalidate("a").await.unwrap();
    cache.invalidate_tag("users").await.unwrap();
    assert_eq!(cache.get_or_load("user:1", &o, load(3)).await, Ok(3));
    cache
        .apply(&Invalidation::patterns(["user:*"]))
        .await
        .unwrap();
    let lock = cache
        .lock("job", Duration::from_secs(5), Duration::ZERO)
        .await
        .unwrap();
    assert!(lock.release().await.unwrap());
    let o2 = LoadOptions::ttl(Duration::from_secs(60));
    let _ = cache
        .get_or_load_owned("k", &o2, || async { Ok::<u8, String>(1) })
        .await;
    let limited = cache
        .rate_limit("login", 5, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(limited.allowed && limited.enforced, "{limited:?}");
    assert!(cache.clear().await.unwrap() > 0);
    assert!(cache.health().await.reachable);
    assert_eq!(cache.stats().total.errors, 0);

    // What it must never be able to run, and keys outside its prefix.
    let mut user = redis::Client::open(url).unwrap().get_connection().unwrap();
    for cmd in ["FLUSHALL", "FLUSHDB"] {
        assert!(
            redis::cmd(cmd).query::<()>(&mut user).is_err(),
            "{cmd} is denied"
        );
    }
    assert!(
        redis::cmd("KEYS")
            .arg("*")
            .query::<Vec<String>>(&mut user)
            .is_err(),
        "KEYS is denied"
    );
    assert!(
        redis::cmd("GET")
            .arg("other:1")
            .query::<Option<String>>(&mut user)
            .is_err(),
        "other prefixes are denied"
    );
}
