//! `CacheLayer` over real HTTP on loopback, through axum and a real `redis-server`: `X-Cache`
//! hit, miss and stale with `Age`; `304` for a matching `If-None-Match`; `Vary` (the route's
//! and the response's own) keeping variants apart; `no-store` and `private` respected on both
//! sides; responses never crossing users; tag invalidation from a handler; bodies over the cap
//! streamed uncached; protected routes sealed; a stopped server costing only the caching.
//!
//! Nothing here waits for a time to pass for correctness: stale responses are awaited in a
//! loop bounded by a deadline, and every count is of handler runs.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use cachette::Cache;
use cachette::healthcare::Keyring;
use cachette::http::CacheLayer;
use support::RedisServer;
use support::caches::{on_server, on_server_with_timeout};
use support::http::{request, serve};

const HOUR: Duration = Duration::from_secs(3600);

/// One answer: status, headers, body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn x_cache(&self) -> &str {
        self.headers
            .get("x-cache")
            .map_or("<none>", |v| v.to_str().unwrap())
    }
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// `method path` over a new connection, with `headers`.
async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let method = method.parse().unwrap();
    let (head, body) = request(addr, method, path, headers).await.into_parts();
    Answer {
        status: head.status,
        headers: head.headers,
        body,
    }
}

async fn get_path(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(addr, "GET", path, headers).await
}

/// A handler that counts its runs and answers `run <n>` with `headers`.
fn counting<S: Clone + Send + Sync + 'static>(
    runs: &Arc<AtomicUsize>,
    headers: &'static [(&'static str, &'static str)],
) -> axum::routing::MethodRouter<S> {
    let runs = runs.clone();
    get(move || {
        let n = runs.fetch_add(1, SeqCst) + 1;
        async move {
            let mut h = HeaderMap::new();
            for (name, value) in headers {
                h.append(HeaderName::from_static(name), value.parse().unwrap());
            }
            (h, format!("run {n}"))
        }
    })
}

