use cachette::cached;

#[cached(key = "user:{id}", ttl = "2h", stale = "1.5h")]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
