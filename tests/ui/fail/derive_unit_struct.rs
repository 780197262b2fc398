use cachette::KeyPart;

#[derive(KeyPart)]
struct Marker;

fn main() {}
