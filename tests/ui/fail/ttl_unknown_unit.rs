use cachette::cached;

#[cached(key = "user:{id}", ttl = "5x")]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
