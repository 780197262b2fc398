//! The values the benchmarks cache: a payload of an exact encoded size, structured orders
//! for the codec rows, and JSON text for the compression rows.

use std::sync::LazyLock;

use cachette_benches::payload::{Payload, TextRng, make_payload};
use serde::{Deserialize, Serialize};

use crate::SIZES;

pub(crate) static PAYLOADS: LazyLock<Vec<Payload>> =
    LazyLock::new(|| SIZES.iter().map(|&s| make_payload(s)).collect());

pub(crate) fn payload(size: u64) -> &'static Payload {
    let i = SIZES
        .iter()
        .position(|&s| s == size)
        .expect("a benchmarked size");
    &PAYLOADS[i]
}

/// A structured value for the codec rows: numbers, booleans, strings, nested records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) id: u64,
    pub(crate) customer: String,
    pub(crate) email: String,
    pub(crate) paid: bool,
    pub(crate) total: f64,
    pub(crate) tags: Vec<String>,
    pub(crate) lines: Vec<Line>,
    pub(crate) note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Line {
    pub(crate) sku: u32,
    pub(crate) name: String,
    pub(crate) qty: u16,
    pub(crate) price_cents: u64,
    pub(crate) discount: Option<f32>,
}

pub(crate) const FIRST: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
pub(crate) const LAST: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
pub(crate) const PRODUCTS: [&str; 6] = [
    "stainless kettle 1.7 l",
    "espresso cups, set of 4",
    "linen tea towel",
    "cast iron pan 28 cm",
    "bamboo cutting board",
    "ceramic teapot",
];

/// An `Order` whose postcard encoding is exactly `target` bytes.
pub(crate) fn make_order(target: usize) -> Order {
    let mut rng = TextRng::new(target as u64);
    let (first, last) = (rng.pick(&FIRST), rng.pick(&LAST));
    let mut order = Order {
        id: 4_000_000_123,
        customer: format!("{first} {last}"),
        email: format!(
            "{}.{}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        paid: true,
        total: 0.0,
        tags: vec!["priority".into(), "gift".into()],
        lines: Vec::new(),
        note: String::new(),
    };
    loop {
        let line = Line {
            sku: 100_000 + (rng.next() % 900_000) as u32,
            name: rng.pick(&PRODUCTS).to_owned(),
            qty: 1 + (rng.next() % 5) as u16,
            price_cents: 199 + rng.next() % 20_000,
            discount: (rng.next() % 3 == 0).then_some(0.15),
        };
        order.lines.push(line);
        if postcard::to_allocvec(&order).expect("encodes").len() + 60 > target {
            order.lines.pop();
            break;
        }
    }
    order.total = order
        .lines
        .iter()
        .map(|l| l.price_cents as f64 * f64::from(l.qty) / 100.0)
        .sum();
    let base = postcard::to_allocvec(&order).expect("encodes").len();
    for pad in 0..200 {
        order.note = "leave at the door, ring twice. "
            .chars()
            .cycle()
            .take(target.saturating_sub(base) + pad)
            .collect();
        order
            .note
            .truncate(target.saturating_sub(base).saturating_sub(pad / 2));
        let len = postcard::to_allocvec(&order).expect("encodes").len();
        if len == target {
            return order;
        }
    }
    panic!("could not size an order to {target} bytes");
}

/// JSON text of user records (an API response body), exactly `target` bytes.
pub(crate) fn make_json_text(target: usize) -> String {
    #[derive(Serialize)]
    struct User<'a> {
        id: u64,
        name: String,
        email: String,
        active: bool,
        roles: [&'a str; 2],
        created_at: String,
        score: f64,
    }
    let mut rng = TextRng::new(7 + target as u64);
    let mut users = Vec::new();
    let mut out = String::new();
    while out.len() < target {
        let (first, last) = (rng.pick(&FIRST), rng.pick(&LAST));
        users.push(User {
            id: 10_000 + rng.next() % 90_000,
            name: format!("{first} {last}"),
            email: format!(
                "{}.{}{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                rng.next() % 100
            ),
            active: rng.next() % 4 != 0,
            roles: [
                rng.pick(&["reader", "editor", "admin"]),
                rng.pick(&["billing", "support", "ops"]),
            ],
            created_at: format!(
                "2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                1 + rng.next() % 12,
                1 + rng.next() % 28,
                rng.next() % 24,
                rng.next() % 60,
                rng.next() % 60
            ),
            score: (rng.next() % 10_000) as f64 / 100.0,
        });
        out = serde_json::to_string(&users).expect("serializes");
    }
    out.truncate(target);
    out
}
