//! Without `key`, every named parameter is part of the default key.

use cachette::cached;

#[cached]
async fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[cached(ttl = 60, skip = [trace])]
async fn with_skip(a: u64, trace: bool) -> u64 {
    let _ = trace;
    a
}

#[cached]
async fn no_params() -> String {
    "constant".to_owned()
}

#[cached]
async fn wildcard(a: u64, _: u64) -> u64 {
    a
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(add(1, 2).await, 3);
    assert_eq!(with_skip(1, true).await, 1);
    assert_eq!(no_params().await, "constant");
    assert_eq!(wildcard(5, 6).await, 5);
}
