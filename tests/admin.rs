//! The admin router over real HTTP on loopback, on a real `redis-server`: every endpoint with
//! the token, `401` without it or with a wrong one, `400` with a JSON error for bad input
//! (and nothing changed), an audit event with its actor per mutation, loopback-only routers,
//! and warming with a failing warmer.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use cachette::admin::{AdminError, AdminRouter};
use cachette::healthcare::{AuditEvent, AuditOperation, AuditSink};
use cachette::{Cache, Warmer, Warmers, cached};
use redis::Commands;
use serde_json::Value;
use support::RedisServer;
use support::http::{request, serve};

const TOKEN: &str = "s3cret-admin-token-0123456789";
const MINUTE: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Collect(Mutex<Vec<AuditEvent>>);

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Collect {
    fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().unwrap().clone()
    }
}

fn cache_on(server: &RedisServer, audit: &Arc<Collect>) -> Cache {
    cache_warmed_by(server, audit, Warmers::new())
}

fn cache_warmed_by(server: &RedisServer, audit: &Arc<Collect>, warmers: Warmers) -> Cache {
    Cache::builder()
        .redis(server.url())
        .prefix("adm")
        .audit_sink(audit.clone())
        .warmers(warmers)
        .build()
        .unwrap()
}

#[cached(key = "doctor:{id}", ttl = "5m", tags = ["doctors"], cache = cache, skip = [cache])]
async fn doctor(cache: &Cache, id: u64) -> Result<String, std::io::Error> {
    Ok(format!("dr {id}"))
}

/// Warmed by the warming test only: function counters are process-wide, and the tests of
/// this file run at once.
#[cached(key = "nurse:{id}", ttl = "5m", cache = cache, skip = [cache])]
async fn nurse(cache: &Cache, id: u64) -> Result<String, std::io::Error> {
    Ok(format!("nurse {id}"))
}

/// Serves `app` without telling it the peer's address.
async fn serve_without_peer(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One request over a new connection: the status and the body (JSON, or a string).
async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let res = request(addr, method, path, headers).await;
    let body = res.body();
    let value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    (res.status(), value)
}

const AUTH: (&str, &str) = ("authorization", "Bearer s3cret-admin-token-0123456789");

async fn admin(addr: SocketAddr, method: Method, path: &str) -> (StatusCode, Value) {
    call(addr, method, path, &[AUTH]).await
}

fn router(cache: &Cache) -> Router {
    AdminRouter::new(cache.clone())
        .token("ops", TOKEN)
        .build()
        .unwrap()
}

/// Every API route, with a method that it answers.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/cache"),
    ("GET", "/cache/health"),
    ("GET", "/cache/metrics"),
    ("GET", "/cache/debug"),
    ("GET", "/cache/registry"),
    ("DELETE", "/cache?pattern=doctor:*"),
    ("DELETE", "/cache/key?key=doctor:1"),
    ("DELETE", "/cache/tag?tag=doctors"),
    ("DELETE", "/cache/phi"),
    ("POST", "/cache/warm"),
];

