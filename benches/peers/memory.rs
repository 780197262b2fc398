//! Section 6: in-process hits against moka and `cached`.

use std::sync::atomic::Ordering::Relaxed;

use cachette::Cache;
use cachette_benches::payload::Payload;
use cachette_benches::stats::ratios;
use cachette_benches::table::{Table, cell, size_label};

use crate::functions::{cached_mem, cachette_get};
use crate::timing::{Mem, run_mem};
use crate::values::payload;
use crate::{CACHED_MEM_LOADS, CACHETTE_LOADS, HOUR, LOCAL_RUN, REPS, SIZES, WARMUP};

/// Runs the section and adds its tables.
pub(crate) async fn run(memory: &Cache, tables: &mut Vec<Table>) {
    let mut t6 = Table::new(
        "6. In-process hit, ns per call (per thread), same key on every thread",
        &[
            "value",
            "threads",
            "ns per call",
            "cachette `#[cached]`, memory store",
            "moka `future::Cache::get`",
            "cached `#[cached]` (UnboundCache)",
            "cachette / moka",
            "cachette / cached",
        ],
    );
    let moka_cache: moka::future::Cache<u64, Payload> = moka::future::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(HOUR)
        .build();
    for &size in &SIZES {
        cachette_get(memory, size).await.expect("preload");
        moka_cache.insert(size, payload(size).clone()).await;
        cached_mem(size).await;
    }
    let sides = [
        Mem::Cachette(memory.clone()),
        Mem::Moka(moka_cache.clone()),
        Mem::Cached,
    ];
    let mem_loads = (CACHETTE_LOADS.load(Relaxed), CACHED_MEM_LOADS.load(Relaxed));
    for &size in &SIZES {
        for threads in [1usize, 2] {
            let mut cpu: [Vec<f64>; 3] = Default::default();
            let mut wall: [Vec<f64>; 3] = Default::default();
            for side in &sides {
                run_mem(side, size, threads, WARMUP / 2);
            }
            for rep in 0..REPS {
                for k in 0..3 {
                    let i = (rep + k) % 3;
                    let r = run_mem(&sides[i], size, threads, LOCAL_RUN);
                    cpu[i].push(r.cpu);
                    wall[i].push(r.wall);
                }
            }
            for (metric, ns) in [("on-CPU", &cpu), ("wall", &wall)] {
                t6.row(vec![
                    size_label(size),
                    threads.to_string(),
                    metric.into(),
                    cell(&ns[0], 0),
                    cell(&ns[1], 0),
                    cell(&ns[2], 0),
                    cell(&ratios(&ns[0], &ns[1]), 2),
                    cell(&ratios(&ns[0], &ns[2]), 2),
                ]);
            }
        }
    }
    assert_eq!(
        mem_loads,
        (CACHETTE_LOADS.load(Relaxed), CACHED_MEM_LOADS.load(Relaxed)),
        "every in-process call was a hit"
    );
    t6.note(
            "Each thread is an OS thread with its own current-thread Tokio runtime; all \
         threads call the same key. ns per call is per thread, averaged over threads: \
         *on-CPU* is the thread's CPU time (`/proc/thread-self/schedstat`) / its calls, \
         *wall* is wall time / its calls, which also counts time spent waiting for a core \
         (another process on the machine, or the other thread). Equal numbers on 1 and 2 \
         threads mean perfect scaling. Every side returns an owned `Payload`: cachette decodes its stored \
         postcard bytes, moka and cached clone the stored value (a `String` allocation and \
         copy)."
                .into(),
        );
    t6.note(
        "cachette's memory store is a moka `sync::Cache` of encoded entries; on a hit it \
         also renders the key into a `String`, parses the 32 B entry header, checks \
         freshness and records the hit in its statistics (latency included)."
            .into(),
    );
    tables.push(t6);
}
