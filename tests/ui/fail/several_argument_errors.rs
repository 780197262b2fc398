use cachette::cached;

#[cached(key = user, tll = 5, ttl = "1.5h", compress = "yes", ttl = 60)]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
