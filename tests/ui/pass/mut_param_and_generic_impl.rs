use cachette::{KeyPart, cached};

struct Repo<T> {
    prefix: T,
}

impl<T: KeyPart + std::fmt::Display + Send + Sync> Repo<T> {
    #[cached(key = "repo:{self.prefix}:{n}")]
    async fn count_down(&self, mut n: u32) -> String {
        let mut out = self.prefix.to_string();
        while n > 0 {
            out.push_str(&n.to_string());
            n -= 1;
        }
        out
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let repo = Repo { prefix: "r" };
    assert_eq!(repo.count_down(3).await, "r321");
}
