//! `RateLimitLayer` over real HTTP on loopback, through axum and a real `redis-server`: `429`
//! with `Retry-After` exactly at the limit, the `RateLimit-*` headers on every answer, keys by
//! client IP or header, both failure policies, and one limit shared by two OS processes.
//!
//! The test binary is its own worker: `two_processes_share_one_limit` starts two copies of it
//! that run only `worker` (selected by environment variables); each serves the same limited
//! router on its own port, sends its requests to it, and reports on stdout.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::routing::get;
use cachette::http::{Header, KeyExtractor, RateLimitLayer};
use cachette::{Cache, RateLimitPolicy};
use support::RedisServer;
use support::caches::on_server_with_policy as cache_on;
use support::http::serve;
use support::workers;

const HOUR: Duration = Duration::from_secs(3600);

/// One `GET /` over a new connection; the status and headers.
async fn get_root(addr: SocketAddr, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap) {
    let res = support::http::request(addr, Method::GET, "/", headers).await;
    (res.status(), res.headers().clone())
}

fn header(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name).map(|v| v.to_str().unwrap().parse().unwrap())
}

fn router(layer: RateLimitLayer<impl KeyExtractor<axum::body::Body>>) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_exactly_at_the_limit_with_the_headers() {
    let server = RedisServer::start();
    let cache = cache_on(&server, RateLimitPolicy::FailOpen);
    let addr = serve(router(RateLimitLayer::new(cache, 3, HOUR).unwrap())).await;
    for left in (0..3).rev() {
        let (status, h) = get_root(addr, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&h, "ratelimit-limit"), Some(3));
        assert_eq!(header(&h, "ratelimit-remaining"), Some(left));
        let reset = header(&h, "ratelimit-reset").unwrap();
        assert!((1..=3600).contains(&reset), "{reset}");
        assert!(h.get("retry-after").is_none());
    }
    let (status, h) = get_root(addr, &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry = header(&h, "retry-after").unwrap();
    assert!(
        (1..=1200).contains(&retry),
        "one request per 1200 s: {retry}"
    );
    assert_eq!(header(&h, "ratelimit-remaining"), Some(0));
    assert_eq!(header(&h, "ratelimit-limit"), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_keeps_clients_apart_and_its_absence_shares_one_limit() {
    let server = RedisServer::start();
    let cache = cache_on(&server, RateLimitPolicy::FailOpen);
    let layer = RateLimitLayer::new(cache, 1, HOUR)
        .unwrap()
        .name("api")
        .key(Header::new(HeaderName::from_static("x-api-key")));
    let addr = serve(router(layer)).await;
    let key_a = [("x-api-key", "a")];
    assert_eq!(get_root(addr, &key_a).await.0, StatusCode::OK);
    assert_eq!(
        get_root(addr, &key_a).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get_root(addr, &[("x-api-key", "b")]).await.0,
        StatusCode::OK
    );
    assert_eq!(get_root(addr, &[]).await.0, StatusCode::OK);
    assert_eq!(get_root(addr, &[]).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_passes_requests_or_answers_503() {
    let mut server = RedisServer::start();
    let open = serve(router(
        RateLimitLayer::new(cache_on(&server, RateLimitPolicy::FailOpen), 1, HOUR).unwrap(),
    ))
    .await;
    let closed = serve(router(
        RateLimitLayer::new(cache_on(&server, RateLimitPolicy::FailClosed), 1, HOUR)
            .unwrap()
            .name("closed"),
    ))
    .await;
    assert_eq!(get_root(closed, &[]).await.0, StatusCode::OK);
    server.stop();
    for _ in 0..3 {
        let (status, h) = get_root(open, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            h.get("ratelimit-remaining").is_none(),
            "nothing was counted"
        );
        let (status, h) = get_root(closed, &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&h, "retry-after"), Some(1));
    }
}

/// Requests each worker sends; together more than the limit.
const PER_WORKER: usize = 30;
const SHARED_LIMIT: u32 = 40;

/// The worker: does nothing unless started by `two_processes_share_one_limit`.
#[test]
fn worker() {
    let Ok(url) = std::env::var("CACHETTE_RATE_WORKER_REDIS") else {
        return;
    };
    workers::runtime().block_on(async move {
        let cache = Cache::builder()
            .redis(url.clone())
            .prefix("t")
            .build()
            .unwrap();
        let layer = RateLimitLayer::new(cache, SHARED_LIMIT, HOUR)
            .unwrap()
            .key(Header::new(HeaderName::from_static("x-tenant")));
        let addr = serve(router(layer)).await;
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        workers::ready_then_wait_for_go(&mut conn).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..PER_WORKER {
            tasks.spawn(async move { get_root(addr, &[("x-tenant", "shared")]).await });
        }
        let (mut ok, mut limited) = (0, 0);
        for (status, h) in tasks.join_all().await {
            match status {
                StatusCode::OK => ok += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(header(&h, "retry-after").unwrap() >= 1);
                    limited += 1;
                }
                other => panic!("unexpected {other}"),
            }
        }
        println!("WORKER-RESULT ok={ok} limited={limited}");
    });
}

/// The `(ok, limited)` counts of a worker's result line.
fn counts(line: &str) -> (u32, u32) {
    let count = |name: &str| -> u32 {
        let at = line.find(name).unwrap() + name.len();
        line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (count("ok="), count("limited="))
}

#[test]
fn two_processes_share_one_limit() {
    let server = RedisServer::start();
    let env = [("CACHETTE_RATE_WORKER_REDIS", server.url())];
    let children = [workers::spawn(&env), workers::spawn(&env)];
    workers::go_when_ready(&server, 2);
    let (mut ok, mut limited) = (0, 0);
    for child in children {
        let (o, l) = counts(&workers::result_of(child, Duration::from_secs(60)));
        ok += o;
        limited += l;
    }
    assert_eq!(
        ok, SHARED_LIMIT,
        "exactly the limit passed across both processes"
    );
    assert_eq!(limited as usize, 2 * PER_WORKER - SHARED_LIMIT as usize);
}
