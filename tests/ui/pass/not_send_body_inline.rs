// A body that is not `Send` is cached with `refresh = "inline"`.
use std::rc::Rc;

use cachette::cached;

async fn fetch() {}

#[cached(key = "count:{id}", ttl = "5m", refresh = "inline")]
async fn count(id: u64) -> Result<u64, std::io::Error> {
    let shared = Rc::new(id);
    fetch().await;
    Ok(*shared)
}

fn main() {}
