use cachette::invalidate;

#[invalidate(tags = ["users"])]
fn rename(id: u64) {
    let _ = id;
}

fn main() {}
