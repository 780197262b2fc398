use cachette::cached;

static CACHE: &str = "not a cache";

#[cached(key = "user:{id}", cache = CACHE)]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
