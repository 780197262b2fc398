use cachette::cached;

#[cached(key = "user:{id}", ttl = 18446744073709551615)]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
