use cachette::cached;

#[cached(key = "square:{n}")]
async fn square(n: u64) -> u64 {
    n * n
}

#[cached(key = "unit:{n}")]
async fn nothing(n: u64) {
    let _ = n;
}

#[cached(key = "vec:{n}")]
async fn list(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(square(12).await, 144);
    assert_eq!(square(12).await, 144);
    nothing(1).await;
    assert_eq!(list(3).await, ["0", "1", "2"]);
}