/// Sends `GET path` until `done` holds for the answer, for at most 20 s.
async fn until(addr: SocketAddr, path: &str, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = get_path(addr, path, &[]).await;
        if done(&a) {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?}: {}",
            a.x_cache(),
            a.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_then_hits_with_age_and_one_handler_run() {
    let server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(on_server(&server, "t")).ttl(HOUR);
    let addr = serve(Router::new().route("/items", counting(&runs, &[]).layer(layer))).await;

    let first = get_path(addr, "/items", &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.x_cache(), "miss");
    assert_eq!(first.text(), "run 1");
    assert_eq!(first.headers["age"], "0");
    for _ in 0..3 {
        let again = get_path(addr, "/items", &[]).await;
        assert_eq!(again.x_cache(), "hit");
        assert_eq!(again.text(), "run 1");
        assert!(again.headers.contains_key("age"));
        assert_eq!(again.headers["etag"], first.headers["etag"]);
    }
    // Equivalent queries share the response; another query is another response.
    assert_eq!(get_path(addr, "/items?b=2&a=1", &[]).await.text(), "run 2");
    let same = get_path(addr, "/items?a=%31&b=2&", &[]).await;
    assert_eq!((same.x_cache(), same.text()), ("hit", "run 2"));
    assert_eq!(runs.load(SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_run_the_handler_once() {
    let server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let handler = get(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, SeqCst);
            // Long enough for the others to arrive while this one loads; the count below
            // holds whatever the timing.
            tokio::time::sleep(Duration::from_millis(200)).await;
            "slow"
        }
    });
    let layer = CacheLayer::new(on_server(&server, "t")).ttl(HOUR);
    let addr = serve(Router::new().route("/slow", handler.layer(layer))).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        tasks.spawn(async move { get_path(addr, "/slow", &[]).await });
    }
    for a in tasks.join_all().await {
        assert_eq!((a.status, a.text()), (StatusCode::OK, "slow"));
    }
    assert_eq!(runs.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_responses_are_served_while_one_refresh_runs() {
    let server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(on_server(&server, "t"))
        .ttl(Duration::from_secs(1))
        .stale_while_revalidate(HOUR);
    let addr = serve(Router::new().route("/s", counting(&runs, &[]).layer(layer))).await;
    assert_eq!(get_path(addr, "/s", &[]).await.text(), "run 1");
    let stale = until(addr, "/s", |a| a.x_cache() == "stale").await;
    assert_eq!(stale.text(), "run 1", "the old response, at once");
    let age: u64 = stale.headers["age"].to_str().unwrap().parse().unwrap();
    assert!(age >= 1, "{age}");
    // The refresh ran in the background and its response is served as a hit.
    until(addr, "/s", |a| a.text() != "run 1" && a.x_cache() == "hit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_max_age_makes_a_response_stale_sooner() {
    let server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(on_server(&server, "t"))
        .ttl(HOUR)
        .stale_while_revalidate(HOUR);
    let handler = counting(
        &runs,
        &[("cache-control", "max-age=1, stale-while-revalidate=600")],
    );
    let addr = serve(Router::new().route("/m", handler.layer(layer))).await;
    assert_eq!(get_path(addr, "/m", &[]).await.x_cache(), "miss");
    assert_eq!(get_path(addr, "/m", &[]).await.text(), "run 1");
    let stale = until(addr, "/m", |a| a.x_cache() == "stale").await;
    assert_eq!(stale.text(), "run 1");
    until(addr, "/m", |a| a.text() != "run 1" && a.x_cache() == "hit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_if_none_match_gets_304_without_a_body() {
    let server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(on_server(&server, "t")).ttl(HOUR);
    let handler = counting(&runs, &[("content-type", "text/plain")]);
    let addr = serve(Router::new().route("/e", handler.layer(layer))).await;
    let first = get_path(addr, "/e", &[]).await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "strong: {etag}");

    let not_modified = get_path(addr, "/e", &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.headers["etag"], etag.as_str());
    assert_eq!(not_modified.x_cache(), "hit");
    assert!(!not_modified.headers.contains_key("content-type"));

    let weak = format!("\"other\", W/{etag}");
    assert_eq!(
        get_path(addr, "/e", &[("if-none-match", &weak)])
            .await
            .status,
        StatusCode::NOT_MODIFIED
    );
    let other = get_path(addr, "/e", &[("if-none-match", "\"other\"")]).await;
    assert_eq!((other.status, other.text()), (StatusCode::OK, "run 1"));
    assert_eq!(runs.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_loads_without_the_requests_validators() {
    let server = RedisServer::start();
    let layer = CacheLayer::new(on_server(&server, "t")).ttl(HOUR);
    // A handler that answers validators and ranges itself, as some do.
    let handler = get(|headers: HeaderMap| async move {
        if headers.contains_key(header::IF_NONE_MATCH) || headers.contains_key(header::RANGE) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            "full".into_response()
        }
    });
    let addr = serve(Router::new().route("/c", handler.layer(layer))).await;
    let first = get_path(
        addr,
        "/c",
        &[("if-none-match", "\"old\""), ("range", "bytes=0-1")],
    )
    .await;
    assert_eq!(
        (first.status, first.x_cache(), first.text()),
        (StatusCode::OK, "miss", "full")
    );
    let again = get_path(addr, "/c", &[]).await;
    assert_eq!((again.x_cache(), again.text()), ("hit", "full"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_keeps_variants_apart() {
    let server = RedisServer::start();
    let cache = on_server(&server, "t");
    let echo = |name: &'static str| {
        move |headers: HeaderMap| async move {
            let value = headers
                .get(name)
                .map_or("none".to_owned(), |v| v.to_str().unwrap().to_owned());
            ([(header::VARY, name)], value)
        }
    };
    let declared = CacheLayer::new(cache.clone())
        .name("lang")
        .ttl(HOUR)
        .vary([header::ACCEPT_LANGUAGE]);
    let own = CacheLayer::new(cache).name("variant").ttl(HOUR);
    let app = Router::new()
        .route("/lang", get(echo("accept-language")).layer(declared))
        .route("/variant", get(echo("x-variant")).layer(own));
    let addr = serve(app).await;

    let fr = [("accept-language", "fr")];
    let de = [("accept-language", "de")];
    assert_eq!(get_path(addr, "/lang", &fr).await.text(), "fr");
    let a = get_path(addr, "/lang", &de).await;
    assert_eq!((a.x_cache(), a.text()), ("miss", "de"));
    let a = get_path(addr, "/lang", &fr).await;
    assert_eq!((a.x_cache(), a.text()), ("hit", "fr"));
    let a = get_path(addr, "/lang", &de).await;
    assert_eq!((a.x_cache(), a.text()), ("hit", "de"));

    // A response that varies on a header the route did not name is not stored; the layer
    // then keys by that header, and each variant is stored apart.
    let va = [("x-variant", "a")];
    let vb = [("x-variant", "b")];
    assert_eq!(get_path(addr, "/variant", &va).await.x_cache(), "miss");
    assert_eq!(get_path(addr, "/variant", &va).await.text(), "a");
    let a = get_path(addr, "/variant", &va).await;
    assert_eq!((a.x_cache(), a.text()), ("hit", "a"));
    let b = get_path(addr, "/variant", &vb).await;
    assert_eq!((b.x_cache(), b.text()), ("miss", "b"));
    let b = get_path(addr, "/variant", &vb).await;
    assert_eq!((b.x_cache(), b.text()), ("hit", "b"));
    let none = get_path(addr, "/variant", &[]).await;
    assert_eq!(none.text(), "none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_and_private_responses_are_not_stored() {
    let server = RedisServer::start();
    let cache = on_server(&server, "t");
    let (no_store, private, cookie) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let app = Router::new()
        .route(
            "/no-store",
            counting(&no_store, &[("cache-control", "no-store")])
                .layer(CacheLayer::new(cache.clone()).name("a").ttl(HOUR)),
        )
        .route(
            "/private",
            counting(&private, &[("cache-control", "private, max-age=600")])
                .layer(CacheLayer::new(cache.clone()).name("b").ttl(HOUR)),
        )
        .route(
            "/cookie",
            counting(&cookie, &[("set-cookie", "session=s1")])
                .layer(CacheLayer::new(cache).name("c").ttl(HOUR)),
        );
    let addr = serve(app).await;
    for path in ["/no-store", "/private", "/cookie"] {
        for n in 1..=3 {
            let a = get_path(addr, path, &[]).await;
            assert_eq!(
                (a.x_cache(), a.text()),
                ("miss", &*format!("run {n}")),
                "{path}"
            );
        }
    }
    let set_cookie = get_path(addr, "/cookie", &[]).await;
    assert_eq!(
        set_cookie.headers["set-cookie"], "session=s1",
        "passed on untouched"
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("t:http:*")
        .query(&mut server.conn())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_no_store_bypasses_and_no_cache_reloads() {
    let server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(on_server(&server, "t")).ttl(HOUR);
    let addr = serve(Router::new().route("/r", counting(&runs, &[]).layer(layer))).await;
    assert_eq!(get_path(addr, "/r", &[]).await.text(), "run 1");
    let bypass = get_path(addr, "/r", &[("cache-control", "no-store")]).await;
    assert_eq!((bypass.x_cache(), bypass.text()), ("miss", "run 2"));
    assert_eq!(
        get_path(addr, "/r", &[]).await.text(),
        "run 1",
        "nothing stored"
    );
    let reload = get_path(addr, "/r", &[("cache-control", "no-cache")]).await;
    assert_eq!((reload.x_cache(), reload.text()), ("miss", "run 3"));
    let a = get_path(addr, "/r", &[]).await;
    assert_eq!(
        (a.x_cache(), a.text()),
        ("hit", "run 3"),
        "the reload was stored"
    );
    let pragma = get_path(addr, "/r", &[("pragma", "no-cache")]).await;
    assert_eq!(pragma.text(), "run 4");
}

/// Answers with the user the request names (its `Authorization` or `Cookie`), or `anonymous`.
async fn whoami(headers: HeaderMap) -> impl IntoResponse {
    let user = headers
        .get(header::AUTHORIZATION)
        .or(headers.get(header::COOKIE))
        .map_or("anonymous".to_owned(), |v| v.to_str().unwrap().to_owned());
    ([(header::CACHE_CONTROL, "private")], user)
}

/// Answers with the user the request names, without saying the response is private.
async fn whoami_public(headers: HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .or(headers.get(header::COOKIE))
        .map_or("anonymous".to_owned(), |v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_never_crosses_users() {
    let server = RedisServer::start();
    let cache = on_server(&server, "t");
    let app = Router::new()
        .route(
            "/shared",
            get(whoami_public).layer(CacheLayer::new(cache.clone()).name("shared").ttl(HOUR)),
        )
        .route(
            "/mine",
            get(whoami).layer(CacheLayer::new(cache).name("mine").ttl(HOUR).per_user()),
        );
    let addr = serve(app).await;
    let alice = [("authorization", "Bearer alice")];
    let bob = [("authorization", "Bearer bob")];
    let carol = [("cookie", "session=carol")];

    // A route that did not opt in: credentials go to the handler, every time, and are never
    // answered from (or stored as) the anonymous response.
    assert_eq!(get_path(addr, "/shared", &[]).await.text(), "anonymous");
    assert_eq!(get_path(addr, "/shared", &[]).await.x_cache(), "hit");
    for (who, name) in [
        (&alice, "Bearer alice"),
        (&bob, "Bearer bob"),
        (&alice, "Bearer alice"),
    ] {
        let a = get_path(addr, "/shared", who).await;
        assert_eq!((a.x_cache(), a.text()), ("miss", name));
    }
    let a = get_path(addr, "/shared", &carol).await;
    assert_eq!((a.x_cache(), a.text()), ("miss", "session=carol"));
    assert_eq!(get_path(addr, "/shared", &[]).await.text(), "anonymous");

    // A route keyed per user: each user's response is cached for that user only, `private`
    // or not.
    for (who, name) in [
        (&alice, "Bearer alice"),
        (&bob, "Bearer bob"),
        (&carol, "session=carol"),
    ] {
        let a = get_path(addr, "/mine", who).await;
        assert_eq!((a.x_cache(), a.text()), ("miss", name));
    }
    for (who, name) in [
        (&bob, "Bearer bob"),
        (&alice, "Bearer alice"),
        (&carol, "session=carol"),
    ] {
        let a = get_path(addr, "/mine", who).await;
        assert_eq!((a.x_cache(), a.text()), ("hit", name));
    }
    let anon = get_path(addr, "/mine", &[]).await;
    assert_eq!((anon.x_cache(), anon.text()), ("miss", "anonymous"));
    // No credential appears in a key name.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut server.conn())
        .unwrap();
    assert!(
        keys.iter()
            .all(|k| !k.contains("alice") && !k.contains("carol")),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_invalidates_by_tag() {
    let server = RedisServer::start();
    let cache = on_server(&server, "t");
    let runs = Arc::new(AtomicUsize::new(0));
    let clinics = CacheLayer::new(cache.clone())
        .name("clinics")
        .ttl(HOUR)
        .tag("clinics")
        .tags_from(|req| vec![format!("path:{}", req.uri.path())]);
    let app = Router::new()
        .route("/clinics", counting(&runs, &[]).layer(clinics.clone()))
        .route("/clinics/7", counting(&runs, &[]).layer(clinics))
        .route(
            "/clinics/rename",
            post(|State(cache): State<Cache>| async move {
                cache.invalidate_tag("clinics").await.unwrap();
            }),
        )
        .route(
            "/clinics/7/touch",
            post(|State(cache): State<Cache>| async move {
                cache.invalidate_tag("path:/clinics/7").await.unwrap();
            }),
        )
        .with_state(cache);
    let addr = serve(app).await;
    assert_eq!(get_path(addr, "/clinics", &[]).await.text(), "run 1");
    assert_eq!(get_path(addr, "/clinics/7", &[]).await.text(), "run 2");
    assert_eq!(get_path(addr, "/clinics", &[]).await.x_cache(), "hit");
    assert_eq!(
        send(addr, "POST", "/clinics/7/touch", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(get_path(addr, "/clinics/7", &[]).await.text(), "run 3");
    assert_eq!(
        get_path(addr, "/clinics", &[]).await.text(),
        "run 1",
        "other tag"
    );
    assert_eq!(
        send(addr, "POST", "/clinics/rename", &[]).await.status,
        StatusCode::OK
    );
    let a = get_path(addr, "/clinics", &[]).await;
    assert_eq!((a.x_cache(), a.text()), ("miss", "run 4"));
    assert_eq!(get_path(addr, "/clinics/7", &[]).await.text(), "run 5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_cached_apart_from_get() {
    let server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(on_server(&server, "t")).ttl(HOUR);
    let addr = serve(Router::new().route("/h", counting(&runs, &[]).layer(layer))).await;
    let head = send(addr, "HEAD", "/h", &[]).await;
    assert_eq!((head.status, head.x_cache()), (StatusCode::OK, "miss"));
    assert!(head.body.is_empty());
    let head = send(addr, "HEAD", "/h", &[]).await;
    assert_eq!(head.x_cache(), "hit");
    assert!(head.body.is_empty());
    let get = get_path(addr, "/h", &[]).await;
    assert_eq!((get.x_cache(), get.text()), ("miss", "run 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_cap_and_hostile_queries_are_not_stored() {
    let server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let big = get(move || {
        counted.fetch_add(1, SeqCst);
        async { axum::body::Body::new(Chunks(8)) }
    });
    let small = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::new(on_server(&server, "t"))
        .ttl(HOUR)
        .max_body(1024);
    let app = Router::new()
        .route("/big", big.layer(layer.clone()))
        .route("/small", counting(&small, &[]).layer(layer));
    let addr = serve(app).await;
    for _ in 0..3 {
        let a = get_path(addr, "/big", &[]).await;
        assert_eq!(
            (a.status, a.x_cache(), a.body.len()),
            (StatusCode::OK, "miss", 4096)
        );
        assert!(a.body.iter().all(|b| *b == b'x'));
    }
    assert_eq!(runs.load(SeqCst), 3);

    let many = format!("/small?{}", "x=1&".repeat(300));
    let long = format!("/small?q={}", "y".repeat(9000));
    for path in [&many, &many, &long, &long] {
        assert_eq!(get_path(addr, path, &[]).await.x_cache(), "miss");
    }
    assert_eq!(small.load(SeqCst), 4);
}

/// A body of `n` chunks of 512 `x`s, with no length known up front.
struct Chunks(usize);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        let chunk = hyper::body::Frame::data(Bytes::from(vec![b'x'; 512]));
        std::task::Poll::Ready(Some(Ok(chunk)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_costs_only_the_caching() {
    let mut server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let cache = on_server_with_timeout(&server, "t", Duration::from_millis(200));
    let layer = CacheLayer::new(cache).ttl(HOUR);
    let addr = serve(Router::new().route("/d", counting(&runs, &[]).layer(layer))).await;
    assert_eq!(get_path(addr, "/d", &[]).await.text(), "run 1");
    server.stop();
    for n in 2..=4 {
        let a = get_path(addr, "/d", &[]).await;
        assert_eq!(
            (a.status, a.x_cache(), a.text()),
            (StatusCode::OK, "miss", &*format!("run {n}"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_routes_are_sealed_under_phi() {
    const SECRET: &str = "MRN-0042 allergic to penicillin";
    let server = RedisServer::start();
    let ring = Arc::new(Keyring::new([("k1".to_string(), [7u8; 32])]).unwrap());
    let sealed = Cache::builder()
        .redis(server.url())
        .prefix("t")
        .sealer(ring)
        .build()
        .unwrap();
    let unsealed = on_server(&server, "u");
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let record = get(move || {
        counted.fetch_add(1, SeqCst);
        async { SECRET }
    });
    let app = Router::new()
        .route(
            "/records/42",
            record
                .clone()
                .layer(CacheLayer::new(sealed).ttl(HOUR).protected("records")),
        )
        .route(
            "/unsealed/42",
            record.layer(CacheLayer::new(unsealed).ttl(HOUR).protected("records")),
        );
    let addr = serve(app).await;
    assert_eq!(get_path(addr, "/records/42", &[]).await.text(), SECRET);
    let a = get_path(addr, "/records/42", &[]).await;
    assert_eq!((a.x_cache(), a.text()), ("hit", SECRET));

    let mut conn = server.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("t:phi:http:*")
        .query(&mut conn)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stored: Vec<u8> = redis::cmd("GET").arg(&keys[0]).query(&mut conn).unwrap();
    assert!(
        !stored.windows(8).any(|w| w == b"MRN-0042"),
        "the body is sealed at rest"
    );
    // Without a sealer nothing protected is stored: every request runs the handler.
    for _ in 0..2 {
        assert_eq!(get_path(addr, "/unsealed/42", &[]).await.x_cache(), "miss");
    }
    let keys: Vec<String> = redis::cmd("KEYS").arg("u:*http*").query(&mut conn).unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    assert_eq!(runs.load(SeqCst), 3);
}
