use cachette::cache_put;

#[cache_put(ttl = "5m")]
async fn save(id: u64) -> u64 {
    id
}

fn main() {}
