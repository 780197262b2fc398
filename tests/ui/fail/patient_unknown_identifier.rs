use cachette::healthcare::patient_cache;

#[patient_cache(key = "records:{patient_id}", patient = "patient")]
async fn records(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

fn main() {}
