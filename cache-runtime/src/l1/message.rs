//! What crosses the backplane: one message per publish, from one process, numbered.

use serde::{Deserialize, Serialize};

/// One publish: a batch of notices from process `from`, the `seq`-th it sent. A receiver that
/// sees a number skipped knows it lost a message and empties its L1.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Message {
    pub from: u64,
    pub seq: u64,
    /// When it was sent, by the sender's wall clock (unix ms): the sender's own copy, coming
    /// back, proves the channel carried everything published before it.
    pub sent_ms: u64,
    pub notices: Vec<Notice>,
}

/// What changed in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Notice {
    /// These full keys were invalidated or written.
    Keys(Vec<String>),
    /// These tags were invalidated.
    Tags(Vec<String>),
    /// Keys matching these glob patterns (prefix included) were deleted; `clear` is the
    /// prefix followed by `*`.
    Patterns(Vec<String>),
    /// An event was emitted: each process runs its own rules for it.
    Event { name: String, payload: String },
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        // A message is plain data: serializing it cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Message> {
        postcard::from_bytes(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let m = Message {
            from: 7,
            seq: 3,
            sent_ms: 1_700_000_000_000,
            notices: vec![
                Notice::Keys(vec!["app:user:1".into()]),
                Notice::Tags(vec!["users".into()]),
                Notice::Patterns(vec!["app:user:\\*:*".into()]),
                Notice::Event {
                    name: "user.updated".into(),
                    payload: "{\"id\":1}".into(),
                },
            ],
        };
        let back = Message::decode(&m.encode()).unwrap();
        assert_eq!((back.from, back.seq, back.sent_ms), (7, 3, m.sent_ms));
        assert_eq!(back.notices, m.notices);
        assert!(Message::decode(b"\xff\xff\xff").is_none());
    }
}
