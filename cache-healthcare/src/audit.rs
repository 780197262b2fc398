//! Built-in audit sinks: `tracing` events on a dedicated target, and a JSON-lines file whose
//! lines are chained by MACs ([`chain`]).

pub(crate) mod chain;

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::Mutex;

use cache_runtime::{AuditEvent, AuditSink};

use self::chain::{AuditKey, Link};

/// The `tracing` target audit events are emitted on.
pub const AUDIT_TARGET: &str = "cachette::audit";

/// Emits each event as an `INFO` event on the [`AUDIT_TARGET`] target.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingAudit;

impl AuditSink for TracingAudit {
    fn record(&self, e: &AuditEvent) {
        tracing::info!(
            target: AUDIT_TARGET,
            time_ms = e.time_ms,
            function = %e.function,
            operation = e.operation.as_str(),
            outcome = e.outcome,
            key = %e.key,
            actor = e.actor.as_deref().unwrap_or("-"),
            count = e.count,
            "phi access"
        );
    }
}

/// Appends each event as one JSON object per line to a file (`CACHE_AUDIT_FILE`).
///
/// Each line is written and flushed under a lock: events are never interleaved, and a crash
/// loses at most the event being written. Opened with a key ([`open_chained`](Self::open_chained);
/// from the environment, always), each line also carries its number and a MAC chained to the
/// line before it, so that [`verify_audit_chain`](crate::verify_audit_chain) (or
/// `cargo run -p clinic --bin audit_verify FILE`) names the first edited or removed line.
#[derive(Debug)]
pub struct JsonLinesAudit {
    file: Mutex<(File, Link)>,
    key: Option<AuditKey>,
}

impl JsonLinesAudit {
    /// Opens (creating or appending to) `path`; lines carry no MAC.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLinesAudit {
            file: Mutex::new((file, Link::GENESIS)),
            key: None,
        })
    }

    /// Opens (creating or appending to) `path`, chaining every line under `key`; an existing
    /// chain is continued from its last line.
    pub fn open_chained(path: impl AsRef<Path>, key: AuditKey) -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        // The last line is within the file's tail: lines are a few hundred bytes.
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut tail = String::new();
        file.read_to_string(&mut tail)?;
        // A last line that carries no link (cut short by a crash) leaves the chain broken
        // there, where the verifier says so; the lines after it start again from zero.
        let link = chain::last_link(&tail).unwrap_or(Link::GENESIS);
        Ok(JsonLinesAudit {
            file: Mutex::new((file, link)),
            key: Some(key),
        })
    }
}

/// The JSON form of an event.
pub fn to_json(e: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "time_ms": e.time_ms,
        "function": e.function,
        "operation": e.operation.as_str(),
        "outcome": e.outcome,
        "key": e.key,
        "actor": e.actor.as_deref(),
        "count": e.count,
    })
}

impl AuditSink for JsonLinesAudit {
    fn record(&self, e: &AuditEvent) {
        let json = to_json(e).to_string();
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let (file, link) = &mut *guard;
        let (mut line, next) = match &self.key {
            Some(key) => chain::seal_line(key, *link, &json),
            None => (json, *link),
        };
        line.push('\n');
        match file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
            Ok(()) => *link = next,
            Err(err) => {
                tracing::error!(target: AUDIT_TARGET, error = %err, "cannot write the audit file")
            }
        }
    }
}
