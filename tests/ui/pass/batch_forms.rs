//! The forms a batch function takes: a `Vec` or a slice of ids, a map or one `Option` per id,
//! in a `Result` or not, with other parameters in the key and per-item tags.

use std::collections::{BTreeMap, HashMap};

use cachette::cached;

#[cached(key = "user:{id}", batch = "id in ids", ttl = "5m", tags = ["users", "user:{id}"])]
async fn users(ids: Vec<u64>) -> Result<HashMap<u64, String>, std::io::Error> {
    Ok(ids.into_iter().map(|id| (id, format!("user {id}"))).collect())
}

#[cached(key = "tenant:{tenant}:user:{id}", batch = "id in ids")]
async fn tenant_users(tenant: &str, ids: &[u64]) -> BTreeMap<u64, String> {
    ids.iter().map(|id| (*id, format!("{tenant} {id}"))).collect()
}

#[cached(key = "name:{name}", batch = "name in names")]
async fn lengths(names: &Vec<String>) -> Vec<Option<usize>> {
    names.iter().map(|n| (!n.is_empty()).then_some(n.len())).collect()
}

#[cached(key = "row:{id}", batch = "id in ids")]
async fn rows(ids: Vec<u32>) -> Result<Vec<Option<u32>>, String> {
    Ok(ids.into_iter().map(|id| (id % 2 == 0).then_some(id)).collect())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(users(vec![1, 2]).await.unwrap().len(), 2);
    assert_eq!(tenant_users("acme", &[3, 1]).await[&3], "acme 3");
    let names = vec!["ab".to_owned(), String::new(), "ab".to_owned()];
    assert_eq!(lengths(&names).await, [Some(2), None, Some(2)]);
    assert_eq!(rows(vec![2, 1, 2]).await.unwrap(), [Some(2), None, Some(2)]);
}
