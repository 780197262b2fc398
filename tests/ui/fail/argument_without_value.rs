use cachette::cached;

#[cached(key = "user:{id}", cache_none)]
async fn get_user(id: u64) -> Option<u64> {
    Some(id)
}

fn main() {}
