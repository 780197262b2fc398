use cachette::cached;

struct Repo;

impl Repo {
    #[cached(key = "repo:{self}:{id}")]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
