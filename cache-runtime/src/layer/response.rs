//! [`CacheLayer`]: a tower layer that caches `GET` and `HEAD` responses on a [`Cache`], through
//! [`Cache::get_or_load_owned`], so single flight, stale-while-revalidate, tags and the
//! invalidation guarantees are the runtime's.
//!
//! ```text
//! request ─ not GET/HEAD ──────────────────────────────────────────────► handler
//!         ─ no-store, a body, credentials (unless per user), a huge
//!           query, a key remembered as uncacheable ─────────────────────► handler, X-Cache: miss
//!         ─ key (method, host, path, query, varying headers) ─ get_or_load_owned
//!              hit / stale ─────────────────────────────► stored response (or 304), Age, X-Cache
//!              miss ─ handler ─ cacheable? ─ yes, body within the cap ─ stored and served
//!                                          ─ no ─ passed on as it came (streamed), X-Cache: miss
//! ```

mod body;
mod control;
mod key;
mod stored;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderName, Method, Request, Response, StatusCode, header};
use bytes::Bytes;
use http_body::Body as HttpBody;
use tower_layer::Layer;
use tower_service::Service;

use self::body::Collected;
use self::control::Directives;
use self::stored::{Served, StoredResponse, X_CACHE};
use crate::clock::{millis, now_ms};
use crate::{Cache, LoadOptions};

/// How long a key whose response said it may not be stored (`no-store`, `private`,
/// `Set-Cookie`, a body over the cap, ...) goes straight to the handler, in this process.
/// Without it, requests for such a key would queue behind one another in the key's single
/// flight, each waiting for the previous one's uncacheable answer.
pub const PASS_FOR: Duration = Duration::from_secs(10);

/// The freshness lifetime of a route unless [`CacheLayer::ttl`] says otherwise.
pub const DEFAULT_HTTP_TTL: Duration = Duration::from_secs(60);

/// The largest body cached unless [`CacheLayer::max_body`] says otherwise: half the store's
/// default entry limit, so headers and the entry format fit beside it.
pub const DEFAULT_MAX_BODY: usize = 512 * 1024;

/// Header names a response may add to its `Vary` beyond the route's own, learned per process.
const MAX_LEARNED_VARY: usize = 8;

type TagsFn = Arc<dyn Fn(&Parts) -> Vec<String> + Send + Sync>;

