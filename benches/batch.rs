//! A batch of 100 ids with 10 % missing: one `get_or_load_many` against 100 `get_or_load`
//! calls, on a `redis-server` of its own (127.0.0.1:6379 is never touched).
//!
//! Run with `cargo bench -p cachette-benches --bench batch`. Each round primes 90 of 100 keys
//! (the 10 missing ones are invalidated first), then times one side; the sides alternate
//! within each repetition (A/B), so drift of a shared machine hits both. The loader answers at
//! once (no database), so the rows compare what the cache itself costs: round trips, leases,
//! writes. Prints a markdown table: median time per batch of 100 and the ratio.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cachette::{BatchKey, Cache, LoadOptions};
use cachette_benches::RedisServer;
use cachette_benches::payload::{Payload, make_payload};
use cachette_benches::stats::{median, ratios, summary};
use cachette_benches::table::{Table, cell};

const IDS: u64 = 100;
const MISSING_EVERY: u64 = 10;
const ROUNDS: usize = 200;
const REPETITIONS: usize = 5;
const SIZE: u64 = 256;

fn options() -> LoadOptions {
    LoadOptions::ttl(Duration::from_secs(600)).tag("bench")
}

fn key_of(id: &u64) -> BatchKey {
    BatchKey::new(format!("batch:{id}")).tag(format!("row:{id}"))
}

/// Writes every value, then invalidates one id in ten: the state each timed round starts from.
async fn prime(cache: &Cache, ids: &[u64]) {
    let all: Result<Vec<Option<Payload>>, std::io::Error> = cache
        .get_or_load_many(ids, &options(), key_of, |missing| async move {
            Ok(missing
                .into_iter()
                .map(|id| (id, make_payload(SIZE)))
                .collect())
        })
        .await;
    all.expect("primed");
    let gone: Vec<String> = ids
        .iter()
        .filter(|id| *id % MISSING_EVERY == 0)
        .map(|id| format!("batch:{id}"))
        .collect();
    cache.invalidate_many(&gone).await.expect("invalidated");
}

async fn one_batch(cache: &Cache, ids: &[u64]) -> Duration {
    let started = Instant::now();
    let got: Result<Vec<Option<Payload>>, std::io::Error> = cache
        .get_or_load_many(ids, &options(), key_of, |missing| async move {
            Ok(missing
                .into_iter()
                .map(|id| (id, make_payload(SIZE)))
                .collect::<HashMap<_, _>>())
        })
        .await;
    let took = started.elapsed();
    assert_eq!(got.expect("batch").len(), ids.len());
    took
}

async fn single_calls(cache: &Cache, ids: &[u64]) -> Duration {
    let started = Instant::now();
    let calls = ids.iter().map(|&id| async move {
        let o = options().tag(format!("row:{id}"));
        let v: Result<Payload, std::io::Error> = cache
            .get_or_load(&format!("batch:{id}"), &o, || async {
                Ok(make_payload(SIZE))
            })
            .await;
        v.expect("single")
    });
    let got = futures_util::future::join_all(calls).await;
    let took = started.elapsed();
    assert_eq!(got.len(), ids.len());
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .redis(server.url())
        .prefix("b")
        .build()
        .expect("cache");
    let ids: Vec<u64> = (0..IDS).collect();
    let (mut batch, mut single) = (Vec::new(), Vec::new());
    for rep in 0..REPETITIONS {
        let (mut b, mut s) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
        for round in 0..ROUNDS {
            // Alternate which side goes first, so neither always runs on a warmer server.
            let batch_first = (rep + round) % 2 == 0;
            for side in [batch_first, !batch_first] {
                prime(&cache, &ids).await;
                if side {
                    b.push(one_batch(&cache, &ids).await.as_secs_f64() * 1e6);
                } else {
                    s.push(single_calls(&cache, &ids).await.as_secs_f64() * 1e6);
                }
            }
        }
        batch.push(median(&b));
        single.push(median(&s));
    }
    let mut table = Table::new(
        "Batch loads: 100 ids, 10 missing, 256 B values, one redis-server",
        &[
            "row",
            "µs per 100 ids, median (min–max) of repetitions",
            "vs 100 single calls",
        ],
    );
    let ratio = ratios(&single, &batch);
    let (r, lo, hi) = summary(&ratio);
    table.row(vec![
        "`get_or_load_many`".to_owned(),
        cell(&batch, 0),
        format!("{r:.2}× faster [{lo:.2}, {hi:.2}]"),
    ]);
    table.row(vec![
        "100 × `get_or_load`, concurrent".to_owned(),
        cell(&single, 0),
        "1.00×".to_owned(),
    ]);
    table.note(format!(
        "{REPETITIONS} repetitions of {ROUNDS} rounds; each round primes 90 keys and invalidates 10"
    ));
    table.print();
}
