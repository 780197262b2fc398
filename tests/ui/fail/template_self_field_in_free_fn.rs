use cachette::cached;

#[cached(key = "{self.tenant}:user:{id}")]
async fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
