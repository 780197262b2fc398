//! `CacheLayer` over real HTTP on loopback: a cached response against the uncached handler, and
//! what the layer adds to a hit against a bare axum handler.
//!
//! Run with `cargo bench -p cachette-benches --bench http_response` (release profile). This
//! binary starts its own `redis-server` on a free loopback port (127.0.0.1:6379 is never
//! touched), serves one axum router on a loopback port from a Tokio runtime of its own (one
//! thread), and drives it from a second runtime with hyper's HTTP/1.1 client over keep-alive
//! connections (one per task). All the comparisons run in this one process, interleaved.
//!
//! Routes (every body is the same 2 KiB of JSON):
//!
//! * `/bare`: an axum handler that returns the body at once (no cache, no work).
//! * `/slow`: the same handler after a 1 ms wait (a database round trip), uncached.
//! * `/cached/redis`: `/slow` behind `CacheLayer` on Redis; always a hit while measured.
//! * `/cached/memory`: `/slow` behind `CacheLayer` on the in-process store; always a hit.
//!
//! Comparisons (A against B): cached (Redis) against `/slow`, the point of caching; cached
//! (Redis) against `/bare`, the layer's cost on a hit with its Redis read; cached (memory)
//! against `/bare`, the layer's own cost without a network read. Each pair runs `REPS` times,
//! `RUN` per side, alternating which side goes first: one task (p50, p99, requests/s) and
//! `TASKS` tasks (requests/s). Every answer is checked (status, body length), and the handler
//! runs behind the cached routes are counted: none while measuring.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use cachette::Cache;
use cachette::http::CacheLayer;
use cachette_benches::RedisServer;
use cachette_benches::ab::{Metric, SeqRun, Side, run_concurrent, run_sequential};
use cachette_benches::table::{cell, ops_cell};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Repetitions of each A/B pair.
const REPS: usize = 5;
/// How long each side runs per repetition.
const RUN: Duration = Duration::from_secs(1);
/// Unmeasured warm-up of each side before a comparison.
const WARMUP: Duration = Duration::from_millis(300);
/// Concurrent tasks (and connections) of the throughput rows.
const TASKS: usize = 32;
/// The slow handler's wait.
const WORK: Duration = Duration::from_millis(1);
/// Bytes of the response body.
const BODY: usize = 2048;

/// Runs of the handler behind the cached routes.
static CACHED_RUNS: AtomicU64 = AtomicU64::new(0);

/// A JSON array of `BODY` bytes.
fn body() -> Bytes {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < BODY - 16 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{{\"id\":{i}}}"));
        i += 1;
    }
    s.push(']');
    while s.len() < BODY {
        s.insert(1, ' ');
    }
    Bytes::from(s)
}

fn router(redis: Cache, memory: Cache) -> Router {
    let payload = body();
    let json = || [(header::CONTENT_TYPE, "application/json")];
    let bare = {
        let p = payload.clone();
        move || {
            let p = p.clone();
            async move { (json(), p) }
        }
    };
    let slow = {
        let p = payload.clone();
        move || {
            let p = p.clone();
            async move {
                tokio::time::sleep(WORK).await;
                (json(), p)
            }
        }
    };
    let counted = move || {
        let p = payload.clone();
        async move {
            CACHED_RUNS.fetch_add(1, Relaxed);
            tokio::time::sleep(WORK).await;
            (json(), p)
        }
    };
    let hour = Duration::from_secs(3600);
    Router::new()
        .route("/bare", get(bare))
        .route("/slow", get(slow))
        .route(
            "/cached/redis",
            get(counted.clone()).layer(CacheLayer::new(redis).name("bench").ttl(hour)),
        )
        .route(
            "/cached/memory",
            get(counted).layer(CacheLayer::new(memory).name("bench").ttl(hour)),
        )
}

/// Serves `router` on a loopback port from a one-thread runtime of its own.
fn serve(router: Router) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .expect("a loopback port");
            tx.send(listener.local_addr().expect("its address"))
                .expect("the address is awaited");
            axum::serve(listener, router).await.expect("the server");
        });
    });
    rx.recv().expect("the server's address")
}

/// `GET path` over one keep-alive connection per clone, opened on first use.
struct Client {
    addr: SocketAddr,
    path: &'static str,
    conn: Option<SendRequest<Empty<Bytes>>>,
}

impl Clone for Client {
    fn clone(&self) -> Self {
        Client {
            addr: self.addr,
            path: self.path,
            conn: None,
        }
    }
}

impl Client {
    fn new(addr: SocketAddr, path: &'static str) -> Client {
        Client {
            addr,
            path,
            conn: None,
        }
    }

    /// One request; the `X-Cache` it was answered with.
    async fn get(&mut self) -> Option<String> {
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            self.conn = Some(sender);
        }
        let sender = self.conn.as_mut().expect("connected");
        sender.ready().await.expect("the connection is ready");
        let req = Request::get(self.path)
            .header(header::HOST, "bench")
            .body(Empty::new())
            .expect("a request");
        let res = sender.send_request(req).await.expect("an answer");
        assert_eq!(res.status(), StatusCode::OK);
        let x_cache = res
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let body = res
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        assert_eq!(body.len(), BODY);
        x_cache
    }
}

