use std::collections::HashMap;

use cachette::cached;

#[cached(key = "user:{id}", batch = "id in ids")]
async fn users(ids: u64) -> Result<HashMap<u64, String>, String> {
    Ok(HashMap::from([(ids, String::new())]))
}

fn main() {}
