use cachette::cached;

#[cached(key = "user:{id}")]
async fn get_user(id: u64, include_deleted: bool) -> u64 {
    if include_deleted { id } else { 0 }
}

fn main() {}
