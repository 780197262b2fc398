//! Built-in audit sinks: `tracing` events on a dedicated target, and a JSON-lines file.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use cache_runtime::{AuditEvent, AuditSink};

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
/// loses at most the event being written.
#[derive(Debug)]
pub struct JsonLinesAudit {
    file: Mutex<File>,
}

impl JsonLinesAudit {
    /// Opens (creating or appending to) `path`.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLinesAudit {
            file: Mutex::new(file),
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
        let mut line = to_json(e).to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
            tracing::error!(target: AUDIT_TARGET, error = %err, "cannot write the audit file");
        }
    }
}
