use cachette::cached;

#[cached(key = "user:{id}", batch = "id in ids")]
async fn users(ids: Vec<u64>) -> Result<u64, String> {
    Ok(ids.len() as u64)
}

fn main() {}
