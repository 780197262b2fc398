use std::collections::HashMap;

use cachette::cached;

#[cached(key = "user:{id}", batch = "ids")]
async fn users(ids: Vec<u64>) -> Result<HashMap<u64, String>, String> {
    Ok(ids.into_iter().map(|id| (id, id.to_string())).collect())
}

#[cached(key = "user:{id}", batch = "id in idz")]
async fn users_misspelt(ids: Vec<u64>) -> Result<HashMap<u64, String>, String> {
    Ok(ids.into_iter().map(|id| (id, id.to_string())).collect())
}

fn main() {}
