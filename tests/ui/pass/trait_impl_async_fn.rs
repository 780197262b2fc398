use cachette::cached;

trait Users {
    async fn name(&self, id: u64) -> Result<String, std::io::Error>;
}

struct Db;

impl Users for Db {
    #[cached(key = "trait_impl:name:{id}")]
    async fn name(&self, id: u64) -> Result<String, std::io::Error> {
        Ok(format!("user {id}"))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Db.name(3).await.unwrap(), "user 3");
}
