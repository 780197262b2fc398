//! Background refreshes: a bounded priority queue drained by a bounded number of tasks.
//!
//! Under load, stale hits can ask for more refreshes than the database should take. The queue
//! holds at most `capacity` jobs; when it is full, a new job displaces the queued job of lowest
//! priority if that is lower than its own, and is dropped otherwise: low-priority refreshes go
//! first. At most `workers` jobs run at once, and worker tasks exist only while there is work.

use std::collections::{BinaryHeap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// How urgent a function's background refreshes are (the NestJS original's `priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Dropped first when the refresh queue is full.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Ahead of normal refreshes.
    High,
    /// Ahead of everything; emergency data.
    Critical,
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Queued {
    /// The key refreshed; one queued refresh per key.
    key: String,
    priority: Priority,
    /// Older jobs first within a priority.
    seq: std::cmp::Reverse<u64>,
    job: Job,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.priority, self.seq).cmp(&(other.priority, other.seq))
    }
}

struct State {
    queue: BinaryHeap<Queued>,
    /// Keys with a refresh in the queue.
    queued: HashSet<String>,
    running: usize,
}

/// The refresh executor of one cache.
pub(crate) struct Refresher {
    state: Mutex<State>,
    capacity: usize,
    workers: usize,
    seq: AtomicU64,
    dropped: AtomicU64,
}

impl Refresher {
    pub(crate) fn new(capacity: usize, workers: usize) -> Self {
        Refresher {
            state: Mutex::new(State {
                queue: BinaryHeap::new(),
                queued: HashSet::new(),
                running: 0,
            }),
            capacity: capacity.max(1),
            workers: workers.max(1),
            seq: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Counts a refresh dropped before queueing (load shedding).
    pub(crate) fn shed(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Refreshes dropped because the queue was full or the store slow.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Queues `job`, the refresh of `key`; returns `false` when it was dropped (a refresh of
    /// `key` is queued already, the queue is full of work at least as urgent, or there is no
    /// Tokio runtime to run it on).
    pub(crate) fn submit(
        self: &Arc<Self>,
        key: &str,
        priority: Priority,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.dropped.fetch_add(1, Relaxed);
            return false;
        };
        let seq = std::cmp::Reverse(self.seq.fetch_add(1, Relaxed));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.queued.contains(key) {
            return false;
        }
        if state.queue.len() >= self.capacity {
            let lowest = state.queue.iter().map(|q| (q.priority, q.seq)).min();
            match lowest {
                Some(low) if low.0 < priority => {
                    let mut rest: Vec<Queued> = std::mem::take(&mut state.queue).into_vec();
                    if let Some(at) = rest.iter().position(|q| (q.priority, q.seq) == low) {
                        let gone = rest.swap_remove(at);
                        state.queued.remove(&gone.key);
                    }
                    state.queue = rest.into();
                    self.dropped.fetch_add(1, Relaxed);
                }
                _ => {
                    self.dropped.fetch_add(1, Relaxed);
                    return false;
                }
            }
        }
        state.queued.insert(key.to_owned());
        state.queue.push(Queued {
            key: key.to_owned(),
            priority,
            seq,
            job: Box::pin(job),
        });
        if state.running < self.workers {
            state.running += 1;
            let this = self.clone();
            rt.spawn(async move { this.work().await });
        }
        true
    }

    async fn work(self: Arc<Self>) {
        loop {
            let next = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                match state.queue.pop() {
                    Some(q) => {
                        state.queued.remove(&q.key);
                        q.job
                    }
                    None => {
                        state.running -= 1;
                        return;
                    }
                }
            };
            // In a task of its own, so that a loader that panics loses its refresh, not this
            // worker (whose count would otherwise never come down).
            if let Err(e) = tokio::spawn(next).await {
                tracing::error!(target: "cachette", error = %e, "a background refresh panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::{Notify, mpsc};

    #[tokio::test(flavor = "current_thread")]
    async fn runs_urgent_work_first_and_drops_low_priority_when_full() {
        let refresher = Arc::new(Refresher::new(3, 1));
        let gate = Arc::new(Notify::new());
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Occupies the only worker until the gate opens.
        let g = gate.clone();
        assert!(refresher.submit("gate", Priority::Normal, async move { g.notified().await }));
        tokio::task::yield_now().await;
        for (p, name) in [
            (Priority::Low, "low"),
            (Priority::Normal, "normal"),
            (Priority::Low, "low2"),
        ] {
            let tx = tx.clone();
            assert!(refresher.submit(name, p, async move { tx.send(name).unwrap() }));
        }
        // One queued refresh per key.
        assert!(!refresher.submit("normal", Priority::Normal, async {}));
        // Full: a critical job displaces the newest of the lowest-priority jobs; another low
        // one is dropped.
        let t = tx.clone();
        assert!(
            refresher.submit("critical", Priority::Critical, async move {
                t.send("critical").unwrap()
            })
        );
        let t = tx.clone();
        assert!(!refresher.submit("late-low", Priority::Low, async move {
            t.send("late-low").unwrap()
        }));
        // The displaced refresh's key may be queued again.
        assert!(
            !refresher.submit("low2", Priority::Low, async {}),
            "still full"
        );
        assert_eq!(refresher.dropped(), 3);
        gate.notify_one();
        drop(tx);
        let mut order = Vec::new();
        while let Some(name) = rx.recv().await {
            order.push(name);
        }
        assert_eq!(order, ["critical", "normal", "low"]);
    }
}
