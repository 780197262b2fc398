use cachette::healthcare::{invalidate_patient_cache, patient_cache};

// `pgae` is misspelt: `page` would stay hashed, and `plain` would protect nothing.
#[patient_cache(key = "records:{patient_id}:page:{page}", plain = [pgae])]
async fn records(patient_id: String, page: u32) -> Result<String, String> {
    Ok(format!("{patient_id}:{page}"))
}

#[invalidate_patient_cache(patterns = ["records:{patient_id}:*"], plain = [clinic_id])]
async fn amend(patient_id: String, clinic_id: String) -> Result<(), String> {
    let _ = (patient_id, clinic_id);
    Ok(())
}

fn main() {}