/// Caches `GET` and `HEAD` responses on a [`Cache`] (memory, Redis or Redis Cluster), for axum
/// routers or any tower stack of `http` requests.
///
/// **Keys.** A response is cached under its request's method, host, path, query (normalized:
/// parameters sorted by name, a parameter list keeping its order, form-decoded), and the
/// values of the headers named with [`vary`](Self::vary) or in the response's own `Vary`
/// (learned: a response that varies on a header the key did not include is passed on
/// uncached, and later requests of this process include that header). All of it is hashed:
/// keys are `http:<name>:<128-bit hex>` (`phi:http:..` when [`protected`](Self::protected)),
/// whatever the request. A handler whose answer depends on any other request header
/// (`X-Forwarded-Host`, say) must name it in [`vary`](Self::vary) (or in its `Vary`), or one
/// client's answer is served to the others. A handler that reads the raw query string sees
/// the first of equivalent queries.
///
/// **Users are kept apart.** A request with `Authorization` or `Cookie` goes to the handler
/// and its response is not stored, unless the route is [`per_user`](Self::per_user), which
/// puts both headers' values in the key. A response with `Set-Cookie` is never stored.
///
/// **What is stored.** Responses with a status from [`statuses`](Self::statuses) (`200`,
/// `203`, `301`, `404` by default), without `Cache-Control: no-store`, `no-cache` or
/// `private` (`private` is stored by a [`per_user`](Self::per_user) route), without
/// `Vary: *`, and with a body of at most [`max_body`](Self::max_body) bytes. Anything else is
/// passed on as it came, its body streamed, and the key goes to the handler directly for
/// [`PASS_FOR`] in this process. `s-maxage` (else `max-age`) and `stale-while-revalidate`
/// on a response shorten the route's [`ttl`](Self::ttl) and
/// [`stale_while_revalidate`](Self::stale_while_revalidate), never lengthen them.
///
/// **Requests.** `Cache-Control: no-store` goes to the handler and stores nothing;
/// `no-cache` (or `Pragma: no-cache`) runs the handler and stores its response (one load
/// per key at a time, as any load). A request with a body, or a query over 8 KiB or 256
/// parameters, is not cached.
///
/// **Responses** carry `X-Cache: hit`, `miss` (the handler answered this request) or
/// `stale` (a stale response, while one request refreshes it in the background), and `Age`
/// when they come from a stored response. A `200` to `GET` gets a strong `ETag` from its body
/// unless the handler set one; a request whose `If-None-Match` matches gets
/// `304 Not Modified` without a body.
///
/// **Failures.** The handler is never made to fail by the cache: with the store away every
/// request goes to the handler ([`get_or_load_owned`](Cache::get_or_load_owned)'s rule), and
/// a stored response that does not decode is a miss.
///
/// Handlers invalidate what they change by tag ([`tag`](Self::tag),
/// [`tags_from`](Self::tags_from), [`Cache::invalidate_tag`]):
///
/// ```no_run
/// use std::time::Duration;
///
/// use axum::{Router, extract::{Path, State}, routing::{get, post}};
/// use cache_runtime::{Cache, CacheLayer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::from_env()?;
/// let clinics = CacheLayer::new(cache.clone())
///     .name("clinics")
///     .ttl(Duration::from_secs(30))
///     .stale_while_revalidate(Duration::from_secs(60))
///     .tag("clinics");
/// let app = Router::new()
///     .route("/clinics", get(|| async { "[...]" }).layer(clinics))
///     .route("/clinics/{id}/rename", post(|State(cache): State<Cache>, Path(id): Path<u32>| async move {
///         // ... rename clinic `id`, then:
///         let _ = cache.invalidate_tag("clinics").await;
///     }))
///     .with_state(cache);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct CacheLayer {
    config: Config,
    state: Arc<State>,
}

#[derive(Clone)]
struct Config {
    cache: Cache,
    name: String,
    ttl: Duration,
    stale: Duration,
    tags: Vec<String>,
    tags_from: Option<TagsFn>,
    vary: Vec<HeaderName>,
    statuses: Vec<StatusCode>,
    max_body: usize,
    per_user: bool,
    protected: Option<Arc<str>>,
}

/// What the services of one layer share: in this process only.
struct State {
    /// `Vary` names responses added, in the order learned.
    learned: RwLock<Vec<HeaderName>>,
    /// Keys whose last response could not be stored.
    passes: moka::sync::Cache<String, ()>,
    /// Keys refreshed in the background by this layer right now.
    refreshing: Mutex<HashSet<String>>,
}

