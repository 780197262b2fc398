use cachette::cached;

struct User {
    id: u64,
}

#[cached(key = "user:{user.idd}")]
async fn greet(user: User) -> u64 {
    user.id
}

fn main() {}
