use cachette::cached;

#[cached(key = "user:{id}", skip = trace)]
async fn get_user(id: u64, trace: bool) -> u64 {
    let _ = trace;
    id
}

fn main() {}
