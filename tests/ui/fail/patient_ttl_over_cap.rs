use cachette::healthcare::patient_cache;

#[patient_cache(key = "records:{patient_id}", ttl = "4h", patient = "patient_id")]
async fn records(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

#[patient_cache(key = "notes:{patient_id}", ttl = "1h", compliance = "restricted", patient = "patient_id")]
async fn notes(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

fn main() {}
