//! The backplane's transport: `PUBLISH`/`SUBSCRIBE` on one server, sharded pub/sub
//! (`SPUBLISH`/`SSUBSCRIBE`) on a cluster, where the channel's slot names one shard: every
//! message and every subscriber meet on that shard's master, in one order, which is what lets
//! a process prove its channel with its own messages.

use bytes::Bytes;
use futures_util::StreamExt;
use redis::PushKind;
use tokio::sync::mpsc;

use super::RedisStore;
use super::connection::Target;
use crate::error::StoreError;

/// A live subscription to one channel.
pub(crate) enum Subscription {
    Single(redis::aio::PubSubStream),
    Cluster {
        // Held for its lifetime: the pushes stop when it is dropped.
        _conn: redis::cluster_async::ClusterConnection,
        pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
    },
}

impl Subscription {
    /// The next message's payload; `None` once the connection is gone (messages may have been
    /// lost: the caller subscribes again and treats everything before as unknown).
    pub async fn next(&mut self) -> Option<Bytes> {
        match self {
            Subscription::Single(stream) => stream
                .next()
                .await
                .map(|m| Bytes::copy_from_slice(m.get_payload_bytes())),
            Subscription::Cluster { pushes, .. } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let Some(redis::Value::BulkString(payload)) = push.data.get(1) {
                            return Some(Bytes::copy_from_slice(payload));
                        }
                    }
                    // The slot moved, or a node connection dropped: what was published
                    // meanwhile is unknown.
                    PushKind::Disconnection | PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                        return None;
                    }
                    _ => {}
                }
            },
        }
    }
}

impl RedisStore {
    /// Publishes `payload` on `channel` (sharded on a cluster), through the breaker and the
    /// command timeout.
    pub(crate) async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), StoreError> {
        let command = if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        self.query::<i64>(redis::cmd(command).arg(channel).arg(payload))
            .await
            .map(|_| ())
    }

    /// A new connection subscribed to `channel`, bounded by the connection timeout.
    pub(crate) async fn subscribe(&self, channel: &str) -> Result<Subscription, StoreError> {
        let limit = self.inner.config.connection_timeout;
        let subscribe = async {
            match &self.inner.target {
                Target::Single(client) => {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(channel).await?;
                    Ok::<_, redis::RedisError>(Subscription::Single(pubsub.into_on_message()))
                }
                Target::Cluster(_, seed) => {
                    let (tx, pushes) = mpsc::unbounded_channel();
                    let client = seed
                        .builder()
                        .use_protocol(redis::ProtocolVersion::RESP3)
                        .push_sender(tx)
                        .build()?;
                    let mut conn = client.get_async_connection().await?;
                    conn.ssubscribe(channel).await?;
                    Ok(Subscription::Cluster {
                        _conn: conn,
                        pushes,
                    })
                }
            }
        };
        match tokio::time::timeout(limit, subscribe).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }
}
