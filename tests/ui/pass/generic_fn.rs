use cachette::{KeyPart, cached};

#[cached(key = "generic:{id}")]
async fn describe<K: KeyPart + std::fmt::Display + Send>(id: K) -> String {
    format!("item {id}")
}

#[cached(key = "generic_where:{id}")]
async fn describe_where<K>(id: K) -> Option<String>
where
    K: KeyPart + std::fmt::Display,
{
    Some(id.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(describe(7u32).await, "item 7");
    assert_eq!(describe("seven").await, "item seven");
    assert_eq!(describe_where(-1i64).await.as_deref(), Some("-1"));
}
