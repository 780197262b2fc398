use std::collections::HashMap;

use cachette::cached;

#[cached(
    key = "user:{id}",
    batch = "id in ids",
    timeout = "1s",
    fail_safe = "1h",
    refresh = "inline",
    l1 = "10s"
)]
async fn users(ids: Vec<u64>) -> Result<HashMap<u64, String>, String> {
    Ok(ids.into_iter().map(|id| (id, id.to_string())).collect())
}

#[cached(key = "user:{id}", batch = "id in ids", cache_none = true)]
async fn maybe_users(ids: Vec<u64>) -> Result<Vec<Option<String>>, String> {
    Ok(ids.into_iter().map(|id| Some(id.to_string())).collect())
}

fn main() {}
