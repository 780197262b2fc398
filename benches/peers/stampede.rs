//! Section 5: 1000 concurrent callers of one cold key.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use cachette_benches::table::{Table, cell};
use tokio::sync::Barrier;

use crate::accounting::{count_commands, per_op};
use crate::functions::{cached_slow, cachette_slow, flush};
use crate::{
    Bench, REPS, STAMPEDE_CACHED_RUNS, STAMPEDE_CACHETTE_RUNS, STAMPEDE_CALLERS, fresh_id,
};

/// Runs the section and adds its tables.
pub(crate) async fn run(bench: &Bench<'_>, tables: &mut Vec<Table>) {
    let Bench { server, cache, .. } = bench;
    let mut t5 = Table::new(
        "5. Stampede: 1000 concurrent callers of one cold key, body sleeps 50 ms",
        &[
            "side",
            "body runs",
            "client commands (MONITOR)",
            "INFO commandstats delta",
            "wall time until all 1000 returned, ms",
        ],
    );
    for side in ["cachette", "cached"] {
        let (mut runs, mut sent, mut stats, mut wall) = (vec![], vec![], vec![], vec![]);
        let mut detail = (String::new(), String::new());
        for _ in 0..REPS {
            let id = fresh_id();
            let before = (
                STAMPEDE_CACHETTE_RUNS.load(Relaxed),
                STAMPEDE_CACHED_RUNS.load(Relaxed),
            );
            let (ms, c) = count_commands(server, async {
                let barrier = Arc::new(Barrier::new(STAMPEDE_CALLERS));
                let start = Instant::now();
                let tasks: Vec<_> = (0..STAMPEDE_CALLERS)
                    .map(|_| {
                        let barrier = barrier.clone();
                        let cache = cache.clone();
                        tokio::spawn(async move {
                            barrier.wait().await;
                            let v = if side == "cachette" {
                                cachette_slow(&cache, id).await.expect("cachette")
                            } else {
                                cached_slow(id).await.expect("cached")
                            };
                            assert_eq!(v.id, id);
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("a caller");
                }
                start.elapsed().as_secs_f64() * 1e3
            })
            .await;
            let after = (
                STAMPEDE_CACHETTE_RUNS.load(Relaxed),
                STAMPEDE_CACHED_RUNS.load(Relaxed),
            );
            let n = if side == "cachette" {
                after.0 - before.0
            } else {
                after.1 - before.1
            };
            runs.push(n as f64);
            sent.push(c.total_sent() as f64);
            stats.push(c.total_stats() as f64);
            wall.push(ms);
            detail = (per_op(&c.sent, 1), per_op(&c.stats, 1));
        }
        t5.row(vec![
            side.into(),
            cell(&runs, 0),
            format!("{} (last: {})", cell(&sent, 0), detail.0),
            format!("{} (last: {})", cell(&stats, 0), detail.1),
            cell(&wall, 1),
        ]);
    }
    t5.note(format!(
        "{REPS} repetitions per side, a fresh key each. cachette: `#[cached]` with a \
         `&Cache` parameter (the caller that wins the flight loads; a lease in Redis guards \
         other processes). cached: `#[concurrent_cached]` on `AsyncRedisCache`, which has \
         no single flight (`sync_writes` is rejected on `#[concurrent_cached]`)."
    ));
    tables.push(t5);
    flush(server);
}
