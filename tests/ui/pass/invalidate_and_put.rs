use cachette::{cache_put, cached, invalidate};

#[cached(key = "user:{id}", tags = ["users"])]
async fn user(id: u64) -> Result<String, String> {
    Ok(format!("user {id}"))
}

/// Globs are allowed in patterns; arguments in them are escaped.
#[invalidate(keys = ["user:{id}"], patterns = ["user:{id}:*", "search:*"], tags = ["users"], before = true)]
async fn rename(id: u64, name: String) -> Result<(), String> {
    let _ = name;
    Ok(())
}

/// No `Result`: always invalidates.
#[invalidate(tags = ["users"])]
async fn touch_all() {}

/// The reader's tags: an entry is served only with the tags it was written with.
#[cache_put(key = "user:{id}", ttl = "5m", tags = ["users"])]
async fn save(id: u64, name: String) -> Result<String, String> {
    Ok(format!("{name} ({id})"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(user(1).await.unwrap(), "user 1");
    rename(1, "x".into()).await.unwrap();
    touch_all().await;
    assert_eq!(save(1, "ada".into()).await.unwrap(), "ada (1)");
    assert_eq!(user(1).await.unwrap(), "ada (1)");
}
