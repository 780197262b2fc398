use cachette::cached;

#[cached(key = "user:{usr_id}", ttl = "1m", stale = "5m", skip = [trace])]
async fn get_user(user_id: u64, page: u32) -> u64 {
    user_id + u64::from(page)
}

fn main() {}
