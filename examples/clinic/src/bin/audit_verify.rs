//! Checks a chained audit file (`CACHE_AUDIT_FILE`): names the first edited or removed line.
//!
//! ```sh
//! CACHE_HASH_KEY=... cargo run -p clinic --bin audit_verify -- /var/log/clinic/audit.jsonl
//! ```
//!
//! The key is the one the service wrote with: `CACHE_AUDIT_KEY`, or the one derived from
//! `CACHE_HASH_KEY`. Exits 0 when the chain is whole (and prints its last line's number and
//! MAC, to keep elsewhere: lines removed from the end leave a valid chain), 1 at the first
//! broken line, 2 when it cannot check.

use std::process::ExitCode;

use cachette::healthcare::{env::audit_key, verify_audit_chain};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: audit_verify FILE (with CACHE_AUDIT_KEY or CACHE_HASH_KEY set)");
        return ExitCode::from(2);
    };
    let key = match audit_key(&|name| std::env::var(name).ok()) {
        Ok(Some(key)) => key,
        Ok(None) => {
            eprintln!(
                "set CACHE_AUDIT_KEY (or CACHE_HASH_KEY) to the key the file was written with"
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot open {path}: {e}");
            return ExitCode::from(2);
        }
    };
    match verify_audit_chain(std::io::BufReader::new(file), &key) {
        Ok(report) => {
            println!(
                "{path}: {} lines, chain intact; last line {} with MAC {}",
                report.lines, report.last_seq, report.last_mac
            );
            ExitCode::SUCCESS
        }
        Err(broken) => {
            println!("{path}: {broken}");
            ExitCode::from(1)
        }
    }
}
