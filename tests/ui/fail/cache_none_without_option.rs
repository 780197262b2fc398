use cachette::cached;

#[cached(key = "user:{id}", cache_none = true)]
async fn get_user(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

fn main() {}
