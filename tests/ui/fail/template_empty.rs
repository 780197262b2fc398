use cachette::cached;

#[cached(key = "")]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
