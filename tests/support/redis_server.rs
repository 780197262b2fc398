//! A hermetic `redis-server` for integration tests, after the servers redis-rs' own test suite
//! starts (`tests/support/mod.rs` there): a free loopback port, a private directory, no
//! persistence, killed and cleaned up on drop.
//!
//! Each test starts its own server, so tests run in parallel and may kill theirs (`stop`) to
//! test outages. The shared Redis on 127.0.0.1:6379 is never touched: ports come from the
//! kernel's ephemeral range.
//!
//! A missing `redis-server` is a failure whose message names the install command, never a skip.

use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a server may take to answer after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at finding a port no other process takes between our probe and the server's bind.
const PORT_ATTEMPTS: usize = 20;

const INSTALL_HINT: &str = "`redis-server` was not found on PATH; the integration tests start \
     their own servers. Install it with `sudo apt-get install -y redis-server`, or run \
     `scripts/test.sh`, which installs it and runs every test.";

/// One `redis-server` process on 127.0.0.1 with its own temporary directory.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    /// Arguments beyond the defaults, kept for restarts.
    args: Vec<String>,
    /// `None` after [`RedisServer::stop`].
    child: Option<Child>,
}

/// Why a spawned server did not become ready.
enum SpawnError {
    /// Another process holds the port; try another.
    PortTaken,
    /// There is no `redis-server` to run.
    NotInstalled,
    /// Anything else: not worth retrying.
    Fatal(String),
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed (the message says how to install it), or when no
    /// server came up within 10 s.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with more `redis-server` arguments (`["--cluster-enabled",
    /// "yes"]`); a restart passes them again.
    pub fn start_with(args: &[&str]) -> RedisServer {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let dir = std::env::temp_dir().join(format!("cachette-redis-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create test directory {}: {e}", dir.display()));
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match spawn_ready(port, &dir, &args) {
                Ok(child) => {
                    return RedisServer {
                        port,
                        dir,
                        args,
                        child: Some(child),
                    };
                }
                Err(SpawnError::PortTaken) => last = format!("port {port} was taken"),
                Err(SpawnError::NotInstalled) => {
                    let _ = fs::remove_dir_all(&dir);
                    panic!("{INSTALL_HINT}");
                }
                Err(SpawnError::Fatal(msg)) => {
                    let _ = fs::remove_dir_all(&dir);
                    panic!("{msg}");
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!("could not start redis-server after {PORT_ATTEMPTS} attempts: {last}");
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client for this server.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("the test server's URL is valid")
    }

    /// A synchronous connection, for assertions on what the cache wrote.
    ///
    /// # Panics
    ///
    /// When the server does not accept the connection (for example after [`stop`](Self::stop)).
    pub fn conn(&self) -> redis::Connection {
        let conn = self
            .client()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("cannot connect to the test server on {}: {e}", self.url()));
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        conn.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("set write timeout");
        conn
    }

    /// Whether the server process is running (it was not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers, as with a
    /// stalled host. [`resume`](Self::resume) continues it with its data intact.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Continues a [paused](Self::pause) server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("the server is running").id();
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {pid} failed");
    }

    /// Kills the server (SIGKILL, as in a crash) and waits for it to exit. It stays down until
    /// [`restart`](Self::restart). Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (with an empty data set: nothing is persisted)
    /// and waits until it answers. Restarts a running server too.
    ///
    /// # Panics
    ///
    /// When the port was taken by another process meanwhile, or the server does not come up.
    pub fn restart(&mut self) {
        self.stop();
        // The port was ours until the kill; give the kernel a moment if it is still closing.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match spawn_ready(self.port, &self.dir, &self.args) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(SpawnError::PortTaken) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(50));
                }
                Err(SpawnError::PortTaken) => {
                    panic!(
                        "cannot restart redis-server: port {} was taken meanwhile",
                        self.port
                    )
                }
                Err(SpawnError::NotInstalled) => panic!("{INSTALL_HINT}"),
                Err(SpawnError::Fatal(msg)) => panic!("{msg}"),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A port the kernel considers free now. Another process may take it before the server binds;
/// [`spawn_ready`] detects that and the caller tries another.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local address of a bound socket")
        .port()
}

/// Spawns `redis-server` on `port` and waits until this very process answers.
fn spawn_ready(port: u16, dir: &Path, args: &[String]) -> Result<Child, SpawnError> {
    let log_path = dir.join(format!("redis-{port}.log"));
    let log = File::create(&log_path)
        .map_err(|e| SpawnError::Fatal(format!("cannot create {}: {e}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(|e| SpawnError::Fatal(e.to_string()))?;
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SpawnError::NotInstalled),
        Err(e) => return Err(SpawnError::Fatal(format!("cannot spawn redis-server: {e}"))),
    };

    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .map_err(|e| SpawnError::Fatal(e.to_string()))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains("Address already in use") {
                return Err(SpawnError::PortTaken);
            }
            return Err(SpawnError::Fatal(format!(
                "redis-server on port {port} exited with {status} before answering; its log:\n{log}"
            )));
        }
        match server_pid(&client) {
            // This process answered: ready.
            Some(pid) if pid == child.id() => return Ok(child),
            // Another test's server answered on this port: ours will fail to bind.
            Some(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SpawnError::PortTaken);
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(SpawnError::Fatal(format!(
                    "redis-server on port {port} did not answer within {READY_TIMEOUT:?}; its log:\n{log}"
                )));
            }
            None => sleep(Duration::from_millis(10)),
        }
    }
}

/// The `process_id` the server on `client`'s port reports, if one answers.
fn server_pid(client: &redis::Client) -> Option<u32> {
    let mut conn = client
        .get_connection_with_timeout(Duration::from_millis(250))
        .ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut conn).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
}
