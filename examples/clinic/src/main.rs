//! A clinic service: patient, appointment and doctor endpoints cached with cachette's
//! healthcare rules. `cargo run -p clinic`
//!
//! Runs on the embedded in-process cache by default, or on Redis with `REDIS_URL`. Protected
//! values need keys: set `CACHE_ENCRYPTION_KEYS` and `CACHE_HASH_KEY` (see the README); without
//! them this example makes throwaway keys for the run, as a real service never should.
//!
//! A clinic's schedule is public directory data: its route caches whole HTTP responses with
//! `CacheLayer` (`X-Cache`, `Age`, `ETag`), inside the rate limit every route has.
//!
//! By default the example calls its own endpoints and prints what happened; with `--serve` it
//! listens on 127.0.0.1:3000 instead, limiting each client IP to 100 requests a minute.
//!
//! Either way it first warms the doctor directory (with a progress bar), records metrics
//! through a Prometheus recorder (`GET /metrics`), and mounts the admin router
//! (`/cache/...`, the dashboard at `/cache/dashboard`): behind the token in
//! `CACHE_ADMIN_TOKEN`, or for loopback requests only when it is not set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cachette::admin::AdminRouter;
use cachette::healthcare::{
    Healthcare, HmacIdHasher, Keyring, invalidate_patient_cache, patient_cache, with_actor,
};
use cachette::http::{CacheLayer, RateLimitLayer};
use cachette::{Cache, CacheBuilder, Warmer, Warmers, cached, invalidate};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

