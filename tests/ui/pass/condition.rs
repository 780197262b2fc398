use cachette::cached;

#[cached(key = "cond:{id}", condition = id > 0)]
async fn load(id: i64) -> i64 {
    id + 1
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(load(0).await, 1);
    assert_eq!(load(5).await, 6);
}
