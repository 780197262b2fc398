use cachette::cache_put;

#[cache_put(key = "user:{id}", l1 = "10s")]
async fn save_user(id: u64) -> u64 {
    id
}

fn main() {}
