//! Configuration mistakes are loud: a global cache built from a wrong environment caches
//! nothing and says why (in `health()`, in one `error` event, and once on stderr when no
//! `tracing` subscriber is installed), an unreachable Redis is told once, and `init_from_env`
//! returns the mistake instead.
//!
//! The global cache, the environment and "told once" belong to a process, so each case runs
//! in a child: this test binary again, running only `child`, which reports on stdout.

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cachette::{Cache, LoadOptions, cached};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "square:{n}", ttl = "1m")]
async fn square(n: u64) -> u64 {
    LOADS.fetch_add(1, SeqCst);
    n * n
}

/// The child: does nothing unless a parent test started it with `CACHETTE_CONFIG_CASE`.
#[test]
fn child() {
    let Ok(case) = std::env::var("CACHETTE_CONFIG_CASE") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match case.as_str() {
            "global" => call_the_global_cache().await,
            "global_with_subscriber" => {
                let errors = Arc::new(AtomicU32::new(0));
                tracing::subscriber::set_global_default(CountErrors(errors.clone())).unwrap();
                call_the_global_cache().await;
                println!("CHILD error_events={}", errors.load(SeqCst));
            }
            "unreachable" => {
                let url = std::env::var("CACHETTE_UNREACHABLE").unwrap();
                for i in 0..2 {
                    let cache = Cache::builder().redis(&url).build().unwrap();
                    for n in 0..3u64 {
                        let o = LoadOptions::ttl(Duration::from_secs(60));
                        let v: Result<u64, std::io::Error> =
                            cache.get_or_load("k", &o, || async { Ok(n) }).await;
                        assert_eq!(v.unwrap(), n);
                    }
                    println!("CHILD health{i}={}", cache.health().await);
                }
                call_the_global_cache().await;
            }
            "init" => {
                match cachette::init_from_env() {
                    Ok(cache) => println!("CHILD init=ok {}", cache.health().await),
                    Err(e) => println!("CHILD init=error {e}"),
                }
                match cachette::init_from_env() {
                    Ok(_) => println!("CHILD again=ok"),
                    Err(e) => println!("CHILD again=error {e}"),
                }
            }
            other => panic!("unknown case {other}"),
        }
    });
}

/// Three calls of one key: one load when the cache works, three when it is off.
async fn call_the_global_cache() {
    for _ in 0..3 {
        assert_eq!(square(3).await, 9);
    }
    println!("CHILD loads={}", LOADS.load(SeqCst));
    println!("CHILD health={}", cachette::global().health().await);
}

/// Counts `error` events of the `cachette` target; a subscriber that is present is all the
/// cases need.
struct CountErrors(Arc<AtomicU32>);

