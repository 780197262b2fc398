//! A handler returning a `Json<T>`-like newtype: the `T` inside is cached.

use cachette::cached;
use serde::{Deserialize, Serialize};

/// Like axum's `Json`.
pub struct Json<T>(pub T);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
}

#[cached(key = "json:user:{id}")]
async fn user(id: u64) -> Json<User> {
    Json(User { id })
}

#[cached(key = "json:user_or:{id}")]
async fn user_or(id: u64) -> Result<Json<User>, String> {
    if id == 0 {
        return Err("no user 0".to_owned());
    }
    Ok(Json(User { id }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(user(1).await.0, User { id: 1 });
    assert_eq!(user(1).await.0, User { id: 1 });
    assert_eq!(user_or(2).await.unwrap().0, User { id: 2 });
    assert!(user_or(0).await.is_err());
}
