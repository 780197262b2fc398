//! Sections 1 and 2: Redis hits against `cached`, and against `redis-benchmark` on the same bytes.

use std::sync::atomic::Ordering::Relaxed;

use cachette_benches::ab::{Metric, run_concurrent};
use cachette_benches::stats::ratios;
use cachette_benches::table::{Table, cell, ops_cell, size_label};

use crate::accounting::{keyspace_hits, redis_benchmark};
use crate::functions::{Op, seq_ab, seq_rows};
use crate::{Bench, CACHED_LOADS, CACHETTE_LOADS, RB_REQUESTS, REPS, RUN, SIZES, TASKS, WARMUP};

/// Runs the section and adds its tables.
pub(crate) async fn run(bench: &Bench<'_>, tables: &mut Vec<Table>) {
    let Bench {
        server,
        cache,
        entries,
        ..
    } = bench;
    let mut sync_conn = server.conn();
    let mut t1 = Table::new(
        "1. Redis hit: cachette `#[cached]` vs `cached` `#[concurrent_cached]` \
         (AsyncRedisCache)",
        &[
            "value",
            "tasks",
            "metric",
            "A: cachette",
            "B: cached 4.1",
            "A/B",
        ],
    );
    let mut t2 = Table::new(
        "2. Redis hit at 64 tasks vs `redis-benchmark -t get -c 64 -n 200000` \
         (same server, same bytes)",
        &[
            "value",
            "cachette `#[cached]`, ops/s",
            "redis-benchmark, req/s",
            "redis-benchmark -P 16, req/s",
            "cachette / redis-benchmark",
            "cachette / redis-benchmark -P 16",
        ],
    );
    let a = Op::CachetteHit(cache.clone());
    let b = Op::CachedHit;
    let loads_before = (CACHETTE_LOADS.load(Relaxed), CACHED_LOADS.load(Relaxed));
    let mut rb_p50 = Vec::new();
    for &size in &SIZES {
        let label = size_label(size);
        // What redis-benchmark reads: the cachette entry, under its fixed key.
        let () = redis::cmd("SET")
            .arg("key:__rand_int__")
            .arg(&entries[&size])
            .query(&mut sync_conn)
            .expect("SET for redis-benchmark");

        let (sa, sb) = seq_ab(server, &a, &b, size, RUN, false).await;
        seq_rows(
            &mut t1,
            &label,
            &[Metric::P50, Metric::P99, Metric::Ops],
            &sa,
            &sb,
        );

        run_concurrent(&a.at(size), TASKS, WARMUP).await;
        run_concurrent(&b.at(size), TASKS, WARMUP).await;
        let (mut ca, mut cb, mut r1, mut r16) = (vec![], vec![], vec![], vec![]);
        for rep in 0..REPS {
            if rep % 2 == 0 {
                ca.push(run_concurrent(&a.at(size), TASKS, RUN).await);
                cb.push(run_concurrent(&b.at(size), TASKS, RUN).await);
            } else {
                cb.push(run_concurrent(&b.at(size), TASKS, RUN).await);
                ca.push(run_concurrent(&a.at(size), TASKS, RUN).await);
            }
            let hits = keyspace_hits(server);
            let (rps, p50) = redis_benchmark(server.port(), size, None);
            r1.push(rps);
            rb_p50.push((size, p50));
            let (rps16, _) = redis_benchmark(server.port(), size, Some(16));
            r16.push(rps16);
            let got = keyspace_hits(server) - hits;
            assert!(
                got >= 2 * RB_REQUESTS,
                "redis-benchmark's GETs were hits ({got})"
            );
        }
        t1.row(vec![
            label.clone(),
            TASKS.to_string(),
            "ops/s".into(),
            ops_cell(&ca),
            ops_cell(&cb),
            cell(&ratios(&ca, &cb), 2),
        ]);
        t2.row(vec![
            label.clone(),
            ops_cell(&ca),
            ops_cell(&r1),
            ops_cell(&r16),
            cell(&ratios(&ca, &r1), 2),
            cell(&ratios(&ca, &r16), 2),
        ]);
    }
    assert_eq!(
        loads_before,
        (CACHETTE_LOADS.load(Relaxed), CACHED_LOADS.load(Relaxed)),
        "every measured call was a hit"
    );
    let stats = cache.stats().total;
    t1.note(format!(
        "Checked: no body ran on either side while measuring; cachette counted {} misses \
         and {} store errors in total (the 2 misses are the preloading calls).",
        stats.misses, stats.errors
    ));
    t1.note(
        "A/B above 1 on an ops/s row, or below 1 on a latency row, means cachette did \
         better."
            .into(),
    );
    for &size in &SIZES {
        let p: Vec<f64> = rb_p50
            .iter()
            .filter(|(s, _)| *s == size)
            .map(|(_, p)| *p)
            .collect();
        t2.note(format!(
            "{}: redis-benchmark (64 connections, one GET in flight per connection) \
             p50 {} ms.",
            size_label(size),
            cell(&p, 3)
        ));
    }
    t2.note(
        "redis-benchmark GETs `key:__rand_int__` (without `-r` the key is literal), which \
         the harness sets to the cachette entry's exact bytes first, so every request is a \
         hit of the same size as cachette's (checked with `keyspace_hits`); `-d` only sizes \
         SET values and does not matter for `-t get`. redis-benchmark is one C process \
         with 64 connections; cachette uses one multiplexed connection and decodes every \
         value. Both share the 2 cores with redis-server."
            .into(),
    );
    tables.push(t1);
    tables.push(t2);
}
