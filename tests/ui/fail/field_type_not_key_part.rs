use cachette::cached;

struct Status;

struct Filter {
    status: Status,
}

#[cached(key = "search:{filter.status}")]
async fn search(filter: Filter) -> u64 {
    let _ = filter;
    1
}

fn main() {}
