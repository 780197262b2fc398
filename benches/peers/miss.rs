//! Section 4: a miss and its write, against raw redis-rs `GET` then `SET`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use cachette_benches::ab::{Metric, run_concurrent};
use cachette_benches::stats::ratios;
use cachette_benches::table::{Table, cell, ops_cell, size_label};

use crate::functions::{Op, flush, seq_ab, seq_rows};
use crate::{Bench, CACHETTE_LOADS, MISS_RUN, REPS, SIZES, TASKS, WARMUP};

/// Runs the section and adds its tables.
pub(crate) async fn run(bench: &Bench<'_>, tables: &mut Vec<Table>) {
    let Bench {
        server,
        cache,
        raw,
        entries,
    } = bench;
    let mut t4 = Table::new(
        "4. Miss + write: cachette miss (fresh key, loader returns at once) \
         vs raw redis-rs GET then SET of the same bytes",
        &[
            "value",
            "tasks",
            "metric",
            "A: cachette miss",
            "B: raw GET + SET",
            "A/B",
        ],
    );
    let loads_hit_before = CACHETTE_LOADS.load(Relaxed);
    for &size in &SIZES {
        let label = size_label(size);
        let a = Op::CachetteMiss(cache.clone());
        let b = Op::RawMiss(raw.clone(), Arc::new(entries[&size].clone()));
        let (sa, sb) = seq_ab(server, &a, &b, size, MISS_RUN, true).await;
        seq_rows(&mut t4, &label, &[Metric::P50, Metric::Ops], &sa, &sb);
        run_concurrent(&a.at(size), TASKS, WARMUP).await;
        run_concurrent(&b.at(size), TASKS, WARMUP).await;
        flush(server);
        let (mut ca, mut cb) = (vec![], vec![]);
        for rep in 0..REPS {
            for first in [rep % 2 == 0, rep % 2 == 1] {
                let r =
                    run_concurrent(&(if first { &a } else { &b }).at(size), TASKS, MISS_RUN).await;
                flush(server);
                if first { ca.push(r) } else { cb.push(r) }
            }
        }
        t4.row(vec![
            label.clone(),
            TASKS.to_string(),
            "ops/s".into(),
            ops_cell(&ca),
            ops_cell(&cb),
            cell(&ratios(&ca, &cb), 2),
        ]);
    }
    assert_eq!(CACHETTE_LOADS.load(Relaxed), loads_hit_before);
    t4.note(
        "Every call of both sides is a miss on a key never used before (checked on the raw \
         side: the GET finds nothing). The raw side writes the bytes of a real cachette \
         entry (header + postcard) with `PX` 1 h; it takes no lease and does not compare \
         before writing. FLUSHDB after every side-run, outside the timing."
            .into(),
    );
    tables.push(t4);
}
