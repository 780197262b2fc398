use cachette::cached;

#[cached(key = "user:{id}", ttl = "5m", l1 = "30s")]
async fn get_user(id: u64) -> u64 {
    id
}

#[cached(key = "account:{id}", ttl = 300, l1 = false)]
async fn get_account(id: u64) -> u64 {
    id
}

fn main() {
    let _ = (get_user(1), get_account(2));
}
