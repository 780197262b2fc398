use cachette::cached;

#[cached(key = "user:{id}", ttl = "5 minutes")]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
