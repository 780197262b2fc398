use cachette::cached;

#[cached(key = "pair:{a}{b}")]
async fn pair(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {}
