use cachette::cached;

struct Status;

struct Filter {
    status: Status,
}

#[cached(key = "search:{filter.status:hash}")]
async fn search(filter: Filter) -> u64 {
    let _ = filter;
    1
}

fn main() {}
