use cachette::cached;

trait Users {
    #[cached(key = "user:{id}")]
    async fn name(&self, id: u64) -> String;
}

fn main() {}
