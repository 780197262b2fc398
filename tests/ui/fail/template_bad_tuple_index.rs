use cachette::cached;

#[cached(key = "pair:{pair.01}")]
async fn first(pair: (u64, u64)) -> u64 {
    pair.0
}

fn main() {}
