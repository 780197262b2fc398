use cachette::cached;

struct Path<T>(T);

#[cached]
async fn handler(Path(_): Path<u64>) -> u64 {
    1
}

fn main() {}
