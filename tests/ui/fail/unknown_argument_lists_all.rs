use cachette::cached;

#[cached(key = "user:{id}", expires_after = 5)]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
