use cachette::cached;

/// `stale = "off"`: fresh until expiry, with early refresh instead.
#[cached(key = "user:{id}", ttl = "5m", stale = "off", early = true, beta = 1.5)]
async fn user(id: u64) -> u64 {
    id
}

/// Every freshness argument at once.
#[cached(
    key = "report:{id}",
    ttl = "1h",
    stale = "10m",
    timeout = "2s",
    fail_safe = "1h",
    jitter = 10,
    priority = "low",
)]
async fn report(id: u64) -> Result<String, String> {
    Ok(format!("report {id}"))
}

/// A borrowed argument refreshes in one caller; `refresh = "inline"` asks for that anyway.
#[cached(key = "name:{name}", refresh = "inline")]
async fn greet(name: String) -> String {
    format!("hello {name}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(user(1).await, 1);
    assert_eq!(report(2).await.unwrap(), "report 2");
    assert_eq!(greet("ada".into()).await, "hello ada");
}
