use cachette::cached;

#[cached("user:{id}")]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
