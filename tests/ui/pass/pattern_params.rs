//! Parameters written as patterns: the names they bind can be used in the key.

use cachette::cached;

/// Like axum's extractor.
struct Path<T>(T);

#[cached(key = "point:{x}:{y}")]
async fn point((x, y): (i32, i32)) -> String {
    format!("{x},{y}")
}

#[cached(key = "path:{id}")]
async fn handler(Path(id): Path<u64>) -> Result<u64, std::io::Error> {
    Ok(id * 2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(point((1, -2)).await, "1,-2");
    assert_eq!(handler(Path(21)).await.unwrap(), 42);
}
