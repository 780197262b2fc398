use std::collections::HashMap;

use cachette::cached;

#[cached(key = "users:all", batch = "id in ids")]
async fn users(ids: Vec<u64>) -> Result<HashMap<u64, String>, String> {
    Ok(ids.into_iter().map(|id| (id, id.to_string())).collect())
}

fn main() {}
