//! Single flight: concurrent callers of one key in a process share one load.
//!
//! The first caller of a key becomes its *leader* and loads; the others *follow* and wait for
//! what it publishes: the encoded entry it wrote (each follower decodes its own copy, so values
//! need not be `Clone`), the outcome itself when it can be cloned (errors included), or
//! `Retry` when it had nothing to share or was cancelled. A follower that sees `Retry` starts
//! over, and one of them becomes the next leader: a caller that is cancelled never cancels the
//! load for the others, and a failing load is retried one caller at a time, not by all at once.
//!
//! A flight whose leader found nothing to serve is *cold*: callers of the key that arrive
//! while it runs do not read the key first (it would only say "nothing" a thousand times in a
//! stampede); they wait for the flight to end, then share one read, sent by the first of them
//! after the flight's end and so after every one of them arrived: it is as good as the read
//! each would have sent.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

/// What a leader hands its followers, each with `B`: the state of the key the leader's load
/// started from, so that a follower can tell whether it holds for the state the follower read
/// (a follower that read a newer state, such as a tombstone, must not take an older result).
#[derive(Clone)]
pub(crate) enum Published<B> {
    /// The entry the leader wrote (or would have written).
    Entry(Bytes, B),
    /// The outcome itself, for outcomes that are not stored but can be cloned.
    Outcome(Arc<dyn Any + Send + Sync>, B),
    /// Nothing to share: load again.
    Retry,
}

/// One key's flight: what its leader publishes, and the read the callers that waited for it
/// before reading share afterwards.
pub(crate) struct Flight<B> {
    tx: watch::Sender<Option<Published<B>>>,
    /// The leader found nothing to serve (see the module documentation).
    cold: bool,
    /// The shared read: the tags it fetched the versions of, and the read (`None`: the store
    /// could not be read).
    reread: tokio::sync::OnceCell<(Box<[String]>, Option<B>)>,
}

impl<B: Clone> Flight<B> {
    /// Waits for the leader's result to be published (or for the leader to vanish).
    pub(crate) async fn ended(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// What the leader published, once it has.
    pub(crate) fn published(&self) -> Option<Published<B>> {
        self.tx.borrow().clone()
    }

    /// The read shared by the callers that waited for this flight: sent once, by the first
    /// caller to ask after the flight [`ended`](Self::ended).
    pub(crate) async fn reread<F>(&self, read: F) -> &(Box<[String]>, Option<B>)
    where
        F: std::future::Future<Output = (Box<[String]>, Option<B>)>,
    {
        self.reread.get_or_init(|| read).await
    }
}

/// The flights of one cache.
pub(crate) struct Flights<B> {
    by_key: Mutex<HashMap<String, Arc<Flight<B>>>>,
    /// The order of reads in this process, handed out by [`Flights::ticket`].
    order: AtomicU64,
    /// Cold flights running now: while there are none, a call looks up no flight before it
    /// reads (a hit pays one atomic load for this).
    cold: AtomicUsize,
}

impl<B> Default for Flights<B> {
    fn default() -> Self {
        Flights {
            by_key: Mutex::default(),
            order: AtomicU64::new(1),
            cold: AtomicUsize::new(0),
        }
    }
}

impl<B> Flights<B> {
    /// A number larger than every one handed out before: taken before a read, it tells a
    /// follower whether its leader's read began after the follower's call did (then the
    /// leader's result is at least as new as anything the follower is owed).
    pub(crate) fn ticket(&self) -> u64 {
        self.order.fetch_add(1, Ordering::SeqCst)
    }
}

/// A caller's role in the flight of its key.
pub(crate) enum Role<B: Clone> {
    /// Load, then [`Leader::publish`].
    Leader(Leader<B>),
    /// Wait for the leader's result.
    Follower(watch::Receiver<Option<Published<B>>>),
}

impl<B: Clone> Flights<B> {
    /// Joins the flight of `key`, leading it if there is none; a new flight is `cold` when
    /// its leader found nothing to serve.
    pub(crate) fn join(self: &Arc<Self>, key: &str, cold: bool) -> Role<B> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = by_key.get(key) {
            return Role::Follower(flight.tx.subscribe());
        }
        let flight = Arc::new(Flight {
            tx: watch::channel(None).0,
            cold,
            reread: tokio::sync::OnceCell::new(),
        });
        by_key.insert(key.to_owned(), flight.clone());
        if cold {
            self.cold.fetch_add(1, Ordering::SeqCst);
        }
        Role::Leader(Leader {
            flights: self.clone(),
            key: key.to_owned(),
            flight,
            published: false,
        })
    }

