use cachette::KeyPart;

#[derive(KeyPart)]
#[cachette(krate = "my_cachette")]
struct UnknownArgument(u64);

#[derive(KeyPart)]
#[cachette(crate = "not a path")]
struct NotAPath(u64);

#[derive(KeyPart)]
#[cachette(crate = "cachette", crate = "cachette")]
struct Twice(u64);

fn main() {}
