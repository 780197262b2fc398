use cachette::cached;

struct Filter {
    status: String,
}

#[cached(key = "search:{filter:hash}")]
async fn search(filter: Filter) -> String {
    filter.status
}

fn main() {}
