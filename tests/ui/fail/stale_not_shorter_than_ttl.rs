use cachette::cached;

#[cached(key = "user:{id}", ttl = "1m", stale = "5m")]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
