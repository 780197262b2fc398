use cachette::cached;

#[cached(key = "user:{account}:{page}")]
async fn get_user(user_id: u64, page: u32) -> u64 {
    user_id + u64::from(page)
}

fn main() {}
