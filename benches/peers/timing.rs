//! The in-process measurements: hits on several OS threads, and ns per call of a closure.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use cachette::Cache;
use cachette_benches::payload::Payload;

use crate::functions::{cached_mem, cachette_get};
use crate::{BATCH, CPU_RUN};

/// One side of the in-process hit rows.
pub(crate) enum Mem {
    Cachette(Cache),
    Moka(moka::future::Cache<u64, Payload>),
    Cached,
}

impl Mem {
    pub(crate) async fn hit(&self, id: u64) -> Payload {
        match self {
            Mem::Cachette(cache) => cachette_get(cache, id).await.expect("a memory hit"),
            Mem::Moka(cache) => cache.get(&id).await.expect("a moka hit"),
            Mem::Cached => cached_mem(id).await,
        }
    }
}

/// This thread's time on a CPU, in ns (`/proc/thread-self/schedstat`, first field). Yielding
/// first makes the kernel bring the running thread's sum up to date.
pub(crate) fn thread_cpu_ns() -> u64 {
    std::thread::yield_now();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat")
}

/// ns per call of one in-process measurement, averaged over its threads.
pub(crate) struct MemRun {
    /// Wall time / calls: includes time the thread waited for a CPU.
    pub(crate) wall: f64,
    /// Time on a CPU / calls: what the calls cost, whether or not the thread had a core to
    /// itself.
    pub(crate) cpu: f64,
}

/// `threads` OS threads (each with its own current-thread Tokio runtime) calling `side` on the
/// same key for `dur`.
pub(crate) fn run_mem(side: &Mem, id: u64, threads: usize, dur: Duration) -> MemRun {
    let barrier = std::sync::Barrier::new(threads);
    let per_thread: Vec<(f64, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    rt.block_on(async {
                        barrier.wait();
                        let cpu0 = thread_cpu_ns();
                        let start = Instant::now();
                        let mut calls = 0u64;
                        loop {
                            for _ in 0..BATCH {
                                black_box(side.hit(black_box(id)).await);
                            }
                            calls += BATCH;
                            let elapsed = start.elapsed();
                            if elapsed >= dur {
                                let cpu = thread_cpu_ns() - cpu0;
                                return (
                                    elapsed.as_nanos() as f64 / calls as f64,
                                    cpu as f64 / calls as f64,
                                );
                            }
                        }
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a memory thread"))
            .collect()
    });
    let n = per_thread.len() as f64;
    MemRun {
        wall: per_thread.iter().map(|r| r.0).sum::<f64>() / n,
        cpu: per_thread.iter().map(|r| r.1).sum::<f64>() / n,
    }
}

/// ns per call of `f`, run in batches for `CPU_RUN`.
pub(crate) fn time_ns(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..BATCH {
            f();
        }
        calls += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= CPU_RUN {
            return elapsed.as_nanos() as f64 / calls as f64;
        }
    }
}

/// ns per call of an async `f` on the current runtime, in batches for `CPU_RUN`.
pub(crate) async fn time_ns_async<Fut: Future<Output = ()>>(mut f: impl FnMut() -> Fut) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..BATCH {
            f().await;
        }
        calls += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= CPU_RUN {
            return elapsed.as_nanos() as f64 / calls as f64;
        }
    }
}
