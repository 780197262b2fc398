//! A parameter named with a raw identifier is written without `r#` in templates and with or
//! without it in `skip`.

use cachette::cached;

#[cached(key = "kind:{type}", skip = [r#match])]
async fn kind(r#type: u64, r#match: bool) -> u64 {
    if r#match { r#type } else { 0 }
}

#[cached(skip = [r#ref])]
async fn default_key(r#type: u64, r#ref: &str) -> String {
    format!("{type}{ref}", type = r#type, ref = r#ref)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(kind(3, true).await, 3);
    assert_eq!(default_key(1, "a").await, "1a");
}
