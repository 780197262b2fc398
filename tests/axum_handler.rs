//! An axum handler takes `#[cached]` unchanged: identifiers bound in `Path(id)` are usable in
//! the key, `State` is skipped, and `Json<T>` round-trips through the cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cachette::cached;
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Clone, Default)]
struct Db {
    queries: Arc<AtomicU32>,
}

#[derive(Debug)]
struct AppError;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// Returns a user, or 404.
#[cached(key = "user:{id}", ttl = "5m", skip = [db])]
async fn get_user(State(db): State<Db>, Path(id): Path<u64>) -> Result<Json<User>, AppError> {
    db.queries.fetch_add(1, SeqCst);
    if id == 0 {
        return Err(AppError);
    }
    Ok(Json(User {
        id,
        name: format!("user {id}"),
    }))
}

#[cached(key = "plain:{id}", skip = [db])]
async fn plain_json(State(db): State<Db>, Path(id): Path<u64>) -> Json<Vec<u64>> {
    db.queries.fetch_add(1, SeqCst);
    Json(vec![id; 3])
}

async fn call(app: &Router, uri: &str) -> (StatusCode, Vec<u8>) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, body.to_vec())
}

#[tokio::test]
async fn handler_is_cached_through_the_router() {
    let db = Db::default();
    let app = Router::new()
        .route("/users/{id}", get(get_user))
        .route("/plain/{id}", get(plain_json))
        .with_state(db.clone());

    let (status, first) = call(&app, "/users/5").await;
    assert_eq!(status, StatusCode::OK);
    let user: User = serde_json::from_slice(&first).unwrap();
    assert_eq!(
        user,
        User {
            id: 5,
            name: "user 5".into()
        }
    );
    let (_, again) = call(&app, "/users/5").await;
    assert_eq!(again, first);
    assert_eq!(db.queries.load(SeqCst), 1);

    assert_eq!(call(&app, "/users/0").await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(&app, "/users/0").await.0, StatusCode::NOT_FOUND);
    assert_eq!(db.queries.load(SeqCst), 3, "errors are not cached");

    let (_, body) = call(&app, "/plain/2").await;
    assert_eq!(body, b"[2,2,2]");
    assert_eq!(call(&app, "/plain/2").await.1, b"[2,2,2]");
    assert_eq!(db.queries.load(SeqCst), 4);

    assert!(cachette::global().exists("user:5").await.unwrap());
}
