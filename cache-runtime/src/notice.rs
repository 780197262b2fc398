//! The two problems that turn caching off without failing a call, told on stderr when no
//! `tracing` subscriber would hear of them.
//!
//! A library reports through `tracing` and leaves the terminal to the program; this is the
//! exception (DESIGN.md, "Configuration mistakes are loud"): a program without a subscriber, as
//! most first tries are, would otherwise run with its cache off and never learn why.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// What turned caching off; each is told at most once per process.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cause {
    /// The configuration in the environment is invalid: the global cache caches nothing.
    Config,
    /// The store failed (unreachable, or refusing commands): calls run uncached.
    Store,
}

static TOLD: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Writes `message()` as one line to stderr, unless a `tracing` subscriber is installed (it
/// gets the event that reports the problem) or `cause` was told already.
pub(crate) fn unheard(cause: Cause, message: impl FnOnce() -> String) {
    let told = &TOLD[cause as usize];
    if told.load(Relaxed) || has_subscriber() || told.swap(true, Relaxed) {
        return;
    }
    // Nothing to do if stderr is closed: the cache goes on either way.
    let _ = writeln!(std::io::stderr().lock(), "cachette: {}", message());
}

/// Whether events reach a subscriber: a global default, or one set for this thread.
fn has_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
}
