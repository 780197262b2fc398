//! A generic newtype renders when its type parameter does.

use cachette::{KeyPart, cached};

#[derive(KeyPart)]
struct Tenant<T>(T);

#[derive(KeyPart)]
struct Wrapper<'a, T: ?Sized> {
    inner: &'a T,
}

#[cached(key = "generic_id:{tenant}:{name}")]
async fn load(tenant: Tenant<u64>, name: Wrapper<'static, str>) -> String {
    format!("{}:{}", tenant.0, name.inner)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let name = Wrapper { inner: "ada" };
    assert_eq!(load(Tenant(1), name).await, "1:ada");
}
