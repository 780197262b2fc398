//! The dashboard page in a real browser: headless Chromium loads it from the admin router on
//! a loopback port (the token in the URL fragment), and the numbers it renders must be those
//! of `Cache::stats()`.
//!
//! `scripts/test.sh` installs Chromium (Debian package `chromium`) when it is missing; where
//! no Chromium can be found (`CHROMIUM` names one explicitly) the test says so on stderr and
//! passes without checking anything. `CACHETTE_DASHBOARD_SCREENSHOT=$PWD/docs/dashboard.png` (an absolute path; relative ones are
//! relative to `tests/`) also
//! saves a screenshot of the page there.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cachette::admin::AdminRouter;
use cachette::{Cache, StatsSnapshot, cached};
use support::RedisServer;
use support::http::serve;

const TOKEN: &str = "dashboard-test-token-0123456789";
/// How long the browser may take to show the numbers, all attempts together.
const DEADLINE: Duration = Duration::from_secs(45);

#[cached(key = "appointments:{day}", ttl = "5m", cache = cache, skip = [cache])]
async fn appointments(cache: &Cache, day: u32) -> Result<Vec<u32>, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    Ok(vec![day; 3])
}

#[cached(key = "doctor:{id}", ttl = "5m", cache = cache, skip = [cache])]
async fn doctor(cache: &Cache, id: u64) -> Result<String, std::io::Error> {
    Ok(format!("dr {id}"))
}