impl Side for Client {
    async fn call(&mut self) {
        std::hint::black_box(self.get().await);
    }
}

fn main() {
    let server = RedisServer::start();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the client runtime");
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let workers = client_rt.metrics().num_workers();

    client_rt.block_on(async {
        let redis = Cache::builder()
            .redis(server.url())
            .build()
            .expect("the Redis cache");
        let memory = Cache::builder().build().expect("the memory cache");
        let addr = serve(router(redis, memory));

        // Fill both caches and check that what follows are hits.
        for path in ["/cached/redis", "/cached/memory"] {
            let mut c = Client::new(addr, path);
            assert_eq!(c.get().await.as_deref(), Some("miss"), "{path}");
            assert_eq!(c.get().await.as_deref(), Some("hit"), "{path}");
        }
        let keys: u64 = redis::cmd("DBSIZE")
            .query(&mut server.conn())
            .expect("DBSIZE");
        let stored: Vec<String> = redis::cmd("KEYS")
            .arg("http:*")
            .query(&mut server.conn())
            .expect("KEYS on the bench server");
        notes.push(format!(
            "Redis holds {keys} key(s) after filling; the response is under `{}` (status, \
             headers, the {BODY} B body, times; deflated when that shrinks it, the cache's \
             default above 1 KiB)",
            stored.join(", ")
        ));
        let before = CACHED_RUNS.load(Relaxed);

        let pairs = [
            (
                "`CacheLayer` hit, Redis",
                "/cached/redis",
                "uncached handler (1 ms of work)",
                "/slow",
            ),
            (
                "`CacheLayer` hit, Redis",
                "/cached/redis",
                "bare axum handler",
                "/bare",
            ),
            (
                "`CacheLayer` hit, memory",
                "/cached/memory",
                "bare axum handler",
                "/bare",
            ),
        ];
        for (name_a, path_a, name_b, path_b) in pairs {
            let a = Client::new(addr, path_a);
            let b = Client::new(addr, path_b);
            run_sequential(&a, WARMUP).await;
            run_sequential(&b, WARMUP).await;
            let (mut sa, mut sb): (Vec<SeqRun>, Vec<SeqRun>) = (Vec::new(), Vec::new());
            for rep in 0..REPS {
                if rep % 2 == 0 {
                    sa.push(run_sequential(&a, RUN).await);
                    sb.push(run_sequential(&b, RUN).await);
                } else {
                    sb.push(run_sequential(&b, RUN).await);
                    sa.push(run_sequential(&a, RUN).await);
                }
            }
            for metric in [Metric::P50, Metric::P99, Metric::Ops] {
                let [ca, cb, ratio] = metric.cells(&sa, &sb);
                rows.push(format!(
                    "| {name_a} | {name_b} | 1 | {} | {ca} | {cb} | {ratio} |",
                    metric.name()
                ));
            }
            run_concurrent(&a, TASKS, WARMUP).await;
            run_concurrent(&b, TASKS, WARMUP).await;
            let (mut ca, mut cb) = (Vec::new(), Vec::new());
            for rep in 0..REPS {
                if rep % 2 == 0 {
                    ca.push(run_concurrent(&a, TASKS, RUN).await);
                    cb.push(run_concurrent(&b, TASKS, RUN).await);
                } else {
                    cb.push(run_concurrent(&b, TASKS, RUN).await);
                    ca.push(run_concurrent(&a, TASKS, RUN).await);
                }
            }
            let r: Vec<f64> = ca.iter().zip(&cb).map(|(a, b)| a / b).collect();
            rows.push(format!(
                "| {name_a} | {name_b} | {TASKS} | requests/s | {} | {} | {} |",
                ops_cell(&ca),
                ops_cell(&cb),
                cell(&r, 2)
            ));
        }
        let runs = CACHED_RUNS.load(Relaxed) - before;
        assert_eq!(runs, 0, "every cached request was a hit");
        notes.push(format!(
            "Handler runs behind the cached routes while measuring: {runs} (checked)."
        ));
    });

    println!("# http_response: `CacheLayer` over loopback HTTP\n");
    println!(
        "redis-server on 127.0.0.1:{}; the axum server on a one-thread Tokio runtime, the hyper \
         HTTP/1.1 clients on a {workers}-worker runtime in the same process, keep-alive \
         connections (one per task); {REPS} repetitions × {} s per side, alternating which side \
         runs first; {TASKS} tasks in the concurrent rows; every body {BODY} B of JSON.\n",
        server.port(),
        RUN.as_secs()
    );
    for n in &notes {
        println!("- {n}");
    }
    println!(
        "\nCells: median (min–max) over {REPS} repetitions. A/B: the ratio within each \
         repetition pair, then median (min–max): above 1 on a requests/s row or below 1 on a \
         latency row means side A did better.\n"
    );
    println!("| A | B | concurrency | metric | A | B | A/B |");
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    println!("\ntotal run time: {:.0} s", started.elapsed().as_secs_f64());
}
