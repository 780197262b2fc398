use cachette::invalidate;

#[invalidate(key = "user:{id}")]
async fn rename(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
