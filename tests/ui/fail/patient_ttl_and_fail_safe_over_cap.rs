use cachette::healthcare::patient_cache;

// A fail-safe value is held past its ttl: the two together stay under the cap (2 h for the
// default `sensitive` data), though each is under it alone.
#[patient_cache(key = "history:{patient_id}", ttl = "90m", fail_safe = "1h")]
async fn history(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

fn main() {}
