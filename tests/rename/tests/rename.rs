//! The macros under a renamed dependency behave as under `cachette`.

use std::sync::atomic::Ordering;

use cachette_rename_test::{LOADS, Region, Tagged, UserId, forget_user, put_user, shard, user};

#[tokio::test(flavor = "current_thread")]
async fn cached_invalidate_and_put_through_a_renamed_crate() {
    let id = UserId(7);
    assert_eq!(user(id, Region::Eu).await.unwrap(), "user 7 in eu");
    assert_eq!(user(id, Region::Eu).await.unwrap(), "user 7 in eu");
    assert_eq!(LOADS.load(Ordering::SeqCst), 1, "the second call is a hit");

    // The derived key parts keep the arguments apart.
    assert_eq!(user(id, Region::Us).await.unwrap(), "user 7 in us");
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);

    forget_user(id, Region::Eu).await.unwrap();
    user(id, Region::Eu).await.unwrap();
    assert_eq!(
        LOADS.load(Ordering::SeqCst),
        3,
        "invalidated, so loaded again"
    );

    put_user(id, Region::Eu, "renamed".into()).await.unwrap();
    assert_eq!(user(id, Region::Eu).await.unwrap(), "renamed");
    assert_eq!(LOADS.load(Ordering::SeqCst), 3, "served what was put");

    assert_eq!(shard(&Tagged(21)).await, 42);
}
