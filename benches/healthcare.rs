//! What protecting health information costs per call: a `#[patient_cache]` hit (the identifier
//! hashed into the key with HMAC-SHA256, the value opened with AES-256-GCM, an audit event)
//! next to a `#[cached]` hit of the same value, and the same for a write.
//!
//! Run with `cargo bench -p cachette-benches --bench healthcare` (release profile, about
//! 30 s). No criterion, no Redis: both sides use the in-process store, so the difference is the
//! CPU cost of the protection itself, which a Redis round trip (tens of µs) would hide. The
//! audit sink is the default (`tracing` events, with no subscriber installed here).
//!
//! Each repetition runs both sides, alternating which goes first; cells are median (min–max)
//! over the repetitions, and the ratio is computed within each repetition first.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use cachette::healthcare::{HmacIdHasher, Keyring, patient_cache};
use cachette::{Cache, cached};
use cachette_benches::ab::alternate;
use cachette_benches::stats::median;
use cachette_benches::table::cell;

const REPS: usize = 7;
const CALLS: u32 = 200_000;

#[cached(key = "plain:{patient_id}:{size}", ttl = "30m", cache = cache, skip = [cache], compress = false)]
async fn plain(cache: &Cache, patient_id: &str, size: usize) -> Result<String, String> {
    Ok(record(patient_id, size))
}

#[patient_cache(
    key = "sealed:{patient_id}:{size}",
    ttl = "30m",
    patient = "patient_id",
    cache = cache,
    skip = [cache],
    compress = false
)]
async fn sealed(cache: &Cache, patient_id: &str, size: usize) -> Result<String, String> {
    Ok(record(patient_id, size))
}

/// A record of `size` bytes for `patient_id`.
fn record(patient_id: &str, size: usize) -> String {
    let mut s = format!("{patient_id}:");
    while s.len() < size {
        s.push_str("allergy=penicillin;");
    }
    s.truncate(size);
    s
}

fn cache() -> Cache {
    Cache::builder()
        .prefix("bench")
        .sealer(Arc::new(
            Keyring::new([("k1".to_string(), [7; 32])]).expect("a 32-byte key"),
        ))
        .id_hasher(Arc::new(HmacIdHasher::new(&[9; 32]).expect("a hash key")))
        .build()
        .expect("cache")
}

/// ns per call of `calls` runs of `f`.
async fn ns_per_call<F: AsyncFnMut(u32)>(calls: u32, mut f: F) -> f64 {
    let started = Instant::now();
    for i in 0..calls {
        f(i).await;
    }
    started.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cache = cache();
        println!("# healthcare: the cost of sealing, per call (in-process store, one thread)\n");
        println!(
            "Cells: median (min–max) over {REPS} repetitions; hits: {CALLS} calls per side per \
             repetition on one preloaded key; writes: a fresh key per call (a miss that loads, \
             seals and stores).\n"
        );
        println!(
            "| value | operation | `#[cached]`, ns/call | `#[patient_cache]`, ns/call | patient / plain | sealing cost, ns |"
        );
        println!("|---|---|---|---|---|---|");
        for size in [256usize, 4096] {
            // Preload, and check that both sides hit and return the same value.
            let want = record("MRN-1", size);
            assert_eq!(plain(&cache, "MRN-1", size).await.as_ref(), Ok(&want));
            assert_eq!(sealed(&cache, "MRN-1", size).await.as_ref(), Ok(&want));
            let loads = cache.stats().total.loads;

            let (a, b, r) = alternate(
                REPS,
                async || {
                    ns_per_call(CALLS, async |_| {
                        black_box(plain(&cache, black_box("MRN-1"), size).await.ok());
                    })
                    .await
                },
                async || {
                    ns_per_call(CALLS, async |_| {
                        black_box(sealed(&cache, black_box("MRN-1"), size).await.ok());
                    })
                    .await
                },
            )
            .await;
            assert_eq!(cache.stats().total.loads, loads, "every measured call hit");
            let cost: Vec<f64> = a.iter().zip(&b).map(|(a, b)| b - a).collect();
            println!(
                "| {size} B | hit | {} | {} | {} | {:.0} |",
                cell(&a, 0),
                cell(&b, 0),
                cell(&r, 2),
                median(&cost)
            );

            // A fresh key per call: a run counter keeps repetitions apart.
            let writes = CALLS / 20;
            let run = std::cell::Cell::new(0u32);
            let fresh = |i: u32| format!("P{}-{}-{i}", run.get(), size);
            let (a, b, r) = alternate(
                REPS,
                async || {
                    run.set(run.get() + 1);
                    ns_per_call(writes, async |i| {
                        black_box(plain(&cache, &fresh(i), size).await.ok());
                    })
                    .await
                },
                async || {
                    run.set(run.get() + 1);
                    ns_per_call(writes, async |i| {
                        black_box(sealed(&cache, &fresh(i), size).await.ok());
                    })
                    .await
                },
            )
            .await;
            let cost: Vec<f64> = a.iter().zip(&b).map(|(a, b)| b - a).collect();
            println!(
                "| {size} B | miss + write | {} | {} | {} | {:.0} |",
                cell(&a, 0),
                cell(&b, 0),
                cell(&r, 2),
                median(&cost)
            );
        }
        println!(
            "\nChecked: no measured hit loaded (the loads counter did not move), and both \
             sides return the same value."
        );
    });
}
