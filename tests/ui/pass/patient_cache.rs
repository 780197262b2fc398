use cachette::healthcare::{invalidate_patient_cache, patient_cache};

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Records(Vec<String>);

#[patient_cache(
    key = "patient:records:{patient_id}:{clinic_id}",
    ttl = "30m",
    compliance = "sensitive",
    tags = ["patient_records"],
    patient = "patient_id",
    clinic = "clinic_id",
)]
async fn patient_records(patient_id: String, clinic_id: String) -> Result<Records, String> {
    Ok(Records(vec![format!("{patient_id}@{clinic_id}")]))
}

#[patient_cache(key = "patient:emergency:{patient_id}", ttl = "5m", emergency = true, patient = "patient_id")]
async fn emergency(patient_id: String) -> Result<Records, String> {
    Ok(Records(vec![patient_id]))
}

#[invalidate_patient_cache(patterns = ["patient:records:{patient_id}:*"], patient = "patient_id")]
async fn update_patient(patient_id: String) -> Result<(), String> {
    let _ = patient_id;
    Ok(())
}

// Protected functions make every cache of the program require keys; this program only checks
// that they compile.
fn main() {
    let _ = (patient_records, emergency, update_patient);
}
