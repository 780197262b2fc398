use cachette::cached;

#[cached(key = "user:{id}", ttl = 60, ttl = 120)]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
