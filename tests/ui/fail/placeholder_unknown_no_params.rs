use cachette::cached;

#[cached(key = "config:{name}")]
async fn config() -> String {
    String::new()
}

fn main() {}
