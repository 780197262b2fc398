//! Every placeholder of a protected function is keyed-hashed unless declared `plain`: an
//! identifier left out of `patient = ..` never reaches Redis in plaintext, not in key names, not
//! in lease keys or script arguments (MONITOR), not in SLOWLOG; and neither it nor the
//! patient's name or birth date appears in stored values, audit lines or log events.

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
const NAME: &str = "Zebulon Quartermaine";
const BORN: &str = "1984-02-29";

/// Every audit event, as the JSON line the file sink writes.
#[derive(Default)]
struct AuditLines(Mutex<Vec<String>>);

impl cachette::healthcare::AuditSink for AuditLines {
    fn record(&self, e: &cachette::healthcare::AuditEvent) {
        let line = cachette::healthcare::to_json(e).to_string();
        self.0.lock().unwrap().push(line);
    }
}

/// Every `tracing` event of the test's thread, at every level, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<String>>);

impl tracing::field::Visit for Logs {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let mut text = self.0.lock().unwrap();
        text.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut self.clone());
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut self.clone());
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut self.clone());
        self.0.lock().unwrap().push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

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
        Ok(format!(
            "records of {patient_id} ({NAME}, born {BORN}), page {page}"
        ))
    }

    #[invalidate_patient_cache(patterns = ["patient:records:{patient_id}:*"], cache = self.cache)]
    async fn amend(&self, patient_id: &str) -> Result<(), String> {
        let _ = patient_id;
        Ok(())
    }
}

fn records(server: &RedisServer, audit: Arc<AuditLines>) -> Records {
    let cache = Cache::builder()
        .redis(server.url())
        .audit_sink(audit)
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
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(logs.clone());
    let server = RedisServer::start_with(&[
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "10000",
    ]);
    let audit = Arc::new(AuditLines::default());
    let r = records(&server, audit.clone());
    let monitor = Monitor::start(&server);
    let expected = format!("records of {MRN} ({NAME}, born {BORN}), page 3");

    assert_eq!(r.records(MRN, 3).await.unwrap(), expected);
    assert_eq!(r.records(MRN, 3).await.unwrap(), expected);
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

    // A damaged entry is logged (a warning) without its key.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("\x01 not an entry at all, and longer than a header")
        .query(&mut conn)
        .unwrap();
    r.records(MRN, 3).await.unwrap();
    assert_eq!(r.loads.load(SeqCst), 3, "a damaged entry is a miss");
    assert!(
        logs.0.lock().unwrap().contains("failed to decode"),
        "the warning was captured"
    );

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

    // No identifier, name or date anywhere: keys, values, commands, audit lines, logs.
    let mut values = String::new();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    for k in &keys {
        let v: Option<Vec<u8>> = redis::cmd("GET").arg(k).query(&mut conn).unwrap_or(None);
        values.push_str(&String::from_utf8_lossy(&v.unwrap_or_default()));
    }
    let audit = audit.0.lock().unwrap().join("\n");
    assert!(
        audit.contains(&hashed) || !audit.is_empty(),
        "audited: {audit}"
    );
    let logs = logs.0.lock().unwrap().clone();
    for (place, text) in [
        ("key names", keys.join(" ")),
        ("values", values),
        ("MONITOR", commands),
        ("SLOWLOG", slowlog),
        ("audit lines", audit),
        ("log events", logs),
    ] {
        for secret in [MRN, NAME, BORN] {
            assert!(!text.contains(secret), "{secret} in {place}: {text}");
        }
    }
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
