//! The measuring loops of an A/B comparison: one task's latencies, many tasks' throughput, and
//! repetitions that alternate which side goes first.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

use crate::stats::{percentile, ratios};
use crate::table::{cell, ops_cell};

/// One side of a comparison: an operation a task repeats (cloned per task).
pub trait Side: Clone + Send + 'static {
    /// Runs the operation once.
    fn call(&mut self) -> impl Future<Output = ()> + Send;
}

/// What one sequential run measured.
pub struct SeqRun {
    /// Operations per second.
    pub ops_per_s: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
}

/// Sequential awaits on one spawned task for `dur`: every operation's latency.
pub async fn run_sequential<S: Side>(side: &S, dur: Duration) -> SeqRun {
    let mut side = side.clone();
    tokio::spawn(async move {
        let mut lat: Vec<u64> = Vec::with_capacity(400_000);
        let start = Instant::now();
        let deadline = start + dur;
        let last = loop {
            let t0 = Instant::now();
            side.call().await;
            let t1 = Instant::now();
            lat.push((t1 - t0).as_nanos() as u64);
            if t1 >= deadline {
                break t1;
            }
        };
        let ops = lat.len();
        lat.sort_unstable();
        SeqRun {
            ops_per_s: ops as f64 / (last - start).as_secs_f64(),
            p50_us: percentile(&lat, 0.50) / 1e3,
            p99_us: percentile(&lat, 0.99) / 1e3,
        }
    })
    .await
    .expect("the sequential task")
}

/// `tasks` tasks calling in a loop for `dur`; operations per second over all of them.
pub async fn run_concurrent<S: Side>(side: &S, tasks: usize, dur: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(tasks + 1));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let mut side = side.clone();
            let stop = stop.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut ops = 0u64;
                while !stop.load(Relaxed) {
                    side.call().await;
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    tokio::time::sleep(dur).await;
    stop.store(true, Relaxed);
    let mut total = 0;
    for t in handles {
        total += t.await.expect("a concurrent task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Runs the two sides `reps` times, alternating which goes first; returns each side's
/// measurement and the ratio B/A of each repetition.
pub async fn alternate(
    reps: usize,
    mut side_a: impl AsyncFnMut() -> f64,
    mut side_b: impl AsyncFnMut() -> f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        let (pa, pb) = if rep % 2 == 0 {
            let pa = side_a().await;
            (pa, side_b().await)
        } else {
            let pb = side_b().await;
            (side_a().await, pb)
        };
        a.push(pa);
        b.push(pb);
        r.push(pb / pa);
    }
    (a, b, r)
}

/// A metric of the sequential runs of an A/B comparison, as a table row shows it.
#[derive(Clone, Copy)]
pub enum Metric {
    /// Median latency.
    P50,
    /// 99th percentile latency.
    P99,
    /// Operations per second.
    Ops,
}

impl Metric {
    /// The metric column of the row.
    pub fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50 latency, µs",
            Metric::P99 => "p99 latency, µs",
            Metric::Ops => "ops/s",
        }
    }

    fn of(self, run: &SeqRun) -> f64 {
        match self {
            Metric::P50 => run.p50_us,
            Metric::P99 => run.p99_us,
            Metric::Ops => run.ops_per_s,
        }
    }

    /// The A, B and A/B cells over the repetitions (the ratio taken within each repetition).
    pub fn cells(self, a: &[SeqRun], b: &[SeqRun]) -> [String; 3] {
        let a: Vec<f64> = a.iter().map(|r| self.of(r)).collect();
        let b: Vec<f64> = b.iter().map(|r| self.of(r)).collect();
        let (cell_a, cell_b) = match self {
            Metric::Ops => (ops_cell(&a), ops_cell(&b)),
            Metric::P50 | Metric::P99 => (cell(&a, 1), cell(&b, 1)),
        };
        [cell_a, cell_b, cell(&ratios(&a, &b), 2)]
    }
}