/// A Chromium to run: `$CHROMIUM`, or the first of the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Runs headless Chromium on `url` with `args`; its stdout. Bounded: a browser that hangs is
/// killed and reported.
async fn run_chromium(browser: &Path, profile: &Path, url: &str, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
        "--window-size=1280,720",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within 30 s", browser.display()))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    assert!(
        out.status.success(),
        "{} failed ({}): {}",
        browser.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text and `data-value` of the element whose opening tag holds `marker`, within `html`.
fn element(html: &str, marker: &str) -> Option<(String, String)> {
    let at = html.find(marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let value = tag
        .split_once("data-value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_owned())
        .unwrap_or_default();
    let text_end = tag_end + 1 + html[tag_end + 1..].find('<')?;
    let text = html[tag_end + 1..text_end].replace("&nbsp;", " ");
    Some((text, value))
}

/// The row of `function` in the functions table.
fn row<'a>(html: &'a str, function: &str) -> Option<&'a str> {
    let at = html.find(&format!("data-function=\"{function}\""))?;
    let end = at + html[at..].find("</tr>")?;
    Some(&html[at..end])
}

fn field(row: &str, name: &str) -> (String, String) {
    element(row, &format!("data-field=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name} in {row}"))
}

fn ratio(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

fn us(d: Duration) -> String {
    d.as_micros().to_string()
}

/// Checks one function's row against its statistics.
fn check_row(html: &str, function: &str, s: &StatsSnapshot) {
    let row = row(html, function).unwrap_or_else(|| panic!("no row for {function}"));
    for (name, n) in [
        ("hits", s.hits),
        ("l1_hits", s.l1_hits),
        ("misses", s.misses),
        ("stale_hits", s.stale_hits),
        ("fail_safe_hits", s.fail_safe_hits),
        ("loads", s.loads),
        ("errors", s.errors),
    ] {
        let (text, value) = field(row, name);
        assert_eq!(text, n.to_string(), "{function} {name} rendered");
        assert_eq!(value, n.to_string(), "{function} {name}");
    }
    let (text, value) = field(row, "hit_ratio");
    assert_eq!(text, ratio(s.hit_ratio), "{function} hit ratio rendered");
    assert_eq!(value.parse::<f64>().unwrap(), s.hit_ratio);
    for (name, d) in [
        ("p50_lookup", s.p50_lookup),
        ("p99_lookup", s.p99_lookup),
        ("p50_load", s.p50_load),
        ("p99_load", s.p99_load),
    ] {
        let (text, value) = field(row, name);
        assert_eq!(value, us(d), "{function} {name}");
        let unit = ["µs", "ms", " s"].iter().any(|u| text.ends_with(u));
        assert!(unit, "{function} {name} rendered with a unit: {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_the_numbers_of_stats() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the_dashboard_renders_the_numbers_of_stats: no Chromium found (set CHROMIUM, \
             or install it: `apt-get install -y chromium`; scripts/test.sh does)"
        );
        return;
    };
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("dash")
        .build()
        .unwrap();
    // appointments: 3 hits of 4 lookups; doctor: 1 hit of 2.
    for day in [1, 1, 1, 1] {
        appointments(&cache, day).await.unwrap();
    }
    for id in [7, 7] {
        doctor(&cache, id).await.unwrap();
    }
    let addr = serve(
        AdminRouter::new(cache.clone())
            .token("ops", TOKEN)
            .build()
            .unwrap(),
    )
    .await;
    let url = format!("http://{addr}/cache/dashboard#token={TOKEN}");
    let profile = std::env::temp_dir().join(format!("cachette-chromium-{}", uuid::Uuid::new_v4()));

    // The page fetches its numbers after it loads: ask again until they are there.
    let started = Instant::now();
    let html = loop {
        let html = run_chromium(&browser, &profile, &url, &["--dump-dom"]).await;
        if html.contains("data-state=\"ready\"") && html.contains("data-function=") {
            break html;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the dashboard showed no numbers within {DEADLINE:?}; last page:\n{html}"
        );
    };

    let stats = cache.stats();
    let total = &stats.total;
    assert_eq!((total.hits, total.misses), (4, 2));
    for (id, n) in [
        ("total-hits", total.hits),
        ("total-misses", total.misses),
        ("total-loads", total.loads),
        ("total-errors", total.errors),
    ] {
        let (text, value) = element(&html, &format!("id=\"{id}\"")).unwrap();
        assert_eq!(text, n.to_string(), "{id}");
        assert_eq!(value, n.to_string(), "{id}");
    }
    let (text, _) = element(&html, "id=\"total-hit-ratio\"").unwrap();
    assert_eq!(text, ratio(total.hit_ratio));
    assert_eq!(text, "66.7 %");
    let (_, value) = element(&html, "id=\"total-lookup\"").unwrap();
    assert_eq!(
        value,
        format!("{}/{}", us(total.p50_lookup), us(total.p99_lookup))
    );
    let (_, value) = element(&html, "id=\"total-load\"").unwrap();
    assert_eq!(
        value,
        format!("{}/{}", us(total.p50_load), us(total.p99_load))
    );
    assert_eq!(element(&html, "id=\"breaker\"").unwrap().0, "closed");
    assert_eq!(element(&html, "id=\"pending\"").unwrap().0, "0");
    assert_eq!(element(&html, "id=\"phi-functions\"").unwrap().0, "0");

    let by_name = |f: &str| {
        stats
            .per_function
            .iter()
            .find(|(p, _)| p == f)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("no statistics for {f}"))
    };
    let a = by_name("dashboard_browser::appointments");
    assert_eq!((a.hits, a.misses, a.loads), (3, 1, 1));
    check_row(&html, "dashboard_browser::appointments", &a);
    assert_eq!(
        field(
            row(&html, "dashboard_browser::appointments").unwrap(),
            "hit_ratio"
        )
        .0,
        "75.0 %"
    );
    check_row(
        &html,
        "dashboard_browser::doctor",
        &by_name("dashboard_browser::doctor"),
    );

    if let Some(path) = std::env::var_os("CACHETTE_DASHBOARD_SCREENSHOT") {
        let path = std::path::absolute(PathBuf::from(path)).unwrap();
        let shot = format!("--screenshot={}", path.display());
        run_chromium(&browser, &profile, &url, &[&shot]).await;
        assert!(path.is_file(), "no screenshot at {}", path.display());
    }
    let _ = std::fs::remove_dir_all(&profile);
}
