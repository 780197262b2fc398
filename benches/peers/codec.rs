//! Section 7: postcard, serde_json and MessagePack.

use std::hint::black_box;

use cachette_benches::stats::median;
use cachette_benches::table::{Table, cell, size_label};

use crate::REPS;
use crate::timing::time_ns;
use crate::values::{Order, make_order};

/// Runs the section and adds its tables.
pub(crate) async fn run(tables: &mut Vec<Table>) {
    let mut t7 = Table::new(
        "7. Codec: postcard vs serde_json vs MessagePack on a structured value \
         (`Order` with nested `Line`s)",
        &[
            "value (postcard size)",
            "codec",
            "encoded bytes",
            "encode, ns",
            "decode, ns",
        ],
    );
    for target in [256usize, 4096] {
        let order = make_order(target);
        let pc = postcard::to_allocvec(&order).expect("postcard");
        let js = serde_json::to_vec(&order).expect("json");
        // Field names included, as `cached` and most MessagePack users store structs.
        let mp = rmp_serde::to_vec_named(&order).expect("msgpack");
        assert_eq!(pc.len(), target);
        assert_eq!(postcard::from_bytes::<Order>(&pc).expect("pc"), order);
        assert_eq!(serde_json::from_slice::<Order>(&js).expect("js"), order);
        assert_eq!(rmp_serde::from_slice::<Order>(&mp).expect("mp"), order);
        let mut m: [Vec<f64>; 6] = Default::default();
        for rep in 0..REPS {
            for k in 0..6 {
                let i = (rep + k) % 6;
                let ns = match i {
                    0 => time_ns(|| {
                        black_box(postcard::to_allocvec(black_box(&order)).expect("e"));
                    }),
                    1 => time_ns(|| {
                        let v: Order = postcard::from_bytes(black_box(&pc)).expect("d");
                        black_box(v);
                    }),
                    2 => time_ns(|| {
                        black_box(serde_json::to_vec(black_box(&order)).expect("e"));
                    }),
                    3 => time_ns(|| {
                        let v: Order = serde_json::from_slice(black_box(&js)).expect("d");
                        black_box(v);
                    }),
                    4 => time_ns(|| {
                        black_box(rmp_serde::to_vec_named(black_box(&order)).expect("e"));
                    }),
                    _ => time_ns(|| {
                        let v: Order = rmp_serde::from_slice(black_box(&mp)).expect("d");
                        black_box(v);
                    }),
                };
                m[i].push(ns);
            }
        }
        t7.row(vec![
            size_label(target as u64),
            "postcard".into(),
            pc.len().to_string(),
            cell(&m[0], 0),
            cell(&m[1], 0),
        ]);
        t7.row(vec![
            size_label(target as u64),
            "serde_json".into(),
            js.len().to_string(),
            cell(&m[2], 0),
            cell(&m[3], 0),
        ]);
        t7.row(vec![
            size_label(target as u64),
            "MessagePack (rmp-serde, named fields)".into(),
            mp.len().to_string(),
            cell(&m[4], 0),
            cell(&m[5], 0),
        ]);
        t7.note(format!(
            "{}: {} lines; serde_json / postcard: {:.2}× the bytes, \
             {:.2}× the decode time; MessagePack / postcard: {:.2}× the bytes, {:.2}× the \
             decode time.",
            size_label(target as u64),
            order.lines.len(),
            js.len() as f64 / pc.len() as f64,
            median(&m[3]) / median(&m[1]),
            mp.len() as f64 / pc.len() as f64,
            median(&m[5]) / median(&m[1])
        ));
    }
    t7.note(
        "MessagePack is what `cached` stores its Redis values in (so its Redis hits in \
         table 1 include a MessagePack decode)."
            .into(),
    );
    tables.push(t7);
}
