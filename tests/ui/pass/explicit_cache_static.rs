use std::sync::LazyLock;

use cachette::{Cache, cached};

static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .prefix("ui")
        .build()
        .expect("a memory cache")
});

#[cached(key = "own_cache:{id}", cache = CACHE)]
async fn load(id: u64) -> u64 {
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(load(4).await, 4);
    assert_eq!(load(4).await, 4);
    assert_eq!(CACHE.stats().total.hits, 1);
}
