use cachette::{KeyPart, cached};

#[derive(KeyPart)]
struct Id<T>(T);

struct Raw;

#[cached(key = "id:{id}")]
async fn load(id: Id<Raw>) -> u64 {
    let _ = id;
    1
}

fn main() {}
