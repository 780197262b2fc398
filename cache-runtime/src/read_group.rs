//! Group commit of reads: callers of one key in a process that arrive while a read of it is
//! in flight share the *next* read, sent once that one has returned.
//!
//! A read sent before a caller arrived cannot answer it: an invalidation may have completed in
//! between, and the caller is owed its effect. A read sent after it arrived can, whoever sends
//! it. So a key has at most one read in flight (its *sent* group) and one *open* group that the
//! callers arriving meanwhile join. Once the sent read has returned and one of its callers is
//! done with it (has served a value, or joined the key's flight: see [`Member`]), the open
//! group is sent, by whichever of its members gets there first. A stampede of a thousand callers on a cold key
//! sends two reads instead of a thousand (the callers behind the first find its flight and wait
//! for it), and a hot key under concurrent hits is read about
//! once per round trip instead of once per caller; a caller alone on its key reads at once, as
//! before.
//!
//! Cancellation: the read of a group is a [`OnceCell`] initialisation, so a member cancelled
//! while sending it hands the sending to another member; a group whose members are all gone
//! ends at once, so the group behind it never waits for a read that nobody sends.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::{Notify, OnceCell};

/// The read groups of one cache, by key, in shards: every hit of a store across the network
/// joins a group and leaves it, so one lock for all keys would be taken twice per hit by every
/// thread.
pub(crate) struct ReadGroups<R> {
    shards: Box<[Mutex<ByKey<R>>]>,
    hasher: quick_cache::DefaultHashBuilder,
}

type ByKey<R> = HashMap<Arc<str>, Groups<R>, quick_cache::DefaultHashBuilder>;

/// Enough shards that two threads' hits of different keys rarely take one lock.
const SHARDS: usize = 64;

/// One key's groups: the read in flight, and the callers waiting to send the next.
struct Groups<R> {
    sent: Arc<Group<R>>,
    open: Option<Arc<Group<R>>>,
}

/// The callers sharing one read.
struct Group<R> {
    key: Arc<str>,
    /// The shard of `key`.
    shard: usize,
    /// Members not yet gone (joining is under the map's lock; leaving counts down first and
    /// then, unless the group has ended, looks again under the lock).
    members: AtomicUsize,
    /// Set when the group may send its read (the group before it has ended).
    sendable: AtomicBool,
    /// Set once the group no longer holds back the one behind it (a member left after its
    /// read returned, or every member left).
    ended: AtomicBool,
    /// A group made for a caller that found no read of its key in flight: it sends its read
    /// at once, and nobody ever joins it (callers arriving meanwhile join the open group
    /// behind it), so its read goes straight to its caller, not through `read`.
    sole: bool,
    /// The sole member's read has returned.
    returned: AtomicBool,
    ready: Notify,
    read: OnceCell<R>,
    /// The value the read found, decoded by the first member that decoded it (values that can
    /// be cloned, and are not protected): the others clone it instead of decoding it again.
    decoded: DecodedOnce,
}

/// A value decoded by the first member of a group that decoded it, cloned by the others.
pub(crate) type DecodedOnce = OnceLock<Arc<dyn Any + Send + Sync>>;

impl<R> Group<R> {
    fn new(key: Arc<str>, shard: usize, sole: bool) -> Arc<Group<R>> {
        Arc::new(Group {
            key,
            shard,
            sole,
            returned: AtomicBool::new(false),
            members: AtomicUsize::new(1),
            sendable: AtomicBool::new(sole),
            ended: AtomicBool::new(false),
            ready: Notify::new(),
            read: OnceCell::new(),
            decoded: OnceLock::new(),
        })
    }
}

impl<R> Default for ReadGroups<R> {
    fn default() -> Self {
        let hasher = quick_cache::DefaultHashBuilder::default();
        ReadGroups {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(hasher.clone())))
                .collect(),
            hasher,
        }
    }
}

