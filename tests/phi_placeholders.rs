//! Every placeholder of a protected function is keyed-hashed unless declared `plain`: an
//! identifier left out of `patient = ..` never reaches Redis in plaintext, not in key names, not
//! in lease keys or script arguments (MONITOR), not in SLOWLOG.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cachette::Cache;
use cachette::healthcare::{HmacIdHasher, Keyring, invalidate_patient_cache, patient_cache};
use support::RedisServer;

const MRN: &str = "MRN-7731";

struct Records {
    cache: Cache,
    loads: AtomicU32,
}

impl Records {
    /// Written as DESIGN.md's example once was: no `patient = ..`.
    #[patient_cache(
        key = "patient:records:{patient_id}:page:{page}",
        tags = ["records:{patient_id}"],
        plain = [page],
        ttl = "10m",
        cache = self.cache,
    )]
    async fn records(&self, patient_id: &str, page: u32) -> Result<String, String> {
        self.loads.fetch_add(1, SeqCst);
        Ok(format!("records of {patient_id}, page {page}"))
    }

    #[invalidate_patient_cache(patterns = ["patient:records:{patient_id}:*"], cache = self.cache)]
    async fn amend(&self, patient_id: &str) -> Result<(), String> {
        let _ = patient_id;
        Ok(())
    }
}

fn records(server: &RedisServer) -> Records {
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("pp")
        .sealer(Arc::new(
            Keyring::new([("k1".to_string(), [1; 32])]).unwrap(),
        ))
        .id_hasher(Arc::new(HmacIdHasher::new(&[2; 32]).unwrap()))
        .build()
        .unwrap();
    Records {
        cache,
        loads: AtomicU32::new(0),
    }
}

/// A raw `MONITOR` connection whose output is collected until [`Monitor::stop`].
struct Monitor {
    seen: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

impl Monitor {
    fn start(server: &RedisServer) -> Monitor {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut ok = [0u8; 5];
        stream.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"+OK\r\n");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(SeqCst) {
                    if let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                }
            })
        };
        Monitor { seen, stop, reader }
    }

    fn stop(self) -> String {
        // MONITOR output trails the commands a little.
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, SeqCst);
        self.reader.join().unwrap();
        let seen = self.seen.lock().unwrap();
        String::from_utf8_lossy(&seen).into_owned()
    }
}

#[tokio::test]
async fn undeclared_placeholders_never_reach_redis_in_plaintext() {
    let server = RedisServer::start_with(&[
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "10000",
    ]);
    let r = records(&server);
    let monitor = Monitor::start(&server);

    assert_eq!(
        r.records(MRN, 3).await.unwrap(),
        format!("records of {MRN}, page 3")
    );
    assert_eq!(
        r.records(MRN, 3).await.unwrap(),
        format!("records of {MRN}, page 3")
    );
    assert_eq!(r.loads.load(SeqCst), 1, "cached");

    let mut conn = server.conn();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    let hashed = r.cache.hash_id(MRN);
    let key = format!("pp:phi:patient:records:{hashed}:page:3");
    assert!(keys.contains(&key), "{keys:?}");
    for k in &keys {
        assert!(!k.contains(MRN), "plaintext identifier in key {k}");
    }

    // Invalidation hashes the same way: the entry is gone and the next call loads.
    r.amend(MRN).await.unwrap();
    r.records(MRN, 3).await.unwrap();
    assert_eq!(r.loads.load(SeqCst), 2, "invalidated");

    let commands = monitor.stop();
    assert!(
        commands.contains(&hashed),
        "MONITOR saw the commands: {commands}"
    );
    assert!(
        !commands.contains(MRN),
        "plaintext identifier in MONITOR: {commands}"
    );
    let slowlog: redis::Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    let slowlog = text(&slowlog);
    assert!(
        slowlog.contains(&hashed),
        "SLOWLOG logged the commands: {slowlog}"
    );
    assert!(
        !slowlog.contains(MRN),
        "plaintext identifier in SLOWLOG: {slowlog}"
    );
}

/// Every string in a reply, joined: SLOWLOG entries nest their arguments in arrays.
fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        other => format!("{other:?}"),
    }
}