fn exists(server: &RedisServer, key: &str) -> bool {
    server.conn().exists(format!("adm:{key}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_with_the_token_and_mutations_are_audited() {
    let server = RedisServer::start();
    let audit = Arc::new(Collect::default());
    let warmed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = warmed.clone();
    let warmers = Warmers::new().warmer(Warmer::each("doctors", [7u64, 8], move |c: Cache, id| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            doctor(&c, id).await.map(drop)
        }
    }));
    let cache = cache_warmed_by(&server, &audit, warmers);
    for id in [1, 2, 3, 1, 2] {
        doctor(&cache, id).await.unwrap();
    }
    cache.set("phi:p:abc", &"sealed", MINUTE).await.unwrap();
    cache.set("other:1", &1u32, MINUTE).await.unwrap();
    let addr = serve(router(&cache)).await;

    let (status, overview) = admin(addr, Method::GET, "/cache").await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    assert_eq!(overview["total"]["hits"], 2);
    assert_eq!(overview["total"]["misses"], 3);
    assert_eq!(overview["health"]["reachable"], true);
    assert_eq!(overview["warmers"], serde_json::json!(["doctors"]));

    let (status, health) = admin(addr, Method::GET, "/cache/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["breaker"], "closed");
    assert_eq!(health["prefix"], "adm:");

    let (status, metrics) = admin(addr, Method::GET, "/cache/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let f = metrics["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "admin::doctor")
        .unwrap_or_else(|| panic!("no admin::doctor in {metrics}"));
    assert_eq!(
        (f["hits"].as_u64(), f["misses"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(f["loads"], 3);
    assert!(metrics["store_memory"]["used_bytes"].as_u64().unwrap() > 0);

    let (status, debug) = admin(addr, Method::GET, "/cache/debug?pattern=doctor:*").await;
    assert_eq!(status, StatusCode::OK);
    let keys = debug["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{debug}");
    for k in keys {
        assert!(k["key"].as_str().unwrap().starts_with("doctor:"));
        let ttl = k["ttl_ms"].as_u64().unwrap();
        assert!(ttl > 0 && ttl <= 300_000, "{k}");
        assert!(k["bytes"].as_u64().unwrap() > 0);
        let fields: Vec<&String> = k.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            ["bytes", "key", "ttl_ms"],
            "names, TTLs and sizes only"
        );
    }
    assert!(
        !debug.to_string().contains("dr 1"),
        "never a value: {debug}"
    );
    let (_, limited) = admin(addr, Method::GET, "/cache/debug?pattern=*&limit=1").await;
    assert_eq!(limited["keys"].as_array().unwrap().len(), 1);
    assert_eq!(limited["truncated"], true);

    let (status, registry) = admin(addr, Method::GET, "/cache/registry").await;
    assert_eq!(status, StatusCode::OK);
    let spec = registry["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "admin::doctor")
        .unwrap();
    assert_eq!(spec["template"], "doctor:{id}");
    assert_eq!(spec["ttl_ms"], 300_000);
    assert_eq!(spec["tags"], serde_json::json!(["doctors"]));

    assert!(audit.events().is_empty(), "reads are not audited");

    // Mutations: each takes effect and leaves one audit event naming its actor.
    let (status, body) = admin(addr, Method::DELETE, "/cache/key?key=doctor:1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["existed"], true);
    assert!(doctor_reloads(&cache, 1).await);

    let (status, body) = admin(addr, Method::DELETE, "/cache/tag?tag=doctors").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        doctor_reloads(&cache, 2).await,
        "the tag's entries are dead"
    );

    let (status, body) = admin(addr, Method::DELETE, "/cache?pattern=doctor:*").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["removed"].as_u64().unwrap() >= 1, "{body}");
    assert!(!exists(&server, "doctor:3"));
    assert!(exists(&server, "other:1"), "outside the pattern");

    let (status, body) = admin(addr, Method::DELETE, "/cache/phi").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["removed"], 1);
    assert!(!exists(&server, "phi:p:abc"));
    assert!(exists(&server, "other:1"));

    let (status, report) = admin(addr, Method::POST, "/cache/warm").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["warmed"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(warmed.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert!(exists(&server, "doctor:7") && exists(&server, "doctor:8"));

    let events = audit.events();
    let seen: Vec<(&str, AuditOperation, &str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e.function.as_str(),
                e.operation,
                e.outcome,
                e.actor.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "admin::delete_key",
                AuditOperation::Invalidate,
                "ok",
                Some("admin:ops")
            ),
            (
                "admin::delete_tag",
                AuditOperation::Invalidate,
                "ok",
                Some("admin:ops")
            ),
            (
                "admin::delete_pattern",
                AuditOperation::Invalidate,
                "ok",
                Some("admin:ops")
            ),
            (
                "admin::clear_phi",
                AuditOperation::ClearPhi,
                "ok",
                Some("admin:ops")
            ),
            (
                "admin::warm",
                AuditOperation::Write,
                "ok",
                Some("admin:ops")
            ),
        ]
    );
    assert_eq!(events[3].count, Some(1));
    assert_eq!(events[4].count, Some(2));
    for e in &events {
        assert!(!e.key.contains("doctor"), "subjects are hashed: {}", e.key);
    }
}

/// Whether the next call of `doctor(id)` is a miss (its entry was invalidated).
async fn doctor_reloads(cache: &Cache, id: u64) -> bool {
    let before = cache.stats().total.misses;
    doctor(cache, id).await.unwrap();
    cache.stats().total.misses > before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_one_is_401_and_changes_nothing() {
    let server = RedisServer::start();
    let audit = Arc::new(Collect::default());
    let cache = cache_on(&server, &audit);
    cache.set("doctor:1", &"x", MINUTE).await.unwrap();
    cache.set("phi:p:1", &"x", MINUTE).await.unwrap();
    let addr = serve(router(&cache)).await;
    let wrong = [
        vec![],
        vec![("authorization", "Bearer s3cret-admin-token-012345678")],
        vec![("authorization", "Bearer s3cret-admin-token-01234567890")],
        vec![("authorization", "Bearer ")],
        vec![("authorization", "Basic czNjcmV0LWFkbWluLXRva2Vu")],
        vec![("authorization", TOKEN)],
    ];
    for (method, path) in ROUTES {
        for headers in &wrong {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let (status, body) = call(addr, method.clone(), path, headers).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {headers:?}: {body}"
            );
            assert_eq!(body["error"], "unauthorized", "{body}");
        }
    }
    assert!(exists(&server, "doctor:1") && exists(&server, "phi:p:1"));
    assert!(audit.events().is_empty());
    // The scheme is case-insensitive.
    let (status, _) = call(
        addr,
        Method::GET,
        "/cache/health",
        &[("authorization", "bearer s3cret-admin-token-0123456789")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_that_names_the_problem_and_changes_nothing() {
    let server = RedisServer::start();
    let audit = Arc::new(Collect::default());
    let cache = cache_on(&server, &audit);
    cache.set("doctor:1", &"x", MINUTE).await.unwrap();
    cache.set("phi:p:1", &"x", MINUTE).await.unwrap();
    let addr = serve(router(&cache)).await;
    let long = format!("/cache?pattern={}", "a".repeat(1025));
    let cases: &[(&str, &str, &str)] = &[
        ("DELETE", "/cache", "missing_parameter"),
        ("DELETE", "/cache?pattern=", "empty_parameter"),
        ("DELETE", &long, "parameter_too_long"),
        ("DELETE", "/cache?pattern=*", "confirm_required"),
        ("DELETE", "/cache?pattern=***", "confirm_required"),
        ("DELETE", "/cache?pattern=*&confirm=yes", "bad_confirm"),
        ("DELETE", "/cache?pattern=doctor:[1", "invalid_pattern"),
        (
            "DELETE",
            "/cache?pattern=doctor:*&pattern=x",
            "repeated_parameter",
        ),
        ("DELETE", "/cache?patern=doctor:*", "unknown_parameter"),
        ("DELETE", "/cache?pattern=doctor%0A*", "control_characters"),
        ("DELETE", "/cache/key", "missing_parameter"),
        ("DELETE", "/cache/key?key=", "empty_parameter"),
        ("DELETE", "/cache/tag?tag=doc*", "invalid_tag"),
        ("DELETE", "/cache/tag?tag=doctors\\", "invalid_tag"),
        ("DELETE", "/cache/tag?tag=", "empty_parameter"),
        ("DELETE", "/cache/phi?all=true", "unknown_parameter"),
        ("POST", "/cache/warm?x=1", "unknown_parameter"),
        ("GET", "/cache/debug?limit=0", "bad_limit"),
        ("GET", "/cache/debug?limit=lots", "bad_limit"),
        ("GET", "/cache/debug?pattern=[", "invalid_pattern"),
        ("GET", "/cache/metrics?x", "unknown_parameter"),
    ];
    for (method, path, code) in cases {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = admin(addr, method.clone(), path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
        assert_eq!(body["error"], *code, "{method} {path}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    assert!(exists(&server, "doctor:1") && exists(&server, "phi:p:1"));
    assert!(audit.events().is_empty(), "{:?}", audit.events());

    // Confirmed, `*` clears the prefix (and is audited).
    let (status, body) = admin(addr, Method::DELETE, "/cache?pattern=*&confirm=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!exists(&server, "doctor:1"));
    assert_eq!(audit.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_everything_without_a_prefix_is_refused() {
    let server = RedisServer::start();
    let cache = Cache::builder().redis(server.url()).build().unwrap();
    let mut conn = server.conn();
    let _: () = conn.set("another-program:1", "x").unwrap();
    let addr = serve(router(&cache)).await;
    let (status, body) = admin(addr, Method::DELETE, "/cache?pattern=*&confirm=true").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "no_prefix");
    assert!(body["message"].as_str().unwrap().contains("prefix"));
    let kept: bool = conn.exists("another-program:1").unwrap();
    assert!(kept);
}

#[test]
fn a_router_without_a_token_refuses_to_build_unless_loopback_only() {
    let cache = Cache::builder().build().unwrap();
    assert!(matches!(
        AdminRouter::new(cache.clone()).build(),
        Err(AdminError::NoToken)
    ));
    let err = AdminRouter::new(cache.clone())
        .token("ops", "short")
        .build()
        .unwrap_err();
    assert!(matches!(err, AdminError::WeakToken { .. }));
    assert!(err.to_string().contains("`ops`"), "{err}");
    assert!(matches!(
        AdminRouter::new(cache.clone()).token("", TOKEN).build(),
        Err(AdminError::BadTokenName { .. })
    ));
    assert!(AdminRouter::new(cache).loopback_only().build().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_only_router_needs_no_token_and_refuses_browser_mutations() {
    let server = RedisServer::start();
    let audit = Arc::new(Collect::default());
    let cache = cache_on(&server, &audit);
    cache.set("doctor:1", &"x", MINUTE).await.unwrap();
    let app = || {
        AdminRouter::new(cache.clone())
            .loopback_only()
            .build()
            .unwrap()
    };
    let addr = serve(app()).await;
    let (status, _) = call(addr, Method::GET, "/cache/health", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        addr,
        Method::DELETE,
        "/cache/key?key=doctor:1",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "cross_origin");
    assert!(exists(&server, "doctor:1"));
    let (status, _) = call(addr, Method::DELETE, "/cache/key?key=doctor:1", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache.get::<String>("doctor:1").await.unwrap(), None);
    let events = audit.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.as_deref(), Some("admin:loopback"));

    // Served without the peer's address, it cannot tell loopback from not, and refuses.
    let blind = serve_without_peer(app()).await;
    let (status, body) = call(blind, Method::GET, "/cache/health", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "no_peer_address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_page_needs_no_token_and_holds_no_data() {
    let cache = Cache::builder().build().unwrap();
    let addr = serve(router(&cache)).await;
    let (status, body) = call(addr, Method::GET, "/cache/dashboard", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let html = body.as_str().unwrap();
    assert!(html.contains("<title>cachette</title>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network access"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_reports_a_failing_warmer_and_goes_on() {
    let server = RedisServer::start();
    let audit = Arc::new(Collect::default());
    let progress = Arc::new(Mutex::new(Vec::new()));
    let seen = progress.clone();
    let warmers = Warmers::new()
        .concurrency(2)
        .warmer(Warmer::each(
            "nurses",
            1..=5u64,
            |c: Cache, id| async move { nurse(&c, id).await.map(drop) },
        ))
        .warmer(Warmer::each("flaky", 1..=3u64, |_: Cache, n| async move {
            if n == 2 {
                Err(format!("row {n} is locked"))
            } else {
                Ok(())
            }
        }))
        .warmer(Warmer::new("broken", |_: Cache| async {
            Err::<(), _>("the database is down")
        }))
        .on_progress(move |p| seen.lock().unwrap().push((p.done, p.total)));
    let cache = cache_warmed_by(&server, &audit, warmers);
    let addr = serve(router(&cache)).await;
    let (status, report) = admin(addr, Method::POST, "/cache/warm").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["warmed"], 7, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let by_name = |name: &str| {
        report["warmers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            by_name("nurses")["warmed"].as_u64(),
            by_name("nurses")["failed"].as_u64()
        ),
        (Some(5), Some(0))
    );
    assert_eq!(by_name("flaky")["failed"], 1);
    assert_eq!(by_name("flaky")["first_error"], "row 2 is locked");
    assert_eq!(by_name("broken")["first_error"], "the database is down");
    assert!(report["took_ms"].is_u64());
    for id in 1..=5 {
        assert!(exists(&server, &format!("nurse:{id}")), "nurse {id} warmed");
    }
    let progress = progress.lock().unwrap().clone();
    assert_eq!(progress.len(), 9);
    assert_eq!(progress.last(), Some(&(9, 9)));
    assert!(progress.windows(2).all(|w| w[0].0 + 1 == w[1].0));
    let events = audit.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, Some(7));

    // The same warmers at startup, without the router.
    let again = cache.warm().await;
    assert_eq!((again.warmed, again.failed), (7, 2));
}