impl CacheLayer {
    /// A layer caching on `cache`, named `http`, fresh for [`DEFAULT_HTTP_TTL`], no stale
    /// serving, statuses `200`, `203`, `301` and `404`, bodies up to [`DEFAULT_MAX_BODY`].
    pub fn new(cache: Cache) -> CacheLayer {
        CacheLayer {
            config: Config {
                cache,
                name: "http".to_owned(),
                ttl: DEFAULT_HTTP_TTL,
                stale: Duration::ZERO,
                tags: Vec::new(),
                tags_from: None,
                vary: Vec::new(),
                statuses: [200, 203, 301, 404]
                    .into_iter()
                    .filter_map(|s| StatusCode::from_u16(s).ok())
                    .collect(),
                max_body: DEFAULT_MAX_BODY,
                per_user: false,
                protected: None,
            },
            state: Arc::new(State {
                learned: RwLock::new(Vec::new()),
                passes: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(PASS_FOR)
                    .build(),
                refreshing: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Names the route (default `http`): keys are `http:<name>:..`. Routes under one name
    /// share entries for equal requests; give each layer its own.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// How long a response is fresh (default [`DEFAULT_HTTP_TTL`]). A response's own
    /// `s-maxage` or `max-age` may shorten it.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// How long past its freshness a response is still served, as `X-Cache: stale`, while
    /// one request refreshes it in the background (default: not at all). A response's own
    /// `stale-while-revalidate` may shorten it.
    pub fn stale_while_revalidate(mut self, stale: Duration) -> Self {
        self.config.stale = stale;
        self
    }

    /// Stores every response with the tag `tag`, for [`Cache::invalidate_tag`].
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.config.tags.push(tag.into());
        self
    }

    /// Stores each response with the tags `tags` gives its request, for
    /// [`Cache::invalidate_tag`]: `clinic:7` for `/clinics/7`, say. Tags appear in key names
    /// on the store: for a protected route, hash identifiers with [`Cache::hash_id`].
    ///
    /// ```
    /// # let cache = cache_runtime::Cache::disabled();
    /// let layer = cache_runtime::CacheLayer::new(cache).tags_from(|req| {
    ///     let id = req.uri.path().strip_prefix("/clinics/").unwrap_or("");
    ///     vec![format!("clinic:{id}")]
    /// });
    /// ```
    pub fn tags_from<F>(mut self, tags: F) -> Self
    where
        F: Fn(&Parts) -> Vec<String> + Send + Sync + 'static,
    {
        self.config.tags_from = Some(Arc::new(tags));
        self
    }

    /// Keeps a response per value of each header in `names` (`accept-language`, say), as if
    /// every response said `Vary` with them.
    pub fn vary(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.config.vary.extend(names);
        self
    }

    /// The statuses whose responses are stored (default `200`, `203`, `301`, `404`).
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.config.statuses = statuses.into_iter().collect();
        self
    }

    /// The largest body stored, in bytes (default [`DEFAULT_MAX_BODY`]); larger ones are
    /// streamed to the client uncached. Keep it below the cache's entry limit
    /// ([`CacheBuilder::max_entry_bytes`](crate::CacheBuilder::max_entry_bytes)).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.config.max_body = bytes;
        self
    }

    /// Caches requests that carry `Authorization` or `Cookie` too, with both headers' values
    /// in the key: each user gets their own responses, `Cache-Control: private` ones
    /// included. Without this, such requests always go to the handler.
    pub fn per_user(mut self) -> Self {
        self.config.per_user = true;
        self
    }

    /// Marks the route's responses as protected health information, as `#[patient_cache]`
    /// values: sealed at rest (the cache needs a [`Sealer`](crate::Sealer); without one
    /// nothing is stored), never read from an unsealed entry, audited under `function`,
    /// and kept under `phi:` so that `clear_phi` removes them.
    pub fn protected(mut self, function: impl Into<Arc<str>>) -> Self {
        self.config.protected = Some(function.into());
        self
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("name", &self.config.name)
            .field("ttl", &self.config.ttl)
            .field("stale_while_revalidate", &self.config.stale)
            .field("tags", &self.config.tags)
            .field("vary", &self.config.vary)
            .field("per_user", &self.config.per_user)
            .field("protected", &self.config.protected.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            route: Arc::new(Route::new(self.config.clone(), self.state.clone())),
        }
    }
}

/// The service of a [`CacheLayer`].
#[derive(Clone)]
pub struct CacheService<S> {
    inner: S,
    route: Arc<Route>,
}

impl<S> fmt::Debug for CacheService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("name", &self.route.config.name)
            .finish_non_exhaustive()
    }
}

/// One layer's settings, resolved for a service.
struct Route {
    config: Config,
    state: Arc<State>,
    /// The options of every load, before per-request tags.
    options: LoadOptions,
    /// The route's `vary` names, with `authorization` and `cookie` when per user; sorted.
    keyed: Vec<HeaderName>,
}

/// A response that is not stored, or the handler's error, out of a load.
enum Pass<E> {
    Response(Response<Body>),
    Failed(E),
}

