use cachette::cached;

#[cached(key = "a:{id}", jitter = 150, priority = "urgent", refresh = "sometimes")]
async fn a(id: u64) -> u64 {
    id
}

#[cached(key = "b:{id}", beta = 2.0)]
async fn b(id: u64) -> u64 {
    id
}

fn main() {}
