use cachette::cached;

#[cached(key = "user:{id}")]
async fn get_user(id: u64) -> impl std::fmt::Display {
    id
}

fn main() {}