type LoadFuture<E> = Pin<Box<dyn Future<Output = Result<StoredResponse, Pass<E>>> + Send>>;

/// What to do with a handler's response.
enum Verdict {
    Store {
        fresh: Duration,
        stale: Duration,
    },
    /// Pass it on; `remember`: send the key to the handler directly for a while.
    Pass {
        remember: bool,
    },
}

impl<S, B, R> Service<Request<B>> for CacheService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Default + Send + 'static,
    R: HttpBody<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The service that was polled ready takes this request; a clone waits for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let route = self.route.clone();
        Box::pin(async move { route.serve(inner, req).await })
    }
}

impl Route {
    fn new(config: Config, state: Arc<State>) -> Route {
        let mut options =
            LoadOptions::ttl(config.ttl.saturating_add(config.stale)).stale(config.ttl);
        for tag in &config.tags {
            options = options.tag(tag.clone());
        }
        if let Some(function) = &config.protected {
            options = options.protected(function.clone());
        }
        let mut keyed = config.vary.clone();
        if config.per_user {
            keyed.extend([header::AUTHORIZATION, header::COOKIE]);
        }
        keyed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        keyed.dedup();
        Route {
            config,
            state,
            options,
            keyed,
        }
    }

    async fn serve<S, B, R>(
        self: Arc<Self>,
        mut inner: S,
        req: Request<B>,
    ) -> Result<Response<Body>, S::Error>
    where
        S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        B: Default + Send + 'static,
        R: HttpBody<Data = Bytes> + Send + 'static,
        R::Error: Into<BoxError>,
    {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Ok(inner.call(req).await?.map(Body::new));
        }
        let (parts, body) = req.into_parts();
        let asked = Directives::of(&parts.headers);
        let keyed = self.keyed();
        let Some(key) = self.key_of(&parts, &asked, &keyed) else {
            let res = inner.call(Request::from_parts(parts, body)).await?;
            return Ok(served(res.map(Body::new), Served::Miss));
        };
        // `key_of` saw no body: every load rebuilds the request from its head.
        drop(body);
        let spare = inner.clone();
        let cache = &self.config.cache;
        let if_none_match = parts.headers.get(header::IF_NONE_MATCH).cloned();
        let parts = Arc::new(parts);
        let options = self.options(&parts, asked.no_cache);
        let nonce = nonce();
        let load = self.loader(inner, parts.clone(), key.clone(), keyed.to_vec(), nonce);
        let mut stored = match cache.get_or_load_owned(&key, &options, load).await {
            Ok(stored) => stored,
            Err(Pass::Response(res)) => return Ok(served(res, Served::Miss)),
            Err(Pass::Failed(e)) => return Err(e),
        };
        let now = now_ms();
        let outcome = if stored.nonce == nonce {
            Served::Miss
        } else if now >= stored.expires_ms {
            // Past the lifetime the response itself asked for: load again, now.
            let mut forced = options.into_owned();
            forced.force_refresh = true;
            let nonce = self::nonce();
            let load = self.loader(spare, parts, key.clone(), keyed.to_vec(), nonce);
            stored = match cache.get_or_load_owned(&key, &forced, load).await {
                Ok(stored) => stored,
                Err(Pass::Response(res)) => return Ok(served(res, Served::Miss)),
                Err(Pass::Failed(e)) => return Err(e),
            };
            if stored.nonce == nonce {
                Served::Miss
            } else {
                Served::Hit
            }
        } else if now >= stored.fresh_until_ms {
            // Stale before the route's own freshness ends (a shorter `max-age`): the runtime
            // saw it fresh and refreshes nothing, so this layer does.
            if now < stored.stored_ms.saturating_add(millis(self.config.ttl)) {
                let load = self.loader(spare, parts, key.clone(), keyed.to_vec(), self::nonce());
                self.refresh(key, options.into_owned(), load);
            }
            Served::Stale
        } else {
            Served::Hit
        };
        Ok(stored.respond(outcome, if_none_match.as_ref(), now_ms()))
    }

    /// The headers in the key: the route's, and those responses added to their `Vary`.
    fn keyed(&self) -> Cow<'_, [HeaderName]> {
        let learned = self
            .state
            .learned
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if learned.is_empty() {
            return Cow::Borrowed(&self.keyed);
        }
        let mut all = self.keyed.clone();
        all.extend(learned.iter().cloned());
        all.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        all.dedup();
        Cow::Owned(all)
    }

    /// The key of a request that may be cached, or `None` for one that goes to the handler.
    fn key_of(&self, parts: &Parts, asked: &Directives, keyed: &[HeaderName]) -> Option<String> {
        if asked.no_store || has_body(parts) {
            return None;
        }
        let h = &parts.headers;
        if !self.config.per_user
            && (h.contains_key(header::AUTHORIZATION) || h.contains_key(header::COOKIE))
        {
            return None;
        }
        let key = key::key(
            &self.config.name,
            self.config.protected.is_some(),
            parts,
            keyed,
        )?;
        (!self.state.passes.contains_key(&key)).then_some(key)
    }

    fn options(&self, parts: &Parts, force: bool) -> Cow<'_, LoadOptions> {
        if self.config.tags_from.is_none() && !force {
            return Cow::Borrowed(&self.options);
        }
        let mut options = self.options.clone();
        if let Some(tags) = &self.config.tags_from {
            options.tags.extend(tags(parts));
        }
        options.force_refresh = force;
        Cow::Owned(options)
    }

    /// The load of one key: calls the handler with the request's head, and keeps its
    /// response if it may be stored.
    fn loader<S, B, R>(
        self: &Arc<Self>,
        mut svc: S,
        parts: Arc<Parts>,
        key: String,
        keyed: Vec<HeaderName>,
        nonce: u64,
    ) -> impl FnOnce() -> LoadFuture<S::Error> + Send + 'static
    where
        S: Service<Request<B>, Response = Response<R>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        B: Default + Send + 'static,
        R: HttpBody<Data = Bytes> + Send + 'static,
        R::Error: Into<BoxError>,
    {
        let route = self.clone();
        move || {
            Box::pin(async move {
                let started = now_ms();
                let mut head = (*parts).clone();
                // The stored response is the full one, whatever validators or range the
                // request that happened to load it sent; this layer answers those itself.
                for name in CONDITIONAL {
                    head.headers.remove(name);
                }
                let req = Request::from_parts(head, B::default());
                poll_fn(|cx| svc.poll_ready(cx))
                    .await
                    .map_err(Pass::Failed)?;
                let res = svc.call(req).await.map_err(Pass::Failed)?;
                route
                    .admit(&parts.method, &key, &keyed, res, started, nonce)
                    .await
            })
        }
    }

    /// The stored form of `res`, or `res` itself to pass on.
    async fn admit<R, E>(
        &self,
        method: &Method,
        key: &str,
        keyed: &[HeaderName],
        res: Response<R>,
        started: u64,
        nonce: u64,
    ) -> Result<StoredResponse, Pass<E>>
    where
        R: HttpBody<Data = Bytes> + Send + 'static,
        R::Error: Into<BoxError>,
    {
        let (head, body) = res.into_parts();
        let mut verdict = self.judge(&head, keyed);
        if body
            .size_hint()
            .lower()
            .try_into()
            .map_or(true, |len: usize| len > self.config.max_body)
        {
            verdict = Verdict::Pass { remember: true };
        }
        let (fresh, stale) = match verdict {
            Verdict::Store { fresh, stale } => (fresh, stale),
            Verdict::Pass { remember } => {
                if remember {
                    self.state.passes.insert(key.to_owned(), ());
                }
                return Err(Pass::Response(Response::from_parts(head, Body::new(body))));
            }
        };
        match body::collect(body, self.config.max_body).await {
            Collected::Whole(bytes) => {
                let fresh_until = started.saturating_add(millis(fresh));
                let times = [
                    started,
                    fresh_until,
                    fresh_until.saturating_add(millis(stale)),
                ];
                Ok(StoredResponse::new(
                    method,
                    head.status,
                    &head.headers,
                    bytes,
                    times,
                    nonce,
                ))
            }
            Collected::Partial(rest) => {
                self.state.passes.insert(key.to_owned(), ());
                Err(Pass::Response(Response::from_parts(head, Body::new(rest))))
            }
        }
    }

    /// Whether a response may be stored, and for how long.
    fn judge(&self, res: &axum::http::response::Parts, keyed: &[HeaderName]) -> Verdict {
        let remember = Verdict::Pass { remember: true };
        if !self.config.statuses.contains(&res.status) {
            return Verdict::Pass { remember: false };
        }
        if res.headers.contains_key(header::SET_COOKIE) {
            return remember;
        }
        let cc = Directives::of(&res.headers);
        if cc.no_store || cc.no_cache || (cc.private && !self.config.per_user) {
            return remember;
        }
        for line in res.headers.get_all(header::VARY) {
            let Ok(line) = line.to_str() else {
                return remember;
            };
            for name in line.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                // `*` (varies on more than headers) is a valid token: checked first.
                if name == "*" {
                    return remember;
                }
                let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                    return remember;
                };
                if !keyed.contains(&name) {
                    // Not in this request's key: keyed by it from now on, not stored now.
                    return Verdict::Pass {
                        remember: !self.learn(name),
                    };
                }
            }
        }
        let fresh = cc
            .shared_max_age()
            .map_or(self.config.ttl, |age| age.min(self.config.ttl));
        let stale = cc
            .stale_while_revalidate
            .map_or(self.config.stale, |s| s.min(self.config.stale));
        if fresh.is_zero() && stale.is_zero() {
            return remember;
        }
        Verdict::Store { fresh, stale }
    }

    /// Adds `name` to the headers in keys; `false` when the list is full.
    fn learn(&self, name: HeaderName) -> bool {
        let mut learned = self
            .state
            .learned
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if learned.contains(&name) {
            return true;
        }
        if learned.len() >= MAX_LEARNED_VARY {
            return false;
        }
        tracing::debug!(target: "cachette", route = %self.config.name, header = %name, "responses vary on a header the key did not include; keyed by it from now on");
        learned.push(name);
        true
    }

    /// Refreshes `key` in a task, unless this layer is already refreshing it.
    fn refresh<E: Send + 'static>(
        self: &Arc<Self>,
        key: String,
        mut options: LoadOptions,
        load: impl FnOnce() -> LoadFuture<E> + Send + 'static,
    ) {
        let mut refreshing = self
            .state
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !refreshing.insert(key.clone()) {
            return;
        }
        drop(refreshing);
        options.force_refresh = true;
        let route = self.clone();
        tokio::spawn(async move {
            let done = Refreshing(&route, &key);
            let _ = route
                .config
                .cache
                .get_or_load_owned(&key, &options, load)
                .await;
            drop(done);
        });
    }
}