impl<R> ReadGroups<R> {
    fn lock(&self, shard: usize) -> MutexGuard<'_, ByKey<R>> {
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether no key has a group.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        (0..SHARDS).all(|shard| self.lock(shard).is_empty())
    }

    /// Joins the group that will read `key` next: a new one that reads at once when no read
    /// of `key` is in flight, else the open group behind the one in flight.
    pub(crate) fn join(self: &Arc<Self>, key: &str) -> Member<R> {
        let shard = self.hasher.hash_one(key) as usize % SHARDS;
        let mut by_key = self.lock(shard);
        let group = match by_key.get_mut(key) {
            Some(groups) => match &groups.open {
                Some(open) => {
                    open.members.fetch_add(1, Ordering::Relaxed);
                    open.clone()
                }
                None => {
                    let open = Group::new(groups.sent.key.clone(), shard, false);
                    groups.open = Some(open.clone());
                    open
                }
            },
            None => {
                let key: Arc<str> = Arc::from(key);
                let sent = Group::new(key.clone(), shard, true);
                let groups = Groups {
                    sent: sent.clone(),
                    open: None,
                };
                by_key.insert(key, groups);
                sent
            }
        };
        Member {
            groups: self.clone(),
            group,
        }
    }

    /// The read of `group` has returned, or nobody is left to send it: the open group behind
    /// it (if any) may send its own now.
    fn end(&self, by_key: &mut ByKey<R>, group: &Arc<Group<R>>) {
        let Some(groups) = by_key.get_mut(&*group.key) else {
            return;
        };
        if !Arc::ptr_eq(&groups.sent, group) {
            return;
        }
        group.ended.store(true, Ordering::Release);
        match groups.open.take() {
            // A group whose members all left while it waited has nobody to send its read.
            Some(next) if next.members.load(Ordering::Relaxed) > 0 => {
                next.sendable.store(true, Ordering::Release);
                next.ready.notify_waiters();
                groups.sent = next;
            }
            _ => {
                by_key.remove(&*group.key);
            }
        }
    }
}

/// A caller's place in a read group. The group behind it may send its read once the first
/// member to leave (drop) this one has left after the read returned: a caller that found
/// nothing keeps its place until it has joined its key's flight, so that the callers behind it
/// find that flight and wait for it instead of reading. Dropping it is also what a cancelled
/// caller does.
pub(crate) struct Member<R> {
    groups: Arc<ReadGroups<R>>,
    group: Arc<Group<R>>,
}

impl<R> Member<R> {
    /// Whether this caller was the first reader of its key: it sends the read at once.
    #[cfg(test)]
    fn first(&self) -> bool {
        self.group.sendable.load(Ordering::Acquire)
    }

    /// Waits for this group's turn: for the read before it to return and its caller to be
    /// done with it (see [`Member`]).
    pub(crate) async fn turn(&self) {
        let group = &self.group;
        if group.sendable.load(Ordering::Acquire) {
            return;
        }
        loop {
            let ready = group.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if group.sendable.load(Ordering::Acquire) {
                return;
            }
            ready.await;
        }
    }

    /// The group's read, once it is its [turn](Self::turn): sends the read `read` makes unless
    /// another member already has (or is sending it), and hands every member the same result.
    /// A caller alone on its key owns its read.
    pub(crate) async fn read<F: Future<Output = R>>(
        &self,
        read: impl FnOnce() -> F,
    ) -> Shared<'_, R> {
        let group = &self.group;
        if group.sole {
            let read = read().await;
            group.returned.store(true, Ordering::Release);
            return Shared::Own(read);
        }
        self.turn().await;
        Shared::Borrowed(group.read.get_or_init(read).await)
    }

    /// Where the members of this group keep the value their read found, decoded once.
    pub(crate) fn decoded(&self) -> &DecodedOnce {
        &self.group.decoded
    }
}

/// A group's read as one member sees it: its own when it was alone, else the group's.
pub(crate) enum Shared<'a, R> {
    Own(R),
    Borrowed(&'a R),
}

impl<R> std::ops::Deref for Shared<'_, R> {
    type Target = R;

    fn deref(&self) -> &R {
        match self {
            Shared::Own(r) => r,
            Shared::Borrowed(r) => r,
        }
    }
}

