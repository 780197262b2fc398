//! Section 8: compression through cachette.

use std::collections::BTreeMap;
use std::hint::black_box;

use cachette::Cache;
use cachette_benches::table::{Table, cell, size_label};

use crate::functions::{json_compressed, json_plain};
use crate::timing::time_ns_async;
use crate::values::make_json_text;
use crate::{Bench, HOUR, REPS};

/// Runs the section and adds its tables.
pub(crate) async fn run(
    memory: &Cache,
    sizes_compressed: &BTreeMap<usize, (usize, usize)>,
    tables: &mut Vec<Table>,
) {
    let mut t8 = Table::new(
        "8. Compression through cachette (deflate level 6): JSON text value",
        &[
            "value",
            "stored, compressed / plain, B",
            "payload ratio",
            "write (`Cache::set`, memory), compressed / plain, µs",
            "hit (`#[cached]`, memory), compressed / plain, µs",
            "deflate cost (write difference), µs",
            "inflate cost (hit difference), µs",
        ],
    );
    let mem_comp = Cache::builder().build().expect("memory cache");
    let mem_plain = Cache::builder()
        .compression_threshold(None)
        .build()
        .expect("memory cache");
    for size in [4096usize, 65536] {
        let text = make_json_text(size);
        let c = json_compressed(memory, size).await.expect("json");
        let p = json_plain(memory, size).await.expect("json");
        assert_eq!((c.len(), p.len()), (size, size));
        let mut m: [Vec<f64>; 4] = Default::default();
        for rep in 0..REPS {
            for k in 0..4 {
                let i = (rep + k) % 4;
                let ns = match i {
                    0 => {
                        time_ns_async(|| async {
                            mem_comp
                                .set("peers:json:set", black_box(&text), HOUR)
                                .await
                                .expect("set");
                        })
                        .await
                    }
                    1 => {
                        time_ns_async(|| async {
                            mem_plain
                                .set("peers:json:set", black_box(&text), HOUR)
                                .await
                                .expect("set");
                        })
                        .await
                    }
                    2 => {
                        time_ns_async(|| async {
                            black_box(json_compressed(memory, size).await.expect("hit"));
                        })
                        .await
                    }
                    _ => {
                        time_ns_async(|| async {
                            black_box(json_plain(memory, size).await.expect("hit"));
                        })
                        .await
                    }
                };
                m[i].push(ns / 1e3);
            }
        }
        let (sc, sp) = sizes_compressed[&size];
        t8.row(vec![
            size_label(size as u64),
            format!("{sc} / {sp}"),
            format!("{:.3}", (sc - 32) as f64 / (sp - 32) as f64),
            format!("{} / {}", cell(&m[0], 1), cell(&m[1], 1)),
            format!("{} / {}", cell(&m[2], 1), cell(&m[3], 1)),
            cell(&(0..REPS).map(|i| m[0][i] - m[1][i]).collect::<Vec<_>>(), 1),
            cell(&(0..REPS).map(|i| m[2][i] - m[3][i]).collect::<Vec<_>>(), 1),
        ]);
    }
    t8.note(
        "Stored sizes are `STRLEN` of the entries two `#[cached]` functions (`compress = \
         true` / `compress = false`) wrote to Redis for the same value; payload ratio \
         excludes the 32 B entry header. The value is a `String` of JSON text (user \
         records), postcard-encoded (length prefix + bytes) before deflate. Writes and \
         hits are timed on in-process caches so no network is involved; the differences \
         are the deflate / inflate cost as cachette pays it (flate2 is not a direct \
         dependency, so it is not timed alone)."
            .into(),
    );
    tables.push(t8);
}

/// The stored sizes of one JSON text value, compressed and plain, by value size: `STRLEN` of
/// the entries two `#[cached]` functions wrote to Redis.
pub(crate) async fn stored_sizes(bench: &Bench<'_>) -> BTreeMap<usize, (usize, usize)> {
    let cache = &bench.cache;
    let mut sync_conn = bench.server.conn();
    let mut sizes_compressed = BTreeMap::new();
    for size in [4096usize, 65536] {
        let c = json_compressed(cache, size).await.expect("json");
        let p = json_plain(cache, size).await.expect("json");
        assert_eq!(c, p);
        assert_eq!(c.len(), size);
        let mut lens = Vec::new();
        for key in [
            format!("peers:json:c:{size}"),
            format!("peers:json:p:{size}"),
        ] {
            let stored: Vec<u8> = redis::cmd("GET")
                .arg(&key)
                .query(&mut sync_conn)
                .expect("GET");
            let strlen: usize = redis::cmd("STRLEN")
                .arg(&key)
                .query(&mut sync_conn)
                .expect("STRLEN");
            assert_eq!(strlen, stored.len());
            lens.push((strlen, stored[1] & 0b100 != 0));
        }
        assert!(lens[0].1, "the compress = true entry is deflated");
        assert!(!lens[1].1, "the compress = false entry is not");
        sizes_compressed.insert(size, (lens[0].0, lens[1].0));
    }
    sizes_compressed
}
