//! Tower layers for axum routers (or any tower stack of `http` requests): [`RateLimitLayer`]
//! answers `429 Too Many Requests` past a limit kept by [`Cache::rate_limit`];
//! [`CacheLayer`] caches `GET` and `HEAD` responses (`response.rs`).

mod headers;
mod key;
mod response;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

pub use self::key::{ClientIp, Header, KeyExtractor};
pub use self::response::{CacheLayer, CacheService, DEFAULT_HTTP_TTL, DEFAULT_MAX_BODY, PASS_FOR};
use crate::cache::rate_limit::check;
use crate::{Cache, RateLimit, RateLimitError};

/// Limits requests per client to `limit` per `window`, on a [`Cache`]'s store: one limit for
/// every process sharing that store (Redis or Redis Cluster).
///
/// A request over the limit gets `429 Too Many Requests` with `Retry-After` (seconds), and
/// never reaches the service. Every answer the limit decided carries the headers of the IETF
/// draft *RateLimit header fields for HTTP*: `RateLimit-Limit`, `RateLimit-Remaining` and
/// `RateLimit-Reset` (seconds until the whole limit is back). While the store cannot be asked,
/// the cache's [`RateLimitPolicy`](crate::RateLimitPolicy) decides, and no `RateLimit-*`
/// headers are sent (nothing was counted): failing open passes the request on, failing closed
/// answers `503 Service Unavailable` with `Retry-After: 1`.
///
/// Clients are told apart by [`ClientIp`] unless another [`KeyExtractor`] is given.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use std::time::Duration;
///
/// use axum::{Router, routing::get};
/// use cache_runtime::{Cache, RateLimitLayer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::from_env()?;
/// let app = Router::new()
///     .route("/search", get(|| async { "results" }))
///     .layer(RateLimitLayer::new(cache, 100, Duration::from_secs(60))?.name("search"));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RateLimitLayer<K = ClientIp> {
    cache: Cache,
    name: String,
    limit: u32,
    window: Duration,
    key: K,
}

impl RateLimitLayer {
    /// `limit` requests per `window` per client IP, under the name `http`.
    ///
    /// A limit of zero or a window of zero or longer than a year is an error.
    pub fn new(cache: Cache, limit: u32, window: Duration) -> Result<Self, RateLimitError> {
        let name = "http".to_owned();
        check(&name, limit, window)?;
        Ok(RateLimitLayer {
            cache,
            name,
            limit,
            window,
            key: ClientIp,
        })
    }
}

impl<K> RateLimitLayer<K> {
    /// Names this limit (default `http`): a client's key is `<name>:<client>`, so layers with
    /// different names keep separate limits, and layers with the same name share one.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Tells clients apart by `key` instead of their IP address.
    pub fn key<K2>(self, key: K2) -> RateLimitLayer<K2> {
        RateLimitLayer {
            cache: self.cache,
            name: self.name,
            limit: self.limit,
            window: self.window,
            key,
        }
    }
}

impl<S, K: Clone> Layer<S> for RateLimitLayer<K> {
    type Service = RateLimitService<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of a [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimitService<S, K = ClientIp> {
    inner: S,
    layer: RateLimitLayer<K>,
}

impl<S, K, B, R> Service<Request<B>> for RateLimitService<S, K>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    K: KeyExtractor<B>,
    B: Send + 'static,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The service that was polled ready takes this request; a clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let client = layer.key.key(&req);
            // Requests with nothing to tell their client by share one limit.
            let key = format!("{}:{}", layer.name, client.as_deref().unwrap_or("~"));
            let decision = match layer
                .cache
                .rate_limit(&key, layer.limit, layer.window)
                .await
            {
                Ok(d) => d,
                // The name, limit and window were checked when the layer was built.
                Err(e) => {
                    tracing::error!(target: "cachette", error = %e, "rate limit refused");
                    return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
                }
            };
            if !decision.allowed {
                return Ok(refusal(&decision));
            }
            let mut response = inner.call(req).await?;
            if decision.enforced {
                headers::quota(response.headers_mut(), &decision);
            }
            Ok(response)
        })
    }
}

/// What a request that may not go ahead is answered.
fn refusal<R: Default>(decision: &RateLimit) -> Response<R> {
    let mut response = if decision.enforced {
        status(StatusCode::TOO_MANY_REQUESTS)
    } else {
        // Failing closed: the limit is not why, the store's absence is.
        status(StatusCode::SERVICE_UNAVAILABLE)
    };
    let headers = response.headers_mut();
    headers::retry_after(headers, decision.retry_after);
    if decision.enforced {
        headers::quota(headers, decision);
    }
    response
}

fn status<R: Default>(code: StatusCode) -> Response<R> {
    let mut response = Response::new(R::default());
    *response.status_mut() = code;
    response
}
