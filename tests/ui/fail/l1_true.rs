use cachette::cached;

#[cached(key = "user:{id}", l1 = true)]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
