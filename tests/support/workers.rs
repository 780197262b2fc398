//! Tests that run their own binary again as worker processes sharing one `redis-server`: a
//! worker counts itself ready and waits for the parent's go, so that all of them start
//! together, and prints one `WORKER-RESULT` line that the parent reads.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::RedisServer;

/// Starts this test binary again, running only its test `worker`, with `env` set.
pub fn spawn(env: &[(&str, String)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["worker", "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Worker side: the runtime a worker runs in (two threads, like the tests' own).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Worker side: counts this worker ready (`INCR ready`), then waits until `go` is set.
pub async fn ready_then_wait_for_go(conn: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("INCR")
        .arg("ready")
        .query_async(conn)
        .await
        .unwrap();
    loop {
        let go: Option<u8> = redis::cmd("GET").arg("go").query_async(conn).await.unwrap();
        if go.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Parent side: waits until `n` workers are ready (a failure after 30 s), then lets them go.
pub fn go_when_ready(server: &RedisServer, n: u32) {
    let mut conn = server.conn();
    let started = Instant::now();
    loop {
        let ready: Option<u32> = redis::cmd("GET").arg("ready").query(&mut conn).unwrap();
        if ready == Some(n) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {n} workers to be ready"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let _: () = redis::cmd("SET").arg("go").arg(1).query(&mut conn).unwrap();
}

/// Waits for `child` (a hang is a failure after `limit`), and returns its result line.
pub fn result_of(mut child: Child, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert!(status.success(), "worker failed: {out}");
            // libtest may print "test worker ... " on the same line.
            return out
                .lines()
                .find_map(|l| l.find("WORKER-RESULT").map(|at| l[at..].to_owned()))
                .unwrap_or_else(|| panic!("no result in {out}"));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("a worker hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
