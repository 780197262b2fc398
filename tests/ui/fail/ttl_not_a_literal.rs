use cachette::cached;

const FIVE_MINUTES: u64 = 300;

#[cached(key = "user:{id}", ttl = FIVE_MINUTES)]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