impl tracing::Subscriber for CountErrors {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::ERROR && meta.target() == "cachette" {
            self.0.fetch_add(1, SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// What a child said: its `CHILD name=value` lines, and its lines on stderr from cachette.
struct Said {
    stdout: String,
    notices: Vec<String>,
}

impl Said {
    fn value(&self, name: &str) -> &str {
        let marker = format!("CHILD {name}=");
        self.stdout
            .lines()
            .find_map(|l| l.find(&marker).map(|at| &l[at + marker.len()..]))
            .unwrap_or_else(|| panic!("the child did not say {name}: {}", self.stdout))
    }

    /// Checks that the child wrote one line to stderr, and that it says `what`.
    fn told_once(&self, what: &str) {
        assert_eq!(self.notices.len(), 1, "{:?}", self.notices);
        assert!(self.notices[0].contains(what), "{:?}", self.notices);
    }
}

/// Runs the child for `case` in an environment of `vars` only (the developer's own
/// `REDIS_URL` must not leak in).
fn run(case: &str, vars: &[(&str, &str)]) -> Said {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env("CACHETTE_CONFIG_CASE", case)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let notices = stderr
        .lines()
        .filter(|l| l.starts_with("cachette:"))
        .map(str::to_owned)
        .collect();
    Said { stdout, notices }
}

/// A loopback URL where nothing listens: the port of a socket bound and closed again.
fn unreachable_url() -> String {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("redis://127.0.0.1:{port}/")
}

#[test]
fn a_bad_variable_turns_the_global_cache_off_and_says_so_once() {
    let said = run("global", &[("CACHE_DEFAULT_TTL", "abc")]);
    assert_eq!(said.value("loads"), "3", "the calls ran uncached");
    assert_eq!(
        said.value("health"),
        "store none, no prefix: disabled: CACHE_DEFAULT_TTL=\"abc\" is not a number of seconds"
    );
    said.told_once("CACHE_DEFAULT_TTL=\"abc\" is not a number of seconds");
}

#[test]
fn with_a_subscriber_the_mistake_is_one_error_event_and_nothing_on_stderr() {
    let said = run("global_with_subscriber", &[("CACHE_DEFAULT_TTL", "abc")]);
    assert_eq!(said.value("error_events"), "1");
    assert!(said.value("health").contains("disabled: CACHE_DEFAULT_TTL"));
    assert!(said.notices.is_empty(), "{:?}", said.notices);
}

#[test]
fn an_upstash_url_without_its_token_says_what_to_set() {
    let said = run("global", &[("REDIS_URL", "https://my-db.upstash.io")]);
    assert_eq!(said.value("loads"), "3");
    assert!(said.value("health").contains("set REDIS_TOKEN"));
    said.told_once("set REDIS_TOKEN");
}

#[test]
fn a_misplaced_token_is_reported_without_its_value() {
    let said = run(
        "global",
        &[
            ("REDIS_URL", "redis://:hunter2@127.0.0.1:1/"),
            ("REDIS_TOKEN", "sekrit-token"),
        ],
    );
    assert!(said.value("health").contains("REDIS_TOKEN is set"));
    said.told_once("REDIS_TOKEN is set");
    let everything = format!("{} {:?}", said.stdout, said.notices);
    assert!(
        !everything.contains("sekrit") && !everything.contains("hunter2"),
        "{everything}"
    );
}

#[test]
fn an_unreachable_redis_is_told_once_for_every_cache() {
    let url = unreachable_url();
    let said = run(
        "unreachable",
        &[("CACHETTE_UNREACHABLE", &url), ("REDIS_URL", &url)],
    );
    assert_eq!(said.value("loads"), "3", "the calls ran uncached");
    for health in ["health0", "health1", "health"] {
        assert!(
            said.value(health)
                .starts_with(&format!("store {url}, no prefix: unreachable")),
            "{}",
            said.value(health)
        );
    }
    said.told_once(&format!("the store {url} is unreachable"));
}

#[test]
fn each_cause_is_told_once() {
    let url = unreachable_url();
    let said = run(
        "unreachable",
        &[("CACHETTE_UNREACHABLE", &url), ("CACHE_DEFAULT_TTL", "abc")],
    );
    assert_eq!(said.notices.len(), 2, "{:?}", said.notices);
    assert!(
        said.notices.iter().any(|n| n.contains("is unreachable")),
        "{:?}",
        said.notices
    );
    assert!(
        said.notices.iter().any(|n| n.contains("CACHE_DEFAULT_TTL")),
        "{:?}",
        said.notices
    );
}

#[test]
fn init_from_env_returns_the_mistake_and_prints_nothing() {
    let said = run("init", &[("CACHE_DEFAULT_TTL", "abc")]);
    assert_eq!(
        said.value("init"),
        "error CACHE_DEFAULT_TTL=\"abc\" is not a number of seconds"
    );
    assert!(said.notices.is_empty(), "{:?}", said.notices);
}

#[test]
fn init_from_env_installs_the_global_cache_once() {
    let said = run("init", &[("CACHE_PREFIX", "app")]);
    assert_eq!(
        said.value("init"),
        "ok store in-process memory, prefix \"app:\": ok"
    );
    assert!(
        said.value("again").contains("already installed"),
        "{}",
        said.value("again")
    );
}
