//! What the admin router answers when something is wrong, and why it would not build.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why an [`AdminRouter`](super::AdminRouter) did not build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No token was given and the router is not loopback-only: anyone who reaches the port
    /// could clear the cache. Give a token (`.token("ops", secret)`), or call
    /// `.loopback_only()` for a router that only local processes reach.
    #[error(
        "the admin router needs a bearer token (`.token(name, secret)`), or `.loopback_only()` \
         to answer only local requests without one"
    )]
    NoToken,
    /// The token's secret is shorter than [`MIN_TOKEN_LEN`](super::MIN_TOKEN_LEN) bytes; use a
    /// random one (`openssl rand -hex 32`).
    #[error(
        "the admin token `{name}` is shorter than {} bytes; use a random secret such as \
         `openssl rand -hex 32`",
        super::MIN_TOKEN_LEN
    )]
    WeakToken {
        /// The token's name.
        name: String,
    },
    /// A token's name is empty or holds control characters; it names the actor in audit
    /// events, so give a plain name such as `ops`.
    #[error("the admin token name {name:?} is empty or holds control characters")]
    BadTokenName {
        /// The name as given.
        name: String,
    },
}

/// An error answer: a status and a JSON body `{"error": code, "message": message}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: &str) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.to_owned(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
        }
    }

    /// What a failed cache call is answered: a `409` for a cache without a prefix asked to
    /// clear everything, a `400` for a pattern the cache refused, else a `503` (the store did
    /// not answer; an invalidation is kept and applied when it does).
    pub fn from_cache(err: &crate::CacheError) -> Self {
        let (status, code) = match err {
            crate::CacheError::NoPrefix => (StatusCode::CONFLICT, "no_prefix"),
            crate::CacheError::InvalidPattern { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_pattern")
            }
            _ => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        };
        ApiError {
            status,
            code,
            message: err.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cachette admin\""),
            );
        }
        response
    }
}
