use cachette::cached;

#[cached(key = "user:{id}", version = 1.5)]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
