use cachette::cached;

struct NotSerde {
    id: u64,
}

#[cached(key = "user:{id}")]
async fn get_user(id: u64) -> NotSerde {
    NotSerde { id }
}

fn main() {}
