//! Refreshing a value that is still served (stale, or due early by XFetch), in one of the two
//! modes the attribute names: in a background task (the default, for bodies that own what they
//! use) or inline (`refresh = "inline"`, and any body that borrows from its caller), by the
//! one caller that wins the key while the others are served the stale value at once.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::lookup::Read;
use super::outcome::Outcome;
use super::request::{Call, Load};
use super::write::{Condition, LoadTimes};
use crate::cache::Cache;
use crate::cache::options::Policy;
use crate::flight::{Leader, Published, Role};
use crate::refresh_queue::Priority;
use crate::registry::FnSpec;

/// A call, owned: what a refresh or a timed-out load needs to go on after its caller returned.
pub(crate) struct Background {
    pub cache: Cache,
    pub key: String,
    pub tags: Vec<String>,
    pub spec: Option<&'static FnSpec>,
    pub policy: Policy,
    pub read: Read,
    /// The flight to publish the result to; `None` when it was published already.
    pub leader: Option<Leader<Read>>,
}

impl Background {
    /// Owns what `call` and `read` borrow.
    pub fn of(cache: &Cache, call: Call<'_>, read: Read) -> Background {
        Background {
            cache: cache.clone(),
            key: call.key.to_owned(),
            tags: call.tags.to_vec(),
            spec: call.spec,
            policy: call.policy.clone(),
            read,
            leader: None,
        }
    }

    fn call(&self) -> Call<'_> {
        Call {
            key: &self.key,
            tags: &self.tags,
            spec: self.spec,
            policy: &self.policy,
            // A refresh writes; it keeps nothing in L1 (the next read does).
            l1: None,
        }
    }
}

/// How a call refreshes: [`InBackground`] or [`Inline`].
pub(crate) trait RefreshMode<O, L: Load<O>> {
    /// Whether loads may leave the caller's task (the two methods below may be called).
    const IN_BACKGROUND: bool;
    /// Queues `load` as a background refresh.
    fn spawn_refresh(bg: Background, load: L);
    /// Lets `fut`, a load that outlived its timeout, finish and fill the cache.
    fn spawn_finish(bg: Background, started_ms: u64, fut: Pin<Box<L::Fut>>);
}

/// `refresh = "inline"`: loaders that borrow from the caller.
pub(crate) struct Inline;

impl<O, L: Load<O>> RefreshMode<O, L> for Inline {
    const IN_BACKGROUND: bool = false;
    fn spawn_refresh(_: Background, _: L) {}
    fn spawn_finish(_: Background, _: u64, _: Pin<Box<L::Fut>>) {}
}

/// The default for loaders that own what they use: refreshes run in background tasks.
pub(crate) struct InBackground;

impl<O, L> RefreshMode<O, L> for InBackground
where
    O: Outcome + Send + 'static,
    L: Load<O> + Send + 'static,
    L::Fut: Send + 'static,
{
    const IN_BACKGROUND: bool = true;

    fn spawn_refresh(mut bg: Background, load: L) {
        let refresher = bg.cache.inner.refresher.clone();
        let priority = bg.policy.priority;
        if priority < Priority::High && bg.cache.shedding() {
            // The store is slow: refreshing can wait, the stale value stays.
            refresher.shed();
            return;
        }
        let key = bg.key.clone();
        refresher.submit(&key, priority, async move {
            // The flight is joined when the refresh runs, not while it waits in the queue:
            // a caller that misses meanwhile loads rather than waiting behind the queue.
            let Role::Leader(leader) = bg.cache.inner.flights.join(&bg.key, false) else {
                return; // this process loads it already
            };
            bg.leader = Some(leader);
            let Some(lease) = bg.cache.try_lease(bg.key.as_str()).await else {
                return; // another process refreshes it
            };
            let started_ms = bg.cache.now_ms();
            let cache = bg.cache.clone();
            cache.complete(bg, started_ms, load(), Some(lease)).await;
        });
    }

    fn spawn_finish(bg: Background, started_ms: u64, fut: Pin<Box<L::Fut>>) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let cache = bg.cache.clone();
                cache.complete(bg, started_ms, fut, None).await;
            });
        }
    }
}