    /// The cold flight of `key`, if one runs now.
    pub(crate) fn cold(&self, key: &str) -> Option<Arc<Flight<B>>> {
        if self.cold.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        by_key.get(key).filter(|f| f.cold).cloned()
    }

    /// Subscribes to the flight of `key` if one runs now, without starting one: a caller
    /// that loads many keys at once waits for the loads already under way before it leads
    /// any, so it never waits while it holds a flight of its own (two such callers could
    /// otherwise each wait for the other).
    pub(crate) fn watch(&self, key: &str) -> Option<watch::Receiver<Option<Published<B>>>> {
        let by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        by_key.get(key).map(|flight| flight.tx.subscribe())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The leader of a flight. Dropping it without publishing (a cancelled caller) publishes
/// `Retry`, so followers never wait on a load that no longer runs.
pub(crate) struct Leader<B: Clone> {
    flights: Arc<Flights<B>>,
    key: String,
    flight: Arc<Flight<B>>,
    published: bool,
}

impl<B: Clone> Leader<B> {
    /// Hands `shared` to the followers and ends the flight.
    pub(crate) fn publish(mut self, shared: Published<B>) {
        self.finish(shared);
    }

    fn finish(&mut self, shared: Published<B>) {
        if self.published {
            return;
        }
        self.published = true;
        // Remove first: a caller arriving after this point starts a new flight (and will find
        // the written entry), rather than joining a finished one.
        let mut by_key = self
            .flights
            .by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if by_key
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            by_key.remove(&self.key);
            if self.flight.cold {
                self.flights.cold.fetch_sub(1, Ordering::SeqCst);
            }
        }
        drop(by_key);
        self.flight.tx.send_replace(Some(shared));
    }
}

impl<B: Clone> Drop for Leader<B> {
    fn drop(&mut self) {
        self.finish(Published::Retry);
    }
}

/// Waits for the leader's result; a leader that vanished reads as `Retry`.
pub(crate) async fn follow<B: Clone>(
    mut rx: watch::Receiver<Option<Published<B>>>,
) -> Published<B> {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone().unwrap_or(Published::Retry),
        Err(_) => Published::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_what_the_leader_publishes() {
        let flights = Arc::new(Flights::<()>::default());
        let Role::Leader(leader) = flights.join("k", false) else {
            panic!("first is leader")
        };
        let Role::Follower(rx) = flights.join("k", false) else {
            panic!("second follows")
        };
        let Role::Leader(other) = flights.join("other", false) else {
            panic!("other key leads")
        };
        leader.publish(Published::Entry(Bytes::from_static(b"v"), ()));
        assert!(matches!(follow(rx).await, Published::Entry(b, _) if b == "v"));
        assert_eq!(flights.len(), 1);
        drop(other);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers() {
        let flights = Arc::new(Flights::<()>::default());
        let Role::Leader(leader) = flights.join("k", false) else {
            panic!()
        };
        let Role::Follower(rx) = flights.join("k", false) else {
            panic!()
        };
        drop(leader);
        assert!(matches!(follow(rx).await, Published::Retry));
        assert!(
            matches!(flights.join("k", false), Role::Leader(_)),
            "the next caller leads"
        );
    }

    #[tokio::test]
    async fn callers_of_a_cold_flight_share_one_read_after_it() {
        let flights = Arc::new(Flights::<u32>::default());
        assert!(flights.cold("k").is_none(), "no flight");
        let Role::Leader(warm) = flights.join("w", false) else {
            panic!()
        };
        assert!(
            flights.cold("w").is_none(),
            "a flight with a value to serve"
        );
        let Role::Leader(leader) = flights.join("k", true) else {
            panic!()
        };
        let a = flights.cold("k").expect("a cold flight");
        let b = flights.cold("k").expect("a cold flight");
        leader.publish(Published::Retry);
        assert!(flights.cold("k").is_none(), "over");
        a.ended().await;
        b.ended().await;
        let reads = AtomicUsize::new(0);
        let read = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            (Box::from(["t".to_owned()]), Some(7))
        };
        assert_eq!(a.reread(read()).await.1, Some(7));
        assert_eq!(b.reread(read()).await.1, Some(7));
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for both");
        drop(warm);
        assert_eq!(flights.cold.load(Ordering::SeqCst), 0);
    }
}
