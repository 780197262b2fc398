//! The distributed lock, on the memory store and on a real `redis-server`.

mod support;

use std::time::Duration;

use cachette::{Cache, LockError};
use support::caches::{cluster, memory, redis};

on_both!(
    a_held_lock_excludes_others_until_released,
    an_expired_holder_cannot_release_the_next_holders_lock,
    dropping_the_guard_frees_the_lock,
    names_are_distinct_and_may_be_empty,
    locks_and_fences_survive_every_invalidation,
);

const LONG: Duration = Duration::from_secs(30);

/// Regression: `clear()` and pattern invalidation deleted lock keys and fence counters, so a
/// held lock could be taken twice and the next fencing token was 1 after 3.
async fn locks_and_fences_survive_every_invalidation(cache: Cache) {
    let mut last = 0;
    for _ in 0..3 {
        let guard = cache.lock("nightly", LONG, Duration::ZERO).await.unwrap();
        assert!(guard.fencing_token() > last);
        last = guard.fencing_token();
        assert!(guard.release().await.unwrap());
    }
    let held = cache.lock("nightly", LONG, Duration::ZERO).await.unwrap();
    assert!(held.fencing_token() > last);
    last = held.fencing_token();
    cache.clear().await.unwrap();
    cache.invalidate_pattern("*").await.unwrap();
    cache.invalidate_pattern("__cachette:*").await.unwrap();
    let err = cache
        .lock("nightly", LONG, Duration::from_millis(30))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LockError::Timeout { .. }),
        "the holder keeps its lock: {err}"
    );
    assert!(held.release().await.unwrap(), "and can release it");
    let next = cache.lock("nightly", LONG, Duration::ZERO).await.unwrap();
    assert!(
        next.fencing_token() > last,
        "fencing tokens never go backwards: {} after {last}",
        next.fencing_token()
    );
}

async fn a_held_lock_excludes_others_until_released(cache: Cache) {
    let a = cache.lock("job", LONG, Duration::ZERO).await.unwrap();
    let err = cache
        .lock("job", LONG, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("job"));
    // Another name is another lock.
    let other = cache.lock("other-job", LONG, Duration::ZERO).await.unwrap();

    // A waiter gets the lock once it is released.
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.lock("job", LONG, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let a_token = a.fencing_token();
    assert!(a.release().await.unwrap());
    let b = waiter.await.unwrap().unwrap();
    assert!(b.fencing_token() > a_token);
    assert!(b.release().await.unwrap());
    assert!(other.release().await.unwrap());
}

async fn an_expired_holder_cannot_release_the_next_holders_lock(cache: Cache) {
    let a = cache
        .lock("report", Duration::from_millis(100), Duration::ZERO)
        .await
        .unwrap();
    // A pauses past its TTL; B takes the lock.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = cache.lock("report", LONG, Duration::ZERO).await.unwrap();
    assert!(
        b.fencing_token() > a.fencing_token(),
        "B's fencing token is greater than A's"
    );
    assert!(!a.release().await.unwrap(), "A's release frees nothing");
    let err = cache
        .lock("report", LONG, Duration::from_millis(30))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LockError::Timeout { .. }),
        "B still holds the lock"
    );
    assert!(b.release().await.unwrap());
}

async fn dropping_the_guard_frees_the_lock(cache: Cache) {
    let guard = cache.lock("dropped", LONG, Duration::ZERO).await.unwrap();
    drop(guard);
    // The release runs in the background; a short wait covers it.
    let again = cache
        .lock("dropped", LONG, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(again.release().await.unwrap());
}

async fn names_are_distinct_and_may_be_empty(cache: Cache) {
    // The empty name is a lock of its own (on a cluster its two keys still share a slot), and
    // not the same as a name that renders like its placeholder.
    let empty = cache.lock("", LONG, Duration::ZERO).await.unwrap();
    let tilde = cache.lock("~", LONG, Duration::ZERO).await.unwrap();
    assert!(cache.lock("", LONG, Duration::ZERO).await.is_err());
    assert!(empty.release().await.unwrap());
    assert!(tilde.release().await.unwrap());
}
