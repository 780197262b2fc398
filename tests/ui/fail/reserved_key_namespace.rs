use cachette::cached;

#[cached(key = "__cachette:tag:{id}")]
async fn sneaky(id: u64) -> u64 {
    id
}

fn main() {}