/// Takes a key off the refreshing list when its refresh ends or is dropped.
struct Refreshing<'a>(&'a Route, &'a str);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0
            .state
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(self.1);
    }
}

/// Request headers a load leaves out: with them a handler could answer `304` or `206`, which
/// are not stored, instead of the response to store.
const CONDITIONAL: [HeaderName; 6] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

/// Whether the request says it has a body: such requests are not cached (the key would not
/// include it).
fn has_body(parts: &Parts) -> bool {
    parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0")
}

/// A number no other load of this process (and, with overwhelming likelihood, of any other)
/// is given: a random start per process, counted up. No system call per request.
fn nonce() -> u64 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static START: OnceLock<u64> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| u64::from_le_bytes(crate::random::token8()));
    start.wrapping_add(COUNT.fetch_add(1, Relaxed))
}

/// `res` with `X-Cache` set.
fn served(mut res: Response<Body>, how: Served) -> Response<Body> {
    res.headers_mut().insert(X_CACHE.clone(), how.header());
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn route(layer: CacheLayer) -> Route {
        Route::new(layer.config, layer.state)
    }

    fn head(status: u16, headers: &[(&'static str, &'static str)]) -> axum::http::response::Parts {
        let mut res = Response::builder().status(status);
        for (n, v) in headers {
            res = res.header(*n, HeaderValue::from_static(v));
        }
        res.body(()).unwrap().into_parts().0
    }

    fn verdict(r: &Route, status: u16, headers: &[(&'static str, &'static str)]) -> String {
        match r.judge(&head(status, headers), &r.keyed()) {
            Verdict::Store { fresh, stale } => {
                format!("store {}+{}", fresh.as_secs(), stale.as_secs())
            }
            Verdict::Pass { remember: true } => "pass, remembered".to_owned(),
            Verdict::Pass { remember: false } => "pass".to_owned(),
        }
    }

    #[test]
    fn what_is_stored_and_for_how_long() {
        let r = route(
            CacheLayer::new(Cache::disabled())
                .ttl(Duration::from_secs(60))
                .stale_while_revalidate(Duration::from_secs(30)),
        );
        assert_eq!(verdict(&r, 200, &[]), "store 60+30");
        assert_eq!(verdict(&r, 404, &[]), "store 60+30");
        assert_eq!(verdict(&r, 500, &[]), "pass");
        assert_eq!(verdict(&r, 206, &[]), "pass");
        assert_eq!(
            verdict(&r, 200, &[("set-cookie", "a=b")]),
            "pass, remembered"
        );
        assert_eq!(
            verdict(&r, 200, &[("cache-control", "no-store")]),
            "pass, remembered"
        );
        assert_eq!(
            verdict(&r, 200, &[("cache-control", "no-cache")]),
            "pass, remembered"
        );
        assert_eq!(
            verdict(&r, 200, &[("cache-control", "private")]),
            "pass, remembered"
        );
        assert_eq!(verdict(&r, 200, &[("vary", "*")]), "pass, remembered");
        // A response shortens the route's lifetimes, never lengthens them.
        assert_eq!(
            verdict(&r, 200, &[("cache-control", "max-age=10")]),
            "store 10+30"
        );
        assert_eq!(
            verdict(&r, 200, &[("cache-control", "max-age=600, s-maxage=5")]),
            "store 5+30"
        );
        assert_eq!(
            verdict(
                &r,
                200,
                &[("cache-control", "max-age=600, stale-while-revalidate=5")]
            ),
            "store 60+5"
        );
        assert_eq!(
            verdict(&r, 200, &[("cache-control", "max-age=0")]),
            "store 0+30"
        );
        assert_eq!(
            verdict(
                &r,
                200,
                &[("cache-control", "max-age=0, stale-while-revalidate=0")]
            ),
            "pass, remembered"
        );
    }

    #[test]
    fn private_is_stored_per_user_only_and_vary_is_learned() {
        let per_user = route(CacheLayer::new(Cache::disabled()).per_user());
        assert_eq!(
            verdict(&per_user, 200, &[("cache-control", "private")]),
            "store 60+0"
        );
        assert_eq!(
            verdict(&per_user, 200, &[("vary", "Cookie, authorization")]),
            "store 60+0"
        );

        let r = route(CacheLayer::new(Cache::disabled()).vary([header::ACCEPT_LANGUAGE]));
        assert_eq!(
            verdict(&r, 200, &[("vary", "Accept-Language")]),
            "store 60+0"
        );
        assert_eq!(
            verdict(&r, 200, &[("vary", "accept-language, x-a")]),
            "pass"
        );
        assert_eq!(
            verdict(&r, 200, &[("vary", "x-a")]),
            "store 60+0",
            "keyed by x-a now"
        );
        for name in ["x-b", "x-c", "x-d", "x-e", "x-f", "x-g", "x-h"] {
            let name = HeaderName::from_static(name);
            assert!(r.learn(name));
        }
        assert_eq!(
            verdict(&r, 200, &[("vary", "x-i")]),
            "pass, remembered",
            "at most 8 learned"
        );
    }
}
