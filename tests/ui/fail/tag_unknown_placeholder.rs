use cachette::cached;

#[cached(key = "user:{id}", tags = ["users", "org:{org_id}"], skip = [org])]
async fn get_user(id: u64, org: u64) -> u64 {
    id + org
}

fn main() {}
