use cachette::cached;

#[cached(key = "user")]
struct User;

fn main() {}
