use cachette::cached;

#[cached(key = "user:{id}", tags = [users])]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
