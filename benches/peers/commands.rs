//! Section 3: Redis commands per hit and per miss.

use std::sync::Arc;

use cachette_benches::table::Table;

use crate::accounting::{count_commands, per_op};
use crate::functions::{Op, flush};
use crate::{Bench, COUNT_OPS};

/// Runs the section and adds its tables.
pub(crate) async fn run(bench: &Bench<'_>, tables: &mut Vec<Table>) {
    let Bench {
        server,
        cache,
        raw,
        entries,
    } = bench;
    let mut t3 = Table::new(
        "3. Redis commands per operation (INFO commandstats delta and MONITOR), 256 B",
        &[
            "operation",
            "client commands per op (MONITOR)",
            "of which",
            "run inside Lua scripts per op",
            "INFO commandstats delta per op",
        ],
    );
    let raw_bytes = Arc::new(entries[&256].clone());
    let cases: Vec<(&str, Op)> = vec![
        ("cachette hit", Op::CachetteHit(cache.clone())),
        ("cached hit", Op::CachedHit),
        ("cachette miss + write", Op::CachetteMiss(cache.clone())),
        ("cached miss + write", Op::CachedMiss),
        (
            "raw redis-rs GET + SET",
            Op::RawMiss(raw.clone(), raw_bytes.clone()),
        ),
    ];
    for (name, op) in &cases {
        // One call first, so any connection setup is not counted.
        op.clone().run(256).await;
        let ((), c) = count_commands(server, async {
            let mut op = op.clone();
            for _ in 0..COUNT_OPS {
                op.run(256).await;
            }
        })
        .await;
        t3.row(vec![
            (*name).to_owned(),
            format!("{:.2}", c.total_sent() as f64 / COUNT_OPS as f64),
            per_op(&c.sent, COUNT_OPS),
            per_op(&c.scripted, COUNT_OPS),
            format!(
                "{:.2}: {}",
                c.total_stats() as f64 / COUNT_OPS as f64,
                per_op(&c.stats, COUNT_OPS)
            ),
        ]);
    }
    t3.note(format!(
        "{COUNT_OPS} sequential operations per row. No pipelines are involved on these \
         paths, so client commands = round trips. `INFO commandstats` also counts the \
         commands a script runs (its `get`/`set`/`del` inside `evalsha`), which is why its \
         totals are larger than the MONITOR count."
    ));
    tables.push(t3);
    flush(server);
}
