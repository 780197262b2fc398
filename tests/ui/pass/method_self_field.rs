use cachette::cached;

struct Repo {
    tenant: String,
}

impl Repo {
    #[cached(key = "{self.tenant}:user:{id}", ttl = "5m")]
    async fn user_name(&self, id: u64) -> Result<String, std::io::Error> {
        Ok(format!("{}/{id}", self.tenant))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let repo = Repo {
        tenant: "acme".to_owned(),
    };
    assert_eq!(repo.user_name(1).await.unwrap(), "acme/1");
    assert_eq!(repo.user_name(1).await.unwrap(), "acme/1");
}
