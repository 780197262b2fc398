//! The coherence channel between the L1s of every process sharing a store: one pub/sub
//! channel (`<prefix>__cachette:l1`), numbered messages, and a proof of delivery.
//!
//! - **Publishing.** One task per cache sends what is queued (invalidations, which wait for the
//!   publish, and notices of writes, which do not) in one message, numbered, and at least five
//!   times per propagation bound even with nothing to say.
//! - **Proof.** A process's own message coming back proves that everything the server took
//!   before it has been received too: one channel on one server (on a cluster, one shard's
//!   master) delivers in order. L1 is usable for the propagation bound after the sending of
//!   the last message proven so; without proof (a frozen server, a killed connection, a slot
//!   moved to another master, a slow process) it stops serving.
//! - **Loss.** A dropped subscription, or a message number skipped by any sender, empties L1;
//!   it serves again once a new subscription carried this process's own message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::L1;
use super::message::{Message, Notice};
use crate::cache::Inner;
use crate::error::StoreError;
use crate::store::AnyStore;

/// Notices queued at most; past it, notices of writes are dropped (and counted by the
/// receivers as nothing: a write only makes other copies older, never invalid) and
/// invalidations fail, to be announced again from the backlog.
const QUEUE: usize = 16 * 1024;
/// Notices per message at most.
const BATCH: usize = 512;

struct Outgoing {
    notices: Vec<Notice>,
    done: Option<oneshot::Sender<bool>>,
}

/// The publishing side, owned by the L1; the tasks start on first use inside a runtime, and
/// again in the runtime of a later use when theirs was shut down (a program, or a test suite,
/// may run several runtimes one after the other).
pub(crate) struct Handle {
    channel: String,
    heartbeat: Duration,
    /// The publisher's queue; closed when its task ended with its runtime.
    tx: RwLock<Option<mpsc::Sender<Outgoing>>>,
    /// Whether the publisher runs: checked on every use, so a flag rather than the queue.
    running: Arc<AtomicBool>,
}

/// Held by the publisher task: its end (the runtime shut down, or the cache dropped) lowers
/// the flag, and the next use starts the tasks again.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Handle {
    pub fn new(channel: String, heartbeat: Duration) -> Handle {
        Handle {
            channel,
            heartbeat,
            tx: RwLock::new(None),
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Outgoing>> {
        self.tx
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|tx| !tx.is_closed())
    }

    /// Starts the publisher and the subscriber of `inner`'s cache inside the current runtime,
    /// unless they run already (no runtime: the next use tries again).
    pub fn start(&self, inner: Weak<Inner>) {
        if self.running.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut slot = self.tx.write().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|tx| !tx.is_closed()) {
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        *slot = Some(tx);
        self.running.store(true, Ordering::Release);
        let running = Running(self.running.clone());
        drop(slot);
        // Copies proven by the tasks that ended are unknown from here on.
        with_l1(&inner, L1::suspend);
        runtime.spawn(publish(
            inner.clone(),
            self.channel.clone(),
            self.heartbeat,
            rx,
            running,
        ));
        runtime.spawn(subscribe(inner, self.channel.clone()));
    }

    /// Sends `notices` to every other process and waits until the server took them.
    pub async fn announce(&self, notices: Vec<Notice>, limit: Duration) -> Result<(), StoreError> {
        let (done, taken) = oneshot::channel();
        let out = Outgoing {
            notices,
            done: Some(done),
        };
        let Some(tx) = self.sender() else {
            return Err(StoreError::Backplane);
        };
        if tx.try_send(out).is_err() {
            return Err(StoreError::Backplane);
        }
        match tokio::time::timeout(limit, taken).await {
            Ok(Ok(true)) => Ok(()),
            Ok(_) => Err(StoreError::Backplane),
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }

    /// Queues `notices` for every other process, without waiting.
    pub fn notify(&self, notices: Vec<Notice>) {
        if let Some(tx) = self.sender() {
            let _ = tx.try_send(Outgoing {
                notices,
                done: None,
            });
        }
    }
}

/// The publisher: batches what is queued into numbered messages.
async fn publish(
    inner: Weak<Inner>,
    channel: String,
    heartbeat: Duration,
    mut rx: mpsc::Receiver<Outgoing>,
    _running: Running,
) {
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            out = rx.recv() => match out {
                Some(out) => batch.push(out),
                None => return,
            },
            _ = tick.tick() => {}
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(out) => batch.push(out),
                Err(_) => break,
            }
        }
        let Some(cache) = inner.upgrade() else { return };
        let (AnyStore::Redis(store), Some(l1)) = (&cache.store, &cache.l1) else {
            return;
        };
        seq += 1;
        let message = Message {
            from: l1.id,
            seq,
            sent_ms: crate::clock::now_ms(),
            notices: batch.iter_mut().flat_map(|o| o.notices.drain(..)).collect(),
        };
        let store = store.clone();
        drop(cache);
        let sent = store.publish(&channel, message.encode()).await.is_ok();
        for out in batch {
            if let Some(done) = out.done {
                let _ = done.send(sent);
            }
        }
    }
}

/// The subscriber: applies what other processes announce, proves the channel with this
/// process's own messages, and empties L1 whenever something may have been lost.
async fn subscribe(inner: Weak<Inner>, channel: String) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let store = {
            let Some(cache) = inner.upgrade() else { return };
            let AnyStore::Redis(store) = &cache.store else {
                return;
            };
            store.clone()
        };
        let mut subscription = match store.subscribe(&channel).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(target: "cachette", error = %e, "L1 backplane: cannot subscribe; L1 stays off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        drop(store);
        // Whatever was published before this subscription is unknown here.
        with_l1(&inner, L1::suspend);
        let mut last: HashMap<u64, u64> = HashMap::new();
        loop {
            let payload = tokio::select! {
                p = subscription.next() => p,
                // Nothing for a while: make sure the cache still exists.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if inner.strong_count() == 0 { return }
                    continue;
                }
            };
            let Some(payload) = payload else { break };
            let Some(message) = Message::decode(&payload) else {
                continue;
            };
            let Some(cache) = inner.upgrade() else { return };
            let Some(l1) = &cache.l1 else { return };
            if last
                .insert(message.from, message.seq)
                .is_some_and(|prev| message.seq != prev.wrapping_add(1))
            {
                // A message of this sender was lost (or its publish failed).
                l1.forget_all();
            }
            if message.from == l1.id {
                l1.proven(message.sent_ms);
                continue;
            }
            for notice in &message.notices {
                l1.forget(notice);
                if let Notice::Event { name, payload } = notice {
                    let cache = crate::Cache::from_arc(cache.clone());
                    let (name, payload) = (name.clone(), payload.clone());
                    tokio::spawn(async move { cache.run_rules_of(&name, &payload).await });
                }
            }
        }
        with_l1(&inner, L1::suspend);
        tracing::debug!(target: "cachette", "L1 backplane: subscription lost; L1 is off until it is back");
    }
}

fn with_l1(inner: &Weak<Inner>, f: impl FnOnce(&L1)) {
    if let Some(cache) = inner.upgrade() {
        if let Some(l1) = &cache.l1 {
            f(l1);
        }
    }
}