#[derive(Clone, Serialize, Deserialize)]
struct Patient {
    id: String,
    name: String,
    allergies: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Doctor {
    id: u64,
    name: String,
    specialty: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Appointment {
    id: String,
    patient_id: String,
    doctor_id: u64,
    at: String,
}

/// The "database": counts its queries so the example can show what the cache saved.
#[derive(Clone, Default)]
struct Db {
    queries: Arc<AtomicU32>,
}

impl Db {
    async fn query<T>(&self, value: T) -> T {
        self.queries.fetch_add(1, Relaxed);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        value
    }
}

struct NotFound;

impl IntoResponse for NotFound {
    fn into_response(self) -> Response {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// Patient records: protected health information. Sealed at rest, the patient id hashed in
/// the key, audited, at most 2 hours (sensitive).
#[patient_cache(key = "patient:{patient_id}:profile", ttl = "30m", tags = ["patients"], patient = "patient_id", skip = [db])]
async fn get_patient(
    State(db): State<Db>,
    Path(patient_id): Path<String>,
) -> Result<Json<Patient>, NotFound> {
    if patient_id.is_empty() {
        return Err(NotFound);
    }
    let p = Patient {
        id: patient_id.clone(),
        name: "Zebulon Quartermaine".into(),
        allergies: vec!["penicillin".into()],
    };
    Ok(Json(db.query(p).await))
}

/// Emergency data: never served stale, at most 5 minutes.
#[patient_cache(key = "patient:{patient_id}:emergency", ttl = "5m", emergency = true, patient = "patient_id", skip = [db])]
async fn get_emergency(
    State(db): State<Db>,
    Path(patient_id): Path<String>,
) -> Result<Json<Vec<String>>, NotFound> {
    Ok(Json(
        db.query(vec![
            format!("blood type of {patient_id}: O-"),
            "DNR: no".into(),
        ])
        .await,
    ))
}

#[invalidate_patient_cache(patterns = ["patient:{patient_id}:*"], patient = "patient_id")]
async fn update_patient(
    State(db): State<Db>,
    Path(patient_id): Path<String>,
) -> Result<StatusCode, NotFound> {
    db.query(()).await;
    let _ = patient_id;
    Ok(StatusCode::NO_CONTENT)
}

/// Doctor profiles are directory data: plain caching, stale-while-revalidate.
#[cached(key = "doctor:{id}", ttl = "2h", stale = "30m", tags = ["doctors"], skip = [db])]
async fn get_doctor(State(db): State<Db>, Path(id): Path<u64>) -> Result<Json<Doctor>, NotFound> {
    Ok(Json(
        db.query(Doctor {
            id,
            name: format!("Dr. No. {id}"),
            specialty: "cardiology".into(),
        })
        .await,
    ))
}

#[invalidate(keys = ["doctor:{id}"], tags = ["doctors"])]
async fn update_doctor(State(db): State<Db>, Path(id): Path<u64>) -> Result<StatusCode, NotFound> {
    db.query(()).await;
    let _ = id;
    Ok(StatusCode::NO_CONTENT)
}

/// Appointments name a patient: protected.
#[patient_cache(key = "appointment:{appointment_id}", ttl = "30m", patient = "appointment_id", skip = [db])]
async fn get_appointment(
    State(db): State<Db>,
    Path(appointment_id): Path<String>,
) -> Result<Json<Appointment>, NotFound> {
    let a = Appointment {
        id: appointment_id.clone(),
        patient_id: "MRN-0042".into(),
        doctor_id: 7,
        at: "2026-11-23T09:30".into(),
    };
    Ok(Json(db.query(a).await))
}

/// A clinic's opening hours: public, the same for everyone. The handler knows nothing of the
/// cache; `CacheLayer` on its route caches the whole response.
async fn get_schedule(State(db): State<Db>, Path(clinic_id): Path<u32>) -> Json<Vec<String>> {
    Json(
        db.query(vec![
            format!("clinic {clinic_id}: Mon-Fri 08:00-18:00"),
            "Sat 09:00-12:00".into(),
        ])
        .await,
    )
}

/// Changes a clinic's hours; its cached schedule responses carry the tag `clinic:{id}`.
#[invalidate(tags = ["clinic:{clinic_id}"])]
async fn update_schedule(
    State(db): State<Db>,
    Path(clinic_id): Path<u32>,
) -> Result<StatusCode, NotFound> {
    db.query(()).await;
    let _ = clinic_id;
    Ok(StatusCode::NO_CONTENT)
}

/// The schedule route's response cache: fresh 5 minutes, then served stale for up to one more
/// while one request refreshes it; tagged `clinic:{id}` for `update_schedule`.
fn schedule_cache(cache: Cache) -> CacheLayer {
    CacheLayer::new(cache)
        .name("schedule")
        .ttl(Duration::from_secs(300))
        .stale_while_revalidate(Duration::from_secs(60))
        .tags_from(|req| {
            // `/clinics/{id}/schedule`: only ids the route accepts make a tag.
            let id = req
                .uri
                .path()
                .split('/')
                .nth(2)
                .and_then(|id| id.parse::<u32>().ok());
            id.map(|id| format!("clinic:{id}")).into_iter().collect()
        })
}

fn router(db: Db, cache: Cache) -> Router {
    Router::new()
        .route(
            "/clinics/{clinic_id}/schedule",
            get(get_schedule).layer(schedule_cache(cache)),
        )
        .route(
            "/clinics/{clinic_id}/schedule/update",
            post(update_schedule),
        )
        .route("/patients/{patient_id}", get(get_patient))
        .route("/patients/{patient_id}/emergency", get(get_emergency))
        .route("/patients/{patient_id}/update", post(update_patient))
        .route("/doctors/{id}", get(get_doctor))
        .route("/doctors/{id}/update", post(update_doctor))
        .route("/appointments/{appointment_id}", get(get_appointment))
        .with_state(db)
}

/// The doctor directory, warmed at startup (and by `POST /cache/warm`), 4 doctors at a time,
/// with a progress bar on stderr.
fn warmers(db: Db) -> Warmers {
    Warmers::new()
        .concurrency(4)
        .warmer(Warmer::each("doctors", 1..=12u64, move |_: Cache, id| {
            let db = db.clone();
            async move {
                get_doctor(State(db), Path(id))
                    .await
                    .map(drop)
                    .map_err(|_| format!("doctor {id} not found"))
            }
        }))
        .on_progress(|p| {
            let width = 30;
            let filled = (p.done * width / p.total.max(1)) as usize;
            eprint!(
                "\rwarming [{}{}] {}/{} ({} failed)",
                "#".repeat(filled),
                "-".repeat(width as usize - filled),
                p.done,
                p.total,
                p.failed
            );
            if p.done == p.total {
                eprintln!();
            }
        })
}

/// The admin router: behind `CACHE_ADMIN_TOKEN`, or loopback-only without one.
fn admin(cache: Cache) -> Result<Router, cachette::admin::AdminError> {
    let admin = AdminRouter::new(cache);
    match std::env::var("CACHE_ADMIN_TOKEN") {
        Ok(token) => admin.token("ops", token).build(),
        Err(_) => admin.loopback_only().build(),
    }
}

/// `GET /metrics`: every metric in the Prometheus text format, for a scraper.
fn metrics_route(handle: PrometheusHandle) -> Router {
    Router::new().route("/metrics", get(move || async move { handle.render() }))
}

/// Throwaway keys when none are configured, as a real service never should.
fn with_throwaway_keys(builder: CacheBuilder) -> CacheBuilder {
    if std::env::var_os("CACHE_ENCRYPTION_KEYS").is_some() {
        return builder;
    }
    println!("(no CACHE_ENCRYPTION_KEYS / CACHE_HASH_KEY: using throwaway keys for this run)");
    let mut key = [0u8; 32];
    let mut hash_key = [0u8; 32];
    for (i, b) in key.iter_mut().chain(hash_key.iter_mut()).enumerate() {
        *b = (std::process::id() as u8)
            .wrapping_mul(31)
            .wrapping_add(i as u8);
    }
    builder
        .sealer(Arc::new(
            Keyring::new([("demo".to_string(), key)]).expect("a 32-byte key"),
        ))
        .id_hasher(Arc::new(
            HmacIdHasher::new(&hash_key).expect("a 32-byte key"),
        ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The recorder first: metric handles are registered on first use.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    // The cache from the environment (REDIS_URL, CACHE_PREFIX, the healthcare keys, ...); a
    // variable of the wrong form stops the program here, naming it.
    // Its warmers are registered with it, and run below before the service takes traffic.
    let db = Db::default();
    let cache = cachette::init_with(|b| with_throwaway_keys(b).warmers(warmers(db.clone())))?;
    println!("cache: {}", cache.health().await);
    // 100 requests a minute per client IP (`429` past it), shared by every instance of the
    // service on the same Redis.
    let limit = RateLimitLayer::new(cache.clone(), 100, Duration::from_secs(60))?.name("clinic");
    let report = cache.warm().await;
    println!(
        "warmed {} keys ({} failed) in {:?}",
        report.warmed,
        report.failed,
        report.took()
    );
    cachette::metrics::spawn_gauge_sampler(cache.clone(), Duration::from_secs(10));
    // The rate limit covers the service's routes, not the operators' (nor the scraper's).
    let app = router(db.clone(), cache.clone())
        .layer(limit)
        .merge(admin(cache.clone())?)
        .merge(metrics_route(prometheus.clone()));

    if std::env::args().any(|a| a == "--serve") {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
        println!("listening on http://127.0.0.1:3000 (try /patients/MRN-0042 or /doctors/7)");
        println!("dashboard: http://127.0.0.1:3000/cache/dashboard, metrics: /metrics");
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await?;
        return Ok(());
    }

    let calls = [
        ("GET", "/patients/MRN-0042"),
        ("GET", "/patients/MRN-0042"),
        ("GET", "/patients/MRN-0042/emergency"),
        ("GET", "/doctors/7"),
        ("GET", "/doctors/7"),
        ("GET", "/appointments/A-1001"),
        ("POST", "/patients/MRN-0042/update"),
        ("GET", "/patients/MRN-0042"),
        ("POST", "/doctors/7/update"),
        ("GET", "/doctors/7"),
        ("GET", "/clinics/3/schedule"),
        ("GET", "/clinics/3/schedule"),
        ("POST", "/clinics/3/schedule/update"),
        ("GET", "/clinics/3/schedule"),
    ];
    with_actor("example-nurse", async {
        for (method, uri) in calls {
            let before = db.queries.load(Relaxed);
            let started = Instant::now();
            let res = app
                .clone()
                .oneshot(
                    Request::builder()
                        .method(method)
                        .uri(uri)
                        .body(axum::body::Body::empty())?,
                )
                .await?;
            let took = started.elapsed();
            let queried = db.queries.load(Relaxed) > before;
            let what = match (method, queried) {
                ("POST", _) => "update + invalidate",
                (_, true) => "miss -> database",
                (_, false) => "hit",
            };
            // Responses cached by `CacheLayer` say how they were served.
            let x_cache = res
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .map(|v| format!("  X-Cache: {v}"))
                .unwrap_or_default();
            println!(
                "{method:4} {uri:32} {} {what:20} {took:>9.3?}{x_cache}",
                res.status().as_u16()
            );
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await?;

    let phi = Healthcare::new(cache.clone());
    let receipt = phi.clear_phi().await?;
    println!(
        "\nclear_phi removed {} protected entries (residual {})",
        receipt.removed, receipt.residual
    );
    let s = cache.stats().total;
    println!(
        "hits {} misses {} loads {} ({} database queries)",
        s.hits,
        s.misses,
        s.loads,
        db.queries.load(Relaxed)
    );
    println!("\nsome of GET /metrics:");
    for line in prometheus
        .render()
        .lines()
        .filter(|l| l.starts_with("cachette_lookups") && l.contains("get_doctor"))
    {
        println!("  {line}");
    }
    Ok(())
}
