use cachette::KeyPart;

#[derive(KeyPart)]
enum Lookup {
    ById(u64),
    ByName(String),
}

fn main() {}
