//! The admin router: a cache's statistics, health, metrics, keys (never values), registry,
//! invalidation, warming and a dashboard page over HTTP, for a service to mount.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /cache` | overview: store, prefix, health line, totals, functions |
//! | `GET /cache/health` | [`Health`](crate::Health) as JSON; `503` when the store does not answer |
//! | `GET /cache/metrics` | totals and per-function statistics (hit ratio, p50/p99 lookup and load times), breaker, backlog, store memory, healthcare counts; samples the [gauges](crate::metrics) |
//! | `GET /cache/debug?pattern=&limit=` | keys with their TTL and size, never a value (SCAN, at most `limit`, default 100, at most 1000) |
//! | `GET /cache/registry` | every `#[cached]` function linked in, with its settings |
//! | `DELETE /cache?pattern=` | invalidates the keys matching the glob; a pattern of only `*` needs `confirm=true` |
//! | `DELETE /cache/key?key=` | invalidates one key |
//! | `DELETE /cache/tag?tag=` | invalidates one tag |
//! | `DELETE /cache/phi` | removes every protected entry (the `phi:` namespace) |
//! | `POST /cache/warm` | runs the cache's warmers ([`Cache::warm`]); answers their report |
//! | `GET /cache/dashboard` | the dashboard page (HTML and a small script; it asks the API with the token from its URL fragment, `#token=…`) |
//!
//! Every API route requires `Authorization: Bearer <token>`, compared in constant time with
//! each configured token; a router without a token refuses to build unless it is
//! [loopback-only](AdminRouter::loopback_only). Every mutating call emits an audit event (to
//! the cache's [`AuditSink`](crate::AuditSink)s, and a `tracing` event with target
//! `cachette::admin`) naming its actor: `admin:<token name>`, or `admin:loopback`. Bad input
//! is a `400` with a JSON body `{"error": "<code>", "message": "<what is wrong>"}`, and
//! nothing is changed.

mod auth;
mod error;
mod handlers;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

pub use self::error::AdminError;
use crate::Cache;

/// Builds the admin [`Router`] of a cache.
///
/// ```no_run
/// use std::net::SocketAddr;
///
/// use cache_runtime::Cache;
/// use cache_runtime::admin::AdminRouter;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::from_env()?;
/// let token = std::env::var("CACHE_ADMIN_TOKEN")?;
/// let app = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .merge(AdminRouter::new(cache).token("ops", token).build()?);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct AdminRouter {
    cache: Cache,
    tokens: Vec<(String, String)>,
    loopback_only: bool,
}

/// The shortest token accepted: 16 bytes (128 bits when random).
pub const MIN_TOKEN_LEN: usize = 16;

pub(crate) struct State {
    pub cache: Cache,
    pub tokens: Vec<auth::Token>,
    pub loopback_only: bool,
    /// One warming at a time.
    pub warming: tokio::sync::Mutex<()>,
}

impl AdminRouter {
    /// The admin router of `cache`, with no token yet.
    pub fn new(cache: Cache) -> Self {
        AdminRouter {
            cache,
            tokens: Vec::new(),
            loopback_only: false,
        }
    }

    /// Accepts `Authorization: Bearer <secret>`; `name` is the actor of the audit events of
    /// requests that present it. May be given several times (one per operator or system).
    /// The secret must be at least [`MIN_TOKEN_LEN`] bytes.
    pub fn token(mut self, name: impl Into<String>, secret: impl Into<String>) -> Self {
        self.tokens.push((name.into(), secret.into()));
        self
    }

    /// Answers only requests from a loopback address (`127.0.0.0/8`, `::1`), as told by axum's
    /// `ConnectInfo<SocketAddr>` (serve with `into_make_service_with_connect_info`). With no
    /// token this is what lets the router build; requests then need no token, and mutating
    /// ones that carry an `Origin` header (a browser page of another site) are refused.
    pub fn loopback_only(mut self) -> Self {
        self.loopback_only = true;
        self
    }

    /// The router, with every route under `/cache`; merge it into the service's router.
    pub fn build(self) -> Result<Router, AdminError> {
        if self.tokens.is_empty() && !self.loopback_only {
            return Err(AdminError::NoToken);
        }
        let mut tokens = Vec::with_capacity(self.tokens.len());
        for (name, secret) in self.tokens {
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(AdminError::BadTokenName { name });
            }
            if secret.len() < MIN_TOKEN_LEN {
                return Err(AdminError::WeakToken { name });
            }
            tokens.push(auth::Token::new(name, &secret));
        }
        let state = Arc::new(State {
            cache: self.cache,
            tokens,
            loopback_only: self.loopback_only,
            warming: tokio::sync::Mutex::new(()),
        });
        let api = Router::new()
            .route(
                "/cache",
                get(handlers::overview).delete(handlers::delete_pattern),
            )
            .route("/cache/health", get(handlers::health))
            .route("/cache/metrics", get(handlers::metrics))
            .route("/cache/debug", get(handlers::debug))
            .route("/cache/registry", get(handlers::registry_list))
            .route("/cache/key", delete(handlers::delete_key))
            .route("/cache/tag", delete(handlers::delete_tag))
            .route("/cache/phi", delete(handlers::clear_phi))
            .route("/cache/warm", post(handlers::warm))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_token,
            ));
        let page = Router::new()
            .route("/cache/dashboard", get(handlers::dashboard))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_loopback,
            ));
        Ok(api.merge(page).with_state(state))
    }
}
