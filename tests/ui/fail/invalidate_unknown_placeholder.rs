use cachette::invalidate;

#[invalidate(keys = ["user:{idd}"], patterns = ["user:{uid}:*"])]
async fn rename(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
