use cachette::invalidate;

#[invalidate(before = true)]
async fn rename(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
