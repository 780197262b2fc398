use cachette::{KeyPart, cached};

#[derive(KeyPart)]
struct UserId(u64);

#[derive(KeyPart)]
struct OrgId {
    raw: String,
}

#[derive(KeyPart)]
enum Region {
    Eu,
    Us,
}

#[cached(key = "derived:{org}:{user}:{region}")]
async fn load(org: OrgId, user: UserId, region: Region) -> String {
    let region = match region {
        Region::Eu => "eu",
        Region::Us => "us",
    };
    format!("{}/{}/{region}", org.raw, user.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let org = OrgId {
        raw: "acme".to_owned(),
    };
    assert_eq!(load(org, UserId(7), Region::Eu).await, "acme/7/eu");
    let _ = Region::Us;
}
