//! `crate = ".."` for a renamed dependency; here the ordinary path, written out.

use cachette::cached;

#[cached(key = "crate_path:{id}", crate = "::cachette")]
async fn load(id: u64) -> u64 {
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(load(1).await, 1);
}
