use cachette::cached;

#[cached(key = "versioned:{id}", version = 2, compress = 4096)]
async fn versioned(id: u64) -> u64 {
    id
}

#[cached(key = "versioned_str:{id}", version = "2024-01.b", compress = true)]
async fn versioned_str(id: u64) -> u64 {
    id
}

#[cached(key = "uncompressed:{id}", compress = false)]
async fn uncompressed(id: u64) -> u64 {
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(versioned(1).await, 1);
    assert_eq!(versioned_str(2).await, 2);
    assert_eq!(uncompressed(3).await, 3);
}
