use cachette::cached;

#[cached(key = "a:{id}", timeout = 0)]
async fn a(id: u64) -> u64 {
    id
}

fn main() {}