impl<R> Drop for Member<R> {
    fn drop(&mut self) {
        let group = &self.group;
        group.members.fetch_sub(1, Ordering::AcqRel);
        if group.ended.load(Ordering::Acquire) {
            return;
        }
        // Counted again under the lock: a caller may have joined the group meanwhile.
        let mut by_key = self.groups.lock(group.shard);
        let left = group.members.load(Ordering::Acquire);
        let returned = group.read.initialized() || group.returned.load(Ordering::Acquire);
        if returned || (left == 0 && group.sendable.load(Ordering::Acquire)) {
            // Read, or sendable with nobody left to send it.
            self.groups.end(&mut by_key, group);
        } else if left == 0 {
            // An open group all of whose members left: the next caller starts a new one.
            if let Some(groups) = by_key.get_mut(&*group.key) {
                if groups.open.as_ref().is_some_and(|o| Arc::ptr_eq(o, group)) {
                    groups.open = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn counted(reads: &AtomicUsize, v: u32) -> u32 {
        reads.fetch_add(1, Ordering::SeqCst);
        v
    }

    async fn waits<F: Future>(f: F) -> bool {
        tokio::time::timeout(Duration::from_millis(20), f)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn callers_arriving_during_a_read_share_the_next() {
        let groups = Arc::new(ReadGroups::<u32>::default());
        let reads = AtomicUsize::new(0);
        let first = groups.join("k");
        assert!(first.first());
        let (a, b) = (groups.join("k"), groups.join("k"));
        assert!(!a.first() && !b.first());
        let other = groups.join("other");
        assert!(other.first(), "another key reads at once");

        assert!(
            waits(a.read(|| counted(&reads, 2))).await,
            "the read in flight goes first"
        );
        assert_eq!(*first.read(|| counted(&reads, 1)).await, 1);
        assert!(
            waits(a.read(|| counted(&reads, 2))).await,
            "and its caller, until it leaves its place"
        );
        drop(first);
        assert_eq!(*a.read(|| counted(&reads, 2)).await, 2);
        assert_eq!(*b.read(|| counted(&reads, 3)).await, 2, "shares a's read");
        assert_eq!(reads.load(Ordering::SeqCst), 2);

        // A caller arriving while a's group holds its place waits for it, then reads anew.
        let c = groups.join("k");
        assert!(!c.first());
        drop(b);
        assert_eq!(
            *c.read(|| counted(&reads, 4)).await,
            4,
            "b's leaving let c's group go"
        );
        drop((a, c, other));
        assert!(groups.is_empty());
    }

    #[tokio::test]
    async fn a_group_whose_sender_is_cancelled_still_reads() {
        let groups = Arc::new(ReadGroups::<u32>::default());
        let first = groups.join("k");
        let (a, b) = (groups.join("k"), groups.join("k"));
        // The first reader vanishes without reading: the open group may send.
        drop(first);
        // a starts sending and is cancelled mid-read: b sends instead.
        assert!(waits(a.read(std::future::pending)).await);
        drop(a);
        assert_eq!(*b.read(|| async { 7 }).await, 7);
        drop(b);
        assert!(groups.is_empty());
    }

    /// A caller alone on its key owns its read; cancelled while reading, it still lets the
    /// group behind it read once it has left.
    #[tokio::test]
    async fn a_lone_reader_cancelled_mid_read_lets_the_group_behind_it_read() {
        let groups = Arc::new(ReadGroups::<u32>::default());
        let alone = groups.join("other");
        assert!(matches!(alone.read(|| async { 5 }).await, Shared::Own(5)));
        drop(alone);

        let first = groups.join("k");
        let behind = groups.join("k");
        assert!(
            waits(first.read(std::future::pending)).await,
            "cancelled mid-read"
        );
        assert!(
            waits(behind.read(|| async { 2 })).await,
            "its caller keeps its place until it leaves"
        );
        drop(first);
        // Bounded only so that the bug this guards against fails the test instead of hanging it.
        let read = tokio::time::timeout(Duration::from_secs(10), behind.read(|| async { 2 }))
            .await
            .expect("the group behind a cancelled lone reader never read");
        assert!(matches!(read, Shared::Borrowed(2)));
        drop(behind);
        assert!(groups.is_empty());
    }

    #[tokio::test]
    async fn an_open_group_left_by_everyone_is_not_waited_for() {
        let groups = Arc::new(ReadGroups::<u32>::default());
        let first = groups.join("k");
        drop(groups.join("k"));
        // The next arrival opens a fresh group, sent when the first caller leaves.
        let b = groups.join("k");
        assert!(!b.first());
        assert_eq!(*first.read(|| async { 1 }).await, 1);
        drop(first);
        assert_eq!(*b.read(|| async { 2 }).await, 2);
        drop(b);
        assert!(groups.is_empty());

        // A group promoted with nobody left in it does not hold back the one behind it.
        let first = groups.join("k");
        let a = groups.join("k");
        drop(a);
        drop(first);
        assert!(groups.is_empty());
        let c = groups.join("k");
        assert!(c.first(), "a new first reader");
        drop(c);
        assert!(groups.is_empty());
    }

    /// Many tasks on two threads: every caller gets a read sent after it joined, and a key
    /// never has two reads in flight.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_are_sent_after_their_callers_joined_one_at_a_time() {
        let groups = Arc::new(ReadGroups::<u64>::default());
        let clock = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..400)
            .map(|_| {
                let (groups, clock, in_flight) = (groups.clone(), clock.clone(), in_flight.clone());
                tokio::spawn(async move {
                    let joined = clock.fetch_add(1, Ordering::SeqCst);
                    let member = groups.join("k");
                    let sent = *member
                        .read(|| async {
                            assert_eq!(in_flight.fetch_add(1, Ordering::SeqCst), 0);
                            let sent = clock.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            sent
                        })
                        .await;
                    assert!(sent > joined, "a read sent before its caller joined");
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(groups.is_empty());
    }
}
