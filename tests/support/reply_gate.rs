//! A loopback proxy that holds a `redis-server`'s replies back on demand, for tests of what a
//! cache does with a read that the server answered before something else happened; and a value
//! that counts its decodings, for tests of which callers decode what they read.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use cachette::{Cache, CacheBuilder};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::RedisServer;

/// A proxy to a `redis-server` that forwards requests at once and holds the server's replies
/// back while `hold` is set; `held` counts the reply bytes waiting.
pub struct ReplyGate {
    pub url: String,
    pub hold: tokio::sync::watch::Sender<bool>,
    pub held: Arc<AtomicUsize>,
}

impl ReplyGate {
    /// A gate in front of `server`, on a free loopback port.
    pub async fn start(server: &RedisServer) -> ReplyGate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let (hold, open) = tokio::sync::watch::channel(false);
        let held = Arc::new(AtomicUsize::new(0));
        let (port, counted) = (server.port(), held.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = upstream.into_split();
                tokio::spawn(
                    async move { tokio::io::copy(&mut from_client, &mut to_server).await },
                );
                let (mut open, held) = (open.clone(), counted.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                        held.fetch_add(n, SeqCst);
                        let _ = open.wait_for(|hold| !*hold).await;
                        held.fetch_sub(n, SeqCst);
                        if to_client.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        ReplyGate { url, hold, held }
    }

    /// The cache `builder` makes, on Redis through this gate.
    pub fn cache(&self, builder: CacheBuilder) -> Cache {
        builder.redis(self.url.clone()).build().unwrap()
    }

    /// Until a reply is held back.
    pub async fn until_held(&self) {
        while self.held.load(SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// How often [`Decodes`] values are decoded by twenty callers of `call` that arrive while
    /// the reply to a first caller's read of the same key is held back (after a call that
    /// loaded and stored the value). Every caller must get the value, and all but the load be
    /// hits. On a current-thread runtime, so that every caller behind has joined the read in
    /// flight before the reply is let through.
    pub async fn decodings_behind_a_held_read<F, Fut>(&self, cache: &Cache, call: F) -> u64
    where
        F: Fn(Cache) -> Fut,
        Fut: Future<Output = Result<Decodes, std::io::Error>> + Send + 'static,
    {
        let value = call(cache.clone()).await.unwrap();
        self.hold.send_replace(true);
        let first = tokio::spawn(call(cache.clone()));
        self.until_held().await;
        let before = DECODED.load(SeqCst);
        let behind: Vec<_> = (0..20).map(|_| tokio::spawn(call(cache.clone()))).collect();
        // One thread: every caller behind runs until it waits for the read in flight.
        tokio::task::yield_now().await;
        self.hold.send_replace(false);
        assert_eq!(first.await.unwrap().unwrap(), value);
        for caller in behind {
            assert_eq!(caller.await.unwrap().unwrap(), value);
        }
        let total = cache.stats().total;
        assert_eq!(
            (total.hits, total.misses),
            (21, 1),
            "the load, then 21 hits"
        );
        DECODED.load(SeqCst) - before
    }
}

/// Counts how often a [`Decodes`] value is decoded, in this test binary.
pub static DECODED: AtomicU64 = AtomicU64::new(0);

/// A value that counts its decodings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decodes(pub u64);

impl<'de> serde::Deserialize<'de> for Decodes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DECODED.fetch_add(1, SeqCst);
        u64::deserialize(d).map(Decodes)
    }
}
