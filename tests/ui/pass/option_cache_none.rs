use cachette::cached;

#[cached(key = "maybe:{id}", cache_none = true)]
async fn maybe(id: u64) -> Option<String> {
    (id % 2 == 0).then(|| format!("even {id}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(maybe(2).await.as_deref(), Some("even 2"));
    assert_eq!(maybe(3).await, None);
    assert_eq!(maybe(3).await, None);
}
