//! `rediss://`: a `redis-server` with a TLS port whose certificate a test CA signed (made with
//! the `openssl` CLI). A TLS connection trusting that CA works; a plain-text connection to the
//! TLS port and a TLS connection that does not trust the CA are refused, and the cached
//! function still answers (uncached).

mod support;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cachette::{Cache, CacheBuilder, LoadOptions};
use support::RedisServer;

/// A test CA and a server certificate for 127.0.0.1 that it signed, in a fresh directory.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = std::env::temp_dir().join(format!("cachette-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &["req", "-x509"],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=cachette test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            &dir,
            &["req"],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        openssl(
            &dir,
            &["x509", "-req"],
            &[],
            &[
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        Certificates { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.crt")).unwrap()
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, cmd: &[&str], key: &[&str], args: &[&str]) {
    let out = Command::new("openssl")
        .args(cmd)
        .args(key)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI makes the test certificates; install it (Debian: openssl)");
    assert!(
        out.status.success(),
        "openssl {cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server with its plain port (for the test's own checks) and a TLS port; `more` are
/// further `redis-server` arguments.
fn tls_server_with(certs: &Certificates, more: &[&str]) -> (RedisServer, u16) {
    let tls_port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls_port_arg = tls_port.to_string();
    let (cert, key, ca) = (
        certs.path("server.crt"),
        certs.path("server.key"),
        certs.path("ca.crt"),
    );
    let mut args = vec![
        "--tls-port",
        &tls_port_arg,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ];
    args.extend_from_slice(more);
    let server = RedisServer::start_with(&args);
    (server, tls_port)
}

fn tls_server(certs: &Certificates) -> (RedisServer, u16) {
    tls_server_with(certs, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_tls() {
    let certs = Certificates::make();
    // Three masters whose clients and cluster bus speak TLS only on their TLS ports (the
    // server certificate also serves as the nodes' client certificate on the bus).
    let nodes: Vec<(RedisServer, u16)> = (0..3)
        .map(|_| {
            tls_server_with(
                &certs,
                &[
                    "--tls-cluster",
                    "yes",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ],
            )
        })
        .collect();
    let mut first = nodes[0].0.conn();
    for (_, tls_port) in &nodes[1..] {
        let _: () = redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(*tls_port)
            .query(&mut first)
            .unwrap();
    }
    for (i, (server, _)) in nodes.iter().enumerate() {
        let (start, end) = (i * 5461, if i == 2 { 16383 } else { i * 5461 + 5460 });
        let _: () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(start)
            .arg(end)
            .query(&mut server.conn())
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !nodes.iter().all(|(server, _)| {
        redis::cmd("CLUSTER")
            .arg("INFO")
            .query::<String>(&mut server.conn())
            .is_ok_and(|info| info.contains("cluster_state:ok"))
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the TLS cluster did not form"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let urls: Vec<String> = nodes
        .iter()
        .map(|(_, port)| format!("rediss://127.0.0.1:{port}"))
        .collect();
    let cache = quick(
        Cache::builder()
            .redis_cluster(urls)
            .redis_tls_ca(certs.ca_pem()),
    );
    assert_eq!(two_calls(&cache).await, 1, "the second call hit");
    let items: Vec<(String, u32)> = (0..60).map(|i| (format!("b:{i}"), i)).collect();
    cache
        .set_many(&items, Duration::from_secs(60))
        .await
        .unwrap();
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    let got: Vec<Option<u32>> = cache.get_many(&keys).await.unwrap();
    assert_eq!(got, (0..60).map(Some).collect::<Vec<_>>());
    // SCAN on every master, over TLS.
    assert_eq!(cache.invalidate_pattern("b:*").await.unwrap(), 60);
    let health = cache.health().await;
    assert!(health.reachable, "{health:?}");
    assert_eq!(cache.stats().total.errors, 0);
}

fn quick(b: CacheBuilder) -> Cache {
    b.prefix("t")
        .command_timeout(Duration::from_millis(500))
        .connection_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// Two calls of a cached loader; returns how many times the loader ran.
async fn two_calls(cache: &Cache) -> u32 {
    let runs = AtomicU32::new(0);
    let o = LoadOptions::ttl(Duration::from_secs(60));
    for _ in 0..2 {
        let v = cache
            .get_or_load("k", &o, || async {
                runs.fetch_add(1, SeqCst);
                Ok::<_, String>(7u32)
            })
            .await;
        assert_eq!(
            v,
            Ok(7),
            "the function answers whatever the connection does"
        );
    }
    runs.load(SeqCst)
}

#[tokio::test]
async fn a_tls_connection_trusting_the_ca_works() {
    let certs = Certificates::make();
    let (server, tls_port) = tls_server(&certs);
    let cache = quick(
        Cache::builder()
            .redis(format!("rediss://127.0.0.1:{tls_port}"))
            .redis_tls_ca(certs.ca_pem()),
    );
    assert_eq!(two_calls(&cache).await, 1, "the second call hit");
    let health = cache.health().await;
    assert!(health.reachable, "{health:?}");
    assert_eq!(cache.stats().total.errors, 0);
    // The entry is on the server, as the plain port shows.
    let n: u32 = redis::cmd("EXISTS")
        .arg("t:k")
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn plain_text_to_the_tls_port_is_refused() {
    let certs = Certificates::make();
    let (_server, tls_port) = tls_server(&certs);
    let cache = quick(Cache::builder().redis(format!("redis://127.0.0.1:{tls_port}")));
    assert_eq!(two_calls(&cache).await, 2, "nothing was cached");
    assert!(!cache.health().await.reachable);
    assert!(cache.stats().total.errors > 0);
}

#[tokio::test]
async fn a_certificate_the_client_does_not_trust_is_refused() {
    let certs = Certificates::make();
    let (_server, tls_port) = tls_server(&certs);
    // The system's roots do not include the test CA.
    let cache = quick(Cache::builder().redis(format!("rediss://127.0.0.1:{tls_port}")));
    assert_eq!(two_calls(&cache).await, 2, "nothing was cached");
    assert!(!cache.health().await.reachable);
}

#[tokio::test]
async fn tls_from_the_environment() {
    let certs = Certificates::make();
    let (_server, tls_port) = tls_server(&certs);
    let ca = certs.path("ca.crt");
    let port = tls_port.to_string();
    let vars = [
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", port.as_str()),
        ("REDIS_TLS", "true"),
        ("CACHE_REDIS_TLS_CA_FILE", ca.as_str()),
    ];
    let builder = CacheBuilder::from_env_with(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let cache = quick(builder);
    assert_eq!(two_calls(&cache).await, 1);
    assert!(cache.health().await.reachable);
}

#[test]
fn a_ca_file_without_a_certificate_is_an_error() {
    let err = Cache::builder()
        .redis("rediss://127.0.0.1:6380")
        .redis_tls_ca(b"not a certificate".to_vec())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}

#[test]
fn a_ca_for_a_plain_url_is_an_error() {
    let err = Cache::builder()
        .redis("redis://127.0.0.1:6380")
        .redis_tls_ca(b"-----BEGIN CERTIFICATE-----\n".to_vec())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not rediss://"), "{err}");
}