impl Cache {
    /// Awaits a background load and stores its result; counts it as a refresh.
    async fn complete<O: Outcome, Fut: Future<Output = O>>(
        &self,
        bg: Background,
        started_ms: u64,
        fut: Fut,
        lease: Option<super::lease::Lease>,
    ) {
        let started = Instant::now();
        let out = fut.await;
        let ok = !out.is_failure();
        // Counted before the write, so that whoever sees the new value sees the count too.
        self.count_refresh(bg.spec, ok);
        self.count_load_took(bg.spec, started.elapsed());
        let call = bg.call();
        let times = LoadTimes {
            started_ms,
            took: started.elapsed(),
        };
        let prepared = out
            .cached_value(bg.policy.cache_none)
            .and_then(|value| self.prepare(call, value, &bg.read.versions, times.into()));
        drop(out);
        let cond = Condition::Unchanged(lease.as_ref());
        let published = match prepared {
            Some(prepared) => {
                let observed = bg.read.observed.as_deref();
                self.store_prepared(call, &prepared, observed, cond).await;
                Published::Entry(prepared.bytes, bg.read.clone())
            }
            None => {
                self.release_unwritten(cond).await;
                Published::Retry
            }
        };
        if let Some(leader) = bg.leader {
            leader.publish(published);
        }
        if !ok {
            tracing::warn!(
                target: "cachette",
                function = bg.spec.map(|s| s.name),
                "background refresh failed; the stale value stays"
            );
        }
    }

    /// Refreshes a stale (or early-expiring) entry once per key: one flight in this process,
    /// one lease across processes. In the background mode the load is queued and `None`
    /// returned at once; inline, the caller that wins both loads now and gets the new outcome
    /// (`None` if it lost, or the load failed: the stale value stays).
    pub(crate) async fn refresh<O, L, M>(
        &self,
        call: Call<'_>,
        read: Read,
        stale: bool,
        load: L,
    ) -> Option<O>
    where
        O: Outcome,
        L: Load<O>,
        M: RefreshMode<O, L>,
    {
        if M::IN_BACKGROUND {
            M::spawn_refresh(Background::of(self, call, read), load);
            return None;
        }
        let Role::Leader(leader) = self.inner.flights.join(call.key, false) else {
            return None; // this process refreshes it already
        };
        let lease = self.try_lease(call.key).await?;
        let started_ms = self.now_ms();
        let started = Instant::now();
        let fut = load();
        // Past the timeout, the stale value is served; an early refresh of a fresh value has
        // nothing better to serve, so it waits.
        let out = match (call.policy.timeout, stale) {
            (Some(limit), true) => tokio::time::timeout(limit, fut).await.ok(),
            _ => Some(fut.await),
        };
        let Some(out) = out else {
            // Past the timeout: nothing to write; the lease goes back now.
            self.release_lease(&lease).await;
            leader.publish(Published::Retry);
            return None;
        };
        let ok = !out.is_failure();
        self.count_refresh(call.spec, ok);
        self.count_load_took(call.spec, started.elapsed());
        let cond = Condition::Unchanged(Some(&lease));
        let published = match out.cached_value(call.policy.cache_none) {
            Some(value) => {
                let times = LoadTimes {
                    started_ms,
                    took: started.elapsed(),
                };
                match self.write(call, value, &read, times.into(), cond).await {
                    Some(bytes) => Published::Entry(bytes, read.clone()),
                    None => Published::Retry,
                }
            }
            None => {
                self.release_unwritten(cond).await;
                Published::Retry
            }
        };
        leader.publish(published);
        ok.then_some(out)
    }
}
