use cachette::cached;

#[cached(key = "user:{id}", value_shape = "off")]
async fn get_user(id: u64) -> Option<u64> {
    Some(id)
}

fn main() {}
