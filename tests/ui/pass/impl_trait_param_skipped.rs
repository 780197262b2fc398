use cachette::cached;

#[cached(key = "report:{id}", skip = [log])]
async fn report(id: u64, log: impl Fn(&str) + Send) -> String {
    log("loading");
    format!("report {id}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(report(1, |_| {}).await, "report 1");
}
