use cachette::cached;
use serde::Serialize;

#[derive(Serialize)]
struct Filter {
    status: Vec<String>,
    min_age: Option<u32>,
}

#[cached(key = "search:{page}:{filter:hash}")]
async fn search(filter: Filter, page: u32) -> Vec<u32> {
    vec![page, filter.status.len() as u32]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let filter = Filter {
        status: vec!["active".to_owned()],
        min_age: Some(18),
    };
    assert_eq!(search(filter, 1).await, [1, 1]);
}
