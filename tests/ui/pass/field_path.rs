use cachette::cached;

struct User {
    id: u64,
    name: String,
}

struct Pair(u64, u64);

#[cached(key = "greeting:{user.id}")]
async fn greeting(user: &User) -> String {
    format!("hello {}", user.name)
}

#[cached(key = "pair:{pair.0}:{pair.1}")]
async fn sum(pair: Pair) -> u64 {
    pair.0 + pair.1
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let user = User {
        id: 1,
        name: "Ada".to_owned(),
    };
    assert_eq!(greeting(&user).await, "hello Ada");
    assert_eq!(sum(Pair(1, 2)).await, 3);
}
