//! What the Redis server saw: `INFO`, a `MONITOR` trace, and `redis-benchmark` runs.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cachette_benches::RedisServer;

use crate::{RB_REQUESTS, TASKS};

/// `INFO <section>` as `field -> value`.
pub(crate) fn info(server: &RedisServer, section: &str) -> BTreeMap<String, String> {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query(&mut server.conn())
        .expect("INFO");
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// `cmdstat_<name>` calls, by lower-case command name.
pub(crate) fn commandstats(server: &RedisServer) -> BTreeMap<String, u64> {
    info(server, "commandstats")
        .into_iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("cmdstat_")?.to_owned();
            let calls = v.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name, calls.parse().ok()?))
        })
        .collect()
}

pub(crate) fn keyspace_hits(server: &RedisServer) -> u64 {
    info(server, "stats")["keyspace_hits"]
        .parse()
        .expect("keyspace_hits")
}

/// What the server did while a piece of code ran.
#[derive(Default)]
pub(crate) struct Counted {
    /// `INFO commandstats` calls delta (client commands and commands run inside scripts), by
    /// command, without the INFO calls of the accounting itself.
    pub(crate) stats: BTreeMap<String, u64>,
    /// Commands clients sent, from `MONITOR`, by upper-case command name.
    pub(crate) sent: BTreeMap<String, u64>,
    /// Commands Lua scripts ran, from `MONITOR`.
    pub(crate) scripted: BTreeMap<String, u64>,
}

impl Counted {
    pub(crate) fn total_sent(&self) -> u64 {
        self.sent.values().sum()
    }
    pub(crate) fn total_stats(&self) -> u64 {
        self.stats.values().sum()
    }
}

/// `name×n` pairs, each divided by `per` (0 decimals when whole).
pub(crate) fn per_op(map: &BTreeMap<String, u64>, per: u64) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| {
            let x = *v as f64 / per as f64;
            if (x - x.round()).abs() < 1e-9 {
                format!("{k} {x:.0}")
            } else {
                format!("{k} {x:.3}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `f` while `redis-cli monitor` records every command, and takes `INFO commandstats`
/// before and after.
pub(crate) async fn count_commands<T>(
    server: &RedisServer,
    f: impl Future<Output = T>,
) -> (T, Counted) {
    let mut child = Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "monitor"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli on PATH (it comes with redis-server)");
    let stdout = child.stdout.take().expect("piped stdout");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("MONITOR started");
    let before = commandstats(server);
    let out = f.await;
    // Let the tail of the trace reach redis-cli.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = commandstats(server);
    let _ = child.kill();
    let _ = child.wait();
    let lines = reader.join().expect("the MONITOR reader");

    let mut counted = Counted::default();
    for (name, calls) in &after {
        let delta = calls - before.get(name).copied().unwrap_or(0);
        if delta > 0 && name != "info" && name != "monitor" {
            counted.stats.insert(name.clone(), delta);
        }
    }
    for line in lines {
        // `1700000000.123456 [0 127.0.0.1:50000] "GET" "key"`, or `[0 lua]` inside a script.
        let (Some(open), Some(close)) = (line.find('['), line.find(']')) else {
            continue;
        };
        let origin = &line[open + 1..close];
        let rest = &line[close + 1..];
        let Some(cmd) = rest.split('"').nth(1) else {
            continue;
        };
        let cmd = cmd.to_uppercase();
        if cmd == "INFO" || cmd == "MONITOR" {
            continue;
        }
        let map = if origin.ends_with("lua") {
            &mut counted.scripted
        } else {
            &mut counted.sent
        };
        *map.entry(cmd).or_default() += 1;
    }
    (out, counted)
}

/// `redis-benchmark -p PORT -t get -d SIZE -c 64 -n 200000 -q [-P 16]`: requests/s and p50 ms.
pub(crate) fn redis_benchmark(port: u16, size: u64, pipeline: Option<u32>) -> (f64, f64) {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args([
        "-p",
        &port.to_string(),
        "-t",
        "get",
        "-d",
        &size.to_string(),
    ])
    .args([
        "-c",
        &TASKS.to_string(),
        "-n",
        &RB_REQUESTS.to_string(),
        "-q",
    ]);
    if let Some(p) = pipeline {
        cmd.args(["-P", &p.to_string()]);
    }
    let out = cmd.output().expect("redis-benchmark on PATH");
    assert!(out.status.success(), "redis-benchmark failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .split(['\r', '\n'])
        .rfind(|l| l.contains("requests per second"))
        .unwrap_or_else(|| panic!("no result in redis-benchmark output: {text}"));
    let rps = line
        .split_once(':')
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"));
    let p50 = line
        .split_once("p50=")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(f64::NAN);
    (rps, p50)
}
