use cachette::healthcare::patient_cache;

#[patient_cache(key = "records:{patient_id}", patient = "patient_id", compliance = "secret")]
async fn records(patient_id: String) -> Result<String, String> {
    Ok(patient_id)
}

fn main() {}
