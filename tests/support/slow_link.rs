//! A loopback proxy that delays a `redis-server`'s replies in spells, keeping their order: for
//! histories whose reads must spend a while in transit. A reply held on its way is the window
//! in which another process's invalidation completes after a read was sent and before its
//! callers are served; on loopback without it, that window is a few microseconds wide and a
//! cache that lets late callers share a read sent before they arrived goes unnoticed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::rng::Rng;

/// A proxy in front of one server; `spells` counts the spells of delayed replies so far.
pub struct SlowLink {
    pub url: String,
    pub spells: Arc<AtomicU64>,
}

impl SlowLink {
    /// A proxy to the server on loopback port `upstream`, on a free loopback port. Until
    /// `until`, every 100 to 400 ms a spell of 20 to 300 ms delays each reply by the same 0.5
    /// to 10 ms (the spell's, drawn from `rng`), well under a command timeout of 50 ms.
    /// Requests pass at once. A connection closed by either side is closed on the other.
    pub async fn start(upstream: u16, mut rng: Rng, until: Instant) -> SlowLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the slow link's port");
        let url = format!(
            "redis://{}",
            listener.local_addr().expect("the slow link's address")
        );
        let delay_us = Arc::new(AtomicU64::new(0));
        let spells = Arc::new(AtomicU64::new(0));
        let (delay, counted) = (delay_us.clone(), spells.clone());
        tokio::spawn(async move {
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(100 + rng.below(300))).await;
                counted.fetch_add(1, SeqCst);
                delay.store(500 + rng.below(9_500), SeqCst);
                tokio::time::sleep(Duration::from_millis(20 + rng.below(280))).await;
                delay.store(0, SeqCst);
            }
        });
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(
                    async move { tokio::io::copy(&mut from_client, &mut to_server).await },
                );
                // Replies queue with the time they may go; one writer sends them in order.
                let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel();
                let delay = delay_us.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                        let due =
                            tokio::time::Instant::now() + Duration::from_micros(delay.load(SeqCst));
                        if queue.send((due, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    while let Some((due, bytes)) = queued.recv().await {
                        tokio::time::sleep_until(due).await;
                        if to_client.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    // The server closed: so does the client's side, once every reply is out.
                    let _ = to_client.shutdown().await;
                });
            }
        });
        SlowLink { url, spells }
    }
}
