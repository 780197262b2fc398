// The function owns its arguments, so stale values are refreshed in a background task; but its
// body holds an `Rc` across an `.await`, so it cannot go to another thread.
use std::rc::Rc;

use cachette::cached;

async fn fetch() {}

#[cached(key = "count:{id}", ttl = "5m")]
async fn count(id: u64) -> Result<u64, std::io::Error> {
    let shared = Rc::new(id);
    fetch().await;
    Ok(*shared)
}

fn main() {}
