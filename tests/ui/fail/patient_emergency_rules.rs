use cachette::healthcare::patient_cache;

#[patient_cache(
    key = "emergency:{patient_id}",
    ttl = "10m",
    stale = "1m",
    fail_safe = "1h",
    emergency = true,
    patient = "patient_id"
)]
async fn emergency(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

fn main() {}
