use cachette::healthcare::patient_cache;

// A stale or fail-safe value is PHI still held: each retention is under the cap.
#[patient_cache(key = "notes:{patient_id}", ttl = "10m", stale = "20m", compliance = "restricted")]
async fn notes(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

#[patient_cache(key = "records:{patient_id}", ttl = "10m", fail_safe = "30d", compliance = "restricted")]
async fn records(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

#[patient_cache(key = "history:{patient_id}", ttl = "1h", fail_safe = "3h")]
async fn history(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

#[patient_cache(key = "summary:{patient_id}", ttl = "1h", fail_safe = "2d", compliance = "standard")]
async fn summary(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

fn main() {}
