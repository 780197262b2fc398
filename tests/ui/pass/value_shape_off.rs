//! `value_shape = false` on every attribute that writes values, the batch form included.

use std::collections::HashMap;

use cachette::healthcare::patient_cache;
use cachette::{cache_put, cached};

#[cached(key = "user:{id}", value_shape = false)]
async fn user(id: u64) -> Result<String, String> {
    Ok(format!("user {id}"))
}

#[cached(key = "user:{id}", batch = "id in ids", value_shape = false)]
async fn users(ids: Vec<u64>) -> HashMap<u64, String> {
    ids.into_iter().map(|id| (id, format!("user {id}"))).collect()
}

#[cache_put(key = "user:{id}", value_shape = false)]
async fn save(id: u64, name: String) -> Result<String, String> {
    Ok(format!("{name} ({id})"))
}

/// The default, written out.
#[cached(key = "order:{id}", value_shape = true)]
async fn order(id: u64) -> u64 {
    id
}

#[patient_cache(key = "patient:records:{patient_id}", patient = "patient_id", value_shape = false)]
async fn records(patient_id: String) -> Result<Vec<String>, String> {
    Ok(vec![patient_id])
}

// Protected functions make every cache of the program require keys; this program only checks
// that they compile.
fn main() {
    let _ = (user, users, save, order, records);
}
