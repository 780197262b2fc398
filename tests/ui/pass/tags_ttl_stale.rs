use cachette::cached;

#[cached(
    key = "post:{id}",
    ttl = "1h30m",
    stale = "10m",
    tags = ["posts", "author:{author}"],
    skip = [author],
)]
async fn post(id: u64, author: &str) -> Result<String, std::io::Error> {
    Ok(format!("post {id} by {author}"))
}

#[cached(key = "short:{id}", ttl = 300, stale = "500ms")]
async fn short(id: u64) -> u64 {
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(post(1, "ada").await.unwrap(), "post 1 by ada");
    assert_eq!(short(1).await, 1);
}
