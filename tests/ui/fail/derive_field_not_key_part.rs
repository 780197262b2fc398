use cachette::KeyPart;

struct Raw;

#[derive(KeyPart)]
struct Id(Raw);

fn main() {}
