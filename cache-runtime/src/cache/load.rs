//! The path of one cached call: freshness, single flight, the distributed lease, loader
//! timeout, fail-safe, and background refresh.
//!
//! ```text
//! lookup ─ fresh ──────────────────────────────► value   (XFetch may queue a refresh)
//!        ─ stale ──────────────────────────────► value   + one refresh (flight + lease)
//!        ─ expired (fail-safe) / absent / force ─► flight ─ follower: wait for the leader
//!                                                         ─ leader: lease ─ held: load, write
//!                                                                         ─ taken: wait for it
//! ```

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::io::{Lease, Looked, State, Write};
use super::options::Policy;
use super::{Cache, Outcome, now_ms};
use crate::entry;
use crate::flight::{self, Basis, Leader, Role, Shared};
use crate::registry::FnSpec;
use crate::store::Store as _;

/// One call's key, tags, spec and policy.
pub(crate) struct Call<'a, S> {
    pub key: &'a str,
    pub tags: &'a [S],
    pub spec: Option<&'static FnSpec>,
    pub policy: Policy,
}

/// How a cloneable outcome is handed to the callers that waited for it. Built where the
/// outcome's type is known to be `Clone + Send + Sync + 'static`.
pub struct Share<O> {
    /// Wraps the outcome for sharing.
    pub to_any: fn(&O) -> Arc<dyn Any + Send + Sync>,
    /// Takes a copy back out.
    pub from_any: fn(&(dyn Any + Send + Sync)) -> Option<O>,
}

impl<O> Clone for Share<O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<O> Copy for Share<O> {}

/// Picks how a call's outcome is shared, by autoref specialization at the macro's call site:
/// `(&&Sharer::<O>::new()).share()` is `Some` exactly when `O` is `Clone + Send + Sync +
/// 'static` (then errors reach every waiting caller too), `None` otherwise.
#[doc(hidden)]
pub struct Sharer<O>(std::marker::PhantomData<fn() -> O>);

impl<O> Sharer<O> {
    /// A chooser for outcomes of type `O`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Sharer(std::marker::PhantomData)
    }
}

/// The choice for cloneable outcomes.
#[doc(hidden)]
pub trait ShareViaClone<O> {
    /// How to share.
    fn share(&self) -> Option<Share<O>>;
}

impl<O: Clone + Send + Sync + 'static> ShareViaClone<O> for &Sharer<O> {
    fn share(&self) -> Option<Share<O>> {
        Some(Share {
            to_any: |o| Arc::new(o.clone()),
            from_any: |any| any.downcast_ref::<O>().cloned(),
        })
    }
}

/// The fallback: share through the encoded entry only.
#[doc(hidden)]
pub trait ShareNone<O> {
    /// How to share.
    fn share(&self) -> Option<Share<O>>;
}

impl<O> ShareNone<O> for Sharer<O> {
    fn share(&self) -> Option<Share<O>> {
        None
    }
}

/// What a refresh or a timed-out load run in the background needs, owned.
pub(crate) struct Background {
    pub cache: Cache,
    pub key: String,
    pub tags: Vec<String>,
    pub versions: Vec<Option<Bytes>>,
    pub observed: Option<Bytes>,
    pub spec: Option<&'static FnSpec>,
    pub policy: Policy,
    /// The flight to publish the result to; `None` when it was published already.
    pub leader: Option<Leader>,
}

/// Whether loads can leave the caller's task: refreshes in the background, timed-out loads
/// finishing after the caller got a stale value. Implemented for loaders that are `Send +
/// 'static` ([`Detached`]); other loaders ([`Attached`]) refresh in the caller.
pub(crate) trait Detach<O, F, Fut> {
    /// Whether the methods below may be called.
    const DETACHED: bool;
    /// Queues `load` as a background refresh.
    fn refresh(bg: Background, load: F);
    /// Lets `fut`, a load that outlived its timeout, finish and fill the cache.
    fn finish(bg: Background, started_ms: u64, fut: Pin<Box<Fut>>);
}

/// Loaders that borrow from the caller.
pub(crate) struct Attached;

impl<O, F, Fut> Detach<O, F, Fut> for Attached {
    const DETACHED: bool = false;
    fn refresh(_: Background, _: F) {}
    fn finish(_: Background, _: u64, _: Pin<Box<Fut>>) {}
}

/// Loaders that own what they use.
pub(crate) struct Detached;

impl<O, F, Fut> Detach<O, F, Fut> for Detached
where
    O: Outcome + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = O> + Send + 'static,
{
    const DETACHED: bool = true;

    fn refresh(bg: Background, load: F) {
        let refresher = bg.cache.inner.refresher.clone();
        let priority = bg.policy.priority;
        if priority < crate::refresh::Priority::High && bg.cache.shedding() {
            // The store is slow: refreshing can wait, the stale value stays.
            refresher.shed();
            return;
        }
        let key = bg.key.clone();
        refresher.submit(&key, priority, async move {
            let mut bg = bg;
            // The flight is joined when the refresh runs, not while it waits in the queue:
            // a caller that misses meanwhile loads rather than waiting behind the queue.
            let Role::Leader(leader) = bg.cache.inner.flights.join(&bg.key) else {
                return; // this process loads it already
            };
            bg.leader = Some(leader);
            let Some(token) = bg.cache.try_lease(bg.key.as_str()).await else {
                return; // another process refreshes it
            };
            let started_ms = now_ms();
            let cache = bg.cache.clone();
            cache.finish_load(bg, started_ms, load(), Some(token)).await;
        });
    }

    fn finish(bg: Background, started_ms: u64, fut: Pin<Box<Fut>>) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let cache = bg.cache.clone();
                cache.finish_load(bg, started_ms, fut, None).await;
            });
        }
    }
}

impl Cache {
    /// `<prefix>__cachette:lease:{<full key>}`: inside the prefix (so `clear()` removes
    /// it), and with the entry's key as its hash tag, so that on Redis Cluster the lease lives
    /// in the entry's slot and one script can write the entry and release the lease.
    fn lease_key(&self, full_key: &str) -> String {
        let prefix = self.inner.prefix.as_str();
        let mut k = String::with_capacity(prefix.len() + 19 + full_key.len());
        k.push_str(prefix);
        k.push_str("__cachette:lease:{");
        k.push_str(full_key);
        k.push('}');
        k
    }

    /// Takes the lease of `full_key`: `SET NX PX` with a random 128-bit token.
    async fn try_lease(&self, full_key: &str) -> Option<Lease> {
        let mut token = [0u8; 16];
        crate::random::fill(&mut token);
        let ttl = self.inner.freshness.lease_ttl;
        let key = self.lease_key(full_key);
        match self.inner.store.set_nx(&key, &token, ttl).await {
            Ok(true) => Some(Lease { key, token }),
            Ok(false) => None,
            // Without the store, nobody else can be told; load here.
            Err(_) => Some(Lease { key, token }),
        }
    }

    /// Releases a lease by compare-and-delete: an expired lease taken over by another process
    /// stays theirs.
    pub(super) async fn release_lease(&self, lease: &Lease) {
        let _ = self
            .inner
            .store
            .delete_if_equals(&lease.key, &lease.token)
            .await;
    }

    fn count_load(&self, spec: Option<&FnSpec>) {
        self.inner.stats.load();
        if let Some(s) = spec {
            s.stats.load();
        }
    }

    /// Awaits a background load and stores its result; counts it as a refresh.
    async fn finish_load<O: Outcome, Fut: Future<Output = O>>(
        &self,
        bg: Background,
        started_ms: u64,
        fut: Fut,
        lease: Option<Lease>,
    ) {
        let started = Instant::now();
        let out = fut.await;
        self.count_load(bg.spec);
        let ok = !out.is_failure();
        // Counted before the write, so that whoever sees the new value sees the count too.
        self.inner.stats.refresh(ok);
        if let Some(s) = bg.spec {
            s.stats.refresh(ok);
        }
        let times = (started_ms, started.elapsed());
        let prepared = out.cached_value(bg.policy.cache_none).and_then(|value| {
            self.prepare_entry(
                &bg.key,
                value,
                &bg.tags,
                &bg.versions,
                times,
                &bg.policy,
                bg.spec,
            )
        });
        drop(out);
        let mut shared = Shared::Retry;
        let write = Write::unchanged(bg.observed.as_deref(), lease.as_ref());
        match prepared {
            Some(prepared) => {
                self.store_entry(&bg.key, &prepared, write, bg.spec).await;
                shared = Shared::Entry(prepared.bytes, Basis::Observed(bg.observed.clone()));
            }
            None => self.release_unwritten(write).await,
        }
        if let Some(leader) = bg.leader {
            leader.publish(shared);
        }
        if !ok {
            tracing::warn!(
                target: "cachette",
                function = bg.spec.map(|s| s.name),
                "background refresh failed; the stale value stays"
            );
        }
    }

    /// Runs one cached call. `load` runs at most once, in this task or (with [`Detached`])
    /// in the background; errors of the loader are returned untouched (or, with fail-safe,
    /// replaced by the expired value); store failures only cost the caching.
    pub(crate) async fn run<O, S, F, Fut, D>(
        &self,
        call: Call<'_, S>,
        load: F,
        share: Option<&Share<O>>,
    ) -> O
    where
        O: Outcome,
        S: AsRef<str>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = O>,
        D: Detach<O, F, Fut>,
    {
        let policy = &call.policy;
        if self.inner.disabled || policy.ttl.is_zero() {
            return load().await;
        }
        // Invalidations from an outage go first; until they are applied nothing is read. The
        // call then counts as a failed lookup: an error and a miss, as when the read fails.
        if let Err(e) = self.flush_pending().await {
            self.store_error(call.spec, "get", &e);
            self.record(call.spec, false, None);
            return load().await;
        }
        // A caller goes round at most a few times: a leader that vanished or waited in vain
        // sends its followers back here.
        let mut record = true;
        for _round in 0..3 {
            let looked = match self
                .lookup::<O::Value, S>(call.key, call.tags, call.spec, policy, record)
                .await
            {
                Ok(l) => l,
                // With the store unreachable, run as if uncached.
                Err(_) => return load().await,
            };
            record = false;
            let Looked {
                state,
                early,
                observed,
                versions,
            } = looked;
            let fallback = match state {
                State::Fresh(v) if !policy.force_refresh => {
                    if early {
                        self.refresh::<O, S, F, Fut, D>(&call, observed, versions, None, load)
                            .await;
                    }
                    return O::from_cached(v);
                }
                State::Stale(v) if !policy.force_refresh => {
                    return match self
                        .refresh::<O, S, F, Fut, D>(&call, observed, versions, Some(&v), load)
                        .await
                    {
                        Some(fresh) => fresh,
                        None => O::from_cached(v),
                    };
                }
                State::Fresh(v) | State::Stale(v) | State::Expired(v) => Some(v),
                State::Absent => None,
            };

            let leader = match self.inner.flights.join(call.key) {
                Role::Leader(leader) => leader,
                Role::Follower(rx) => {
                    self.waited(call.spec);
                    match flight::follow(rx).await {
                        Shared::Entry(bytes, basis) => {
                            if let Some(v) = self.accept_shared::<O::Value, S>(
                                &call, &bytes, &basis, &observed, &versions,
                            ) {
                                return O::from_cached(v);
                            }
                        }
                        Shared::Outcome(any) => {
                            if let Some(out) = share.and_then(|s| (s.from_any)(&*any)) {
                                return out;
                            }
                        }
                        Shared::Retry => {}
                    }
                    continue;
                }
            };

            // This process loads the key; across processes, the lease decides who.
            let lease = match self.try_lease(call.key).await {
                Some(token) => Some(token),
                // Waiting would return the very value a forced refresh bypasses.
                None if policy.force_refresh => None,
                None => match self.wait_for_other::<O, S>(&call).await {
                    Waited::Value(v, bytes) => {
                        leader.publish(Shared::Entry(bytes, Basis::Current));
                        return O::from_cached(v);
                    }
                    Waited::Lease(token) => Some(token),
                    Waited::GaveUp => None,
                },
            };
            return self
                .load_as_leader::<O, S, F, Fut, D>(
                    &call, load, leader, lease, observed, versions, fallback, share,
                )
                .await;
        }
        load().await
    }

    fn waited(&self, spec: Option<&FnSpec>) {
        self.inner.stats.waited();
        if let Some(s) = spec {
            s.stats.waited();
        }
    }

    /// A follower takes the leader's entry only if it was loaded against the state of the key
    /// the follower saw, and carries the tag versions the follower read: otherwise the key was
    /// invalidated while the leader loaded, and the follower goes round again.
    fn accept_shared<T: serde::de::DeserializeOwned, S: AsRef<str>>(
        &self,
        call: &Call<'_, S>,
        bytes: &[u8],
        basis: &Basis,
        observed: &Option<Bytes>,
        versions: &[Option<Bytes>],
    ) -> Option<T> {
        if let Basis::Observed(theirs) = basis {
            let same = match (theirs, observed) {
                (None, None) => true,
                (Some(a), Some(b)) => crate::store::same_fingerprint(a, b),
                _ => false,
            };
            if !same {
                return None;
            }
        }
        let raw = entry::parse(bytes).ok()?;
        if !raw.tags_current(call.tags, versions) {
            return None;
        }
        self.open_payload(call.key, &raw, call.policy.phi).ok()
    }

    /// Another process holds the lease: polls for its value, with backoff, for at most
    /// `lease_wait`; takes the lease if it is freed without a value.
    async fn wait_for_other<O: Outcome, S: AsRef<str>>(
        &self,
        call: &Call<'_, S>,
    ) -> Waited<O::Value> {
        self.waited(call.spec);
        let deadline = Instant::now() + self.inner.freshness.lease_wait;
        let mut pause = Duration::from_millis(5);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Waited::GaveUp;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 3 / 2).min(Duration::from_millis(100));
            match self
                .lookup::<O::Value, S>(call.key, call.tags, call.spec, &call.policy, false)
                .await
            {
                Ok(Looked {
                    state: State::Fresh(v) | State::Stale(v),
                    observed: Some(bytes),
                    ..
                }) => {
                    return Waited::Value(v, bytes);
                }
                Ok(_) => {}
                Err(_) => return Waited::GaveUp,
            }
            if let Some(token) = self.try_lease(call.key).await {
                return Waited::Lease(token);
            }
        }
    }

    /// Loads as the leader of this key's flight: with the loader timeout and fail-safe, writes
    /// the result, releases the lease and hands the result to the followers.
    #[allow(clippy::too_many_arguments)]
    async fn load_as_leader<O, S, F, Fut, D>(
        &self,
        call: &Call<'_, S>,
        load: F,
        leader: Leader,
        lease: Option<Lease>,
        observed: Option<Bytes>,
        versions: Vec<Option<Bytes>>,
        fallback: Option<O::Value>,
        share: Option<&Share<O>>,
    ) -> O
    where
        O: Outcome,
        S: AsRef<str>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = O>,
        D: Detach<O, F, Fut>,
    {
        let policy = &call.policy;
        let started_ms = now_ms();
        let started = Instant::now();
        let mut fut = Box::pin(load());
        let (out, fallback) = match (policy.timeout, fallback) {
            (Some(limit), Some(fallback)) => {
                match tokio::time::timeout(limit, fut.as_mut()).await {
                    Ok(out) => (out, Some(fallback)),
                    Err(_) => {
                        // Past the timeout with a value to serve: serve it; a detachable load goes
                        // on and fills the cache when it ends.
                        if let Some(lease) = &lease {
                            self.release_lease(lease).await;
                        }
                        match &observed {
                            Some(bytes) => leader.publish(Shared::Entry(
                                bytes.clone(),
                                Basis::Observed(Some(bytes.clone())),
                            )),
                            None => leader.publish(Shared::Retry),
                        }
                        if D::DETACHED {
                            D::finish(
                                self.background(call, observed, versions, None),
                                started_ms,
                                fut,
                            );
                        }
                        return self.serve_fallback(call.spec, fallback);
                    }
                }
            }
            (_, fallback) => (fut.await, fallback),
        };
        let load_time = started.elapsed();
        self.count_load(call.spec);

        if let (true, Some(_), Some(v)) = (out.is_failure(), policy.fail_safe, fallback) {
            // Stale-if-error: serve the expired value, and keep serving it for the throttle
            // so a failing database is not asked again on every request.
            let throttle = self.inner.freshness.fail_safe_throttle;
            let retry = Policy {
                ttl: throttle,
                stale: throttle,
                jitter: 0,
                ..policy.clone()
            };
            let write = Write::unchanged(observed.as_deref(), lease.as_ref());
            let times = (now_ms(), load_time);
            match self
                .write_entry(
                    call.key, &v, call.tags, &versions, write, times, &retry, call.spec,
                )
                .await
            {
                Some(bytes) => {
                    leader.publish(Shared::Entry(bytes, Basis::Observed(observed.clone())))
                }
                None => leader.publish(Shared::Retry),
            }
            tracing::warn!(
                target: "cachette",
                function = call.spec.map(|s| s.name),
                "loader failed; serving the expired value (fail-safe)"
            );
            return self.serve_fallback(call.spec, v);
        }

        let mut shared = Shared::Retry;
        let write = Write::unchanged(observed.as_deref(), lease.as_ref());
        match out.cached_value(policy.cache_none) {
            Some(value) => {
                let times = (started_ms, load_time);
                if let Some(bytes) = self
                    .write_entry(
                        call.key, value, call.tags, &versions, write, times, policy, call.spec,
                    )
                    .await
                {
                    shared = Shared::Entry(bytes, Basis::Observed(observed.clone()));
                }
            }
            None => self.release_unwritten(write).await,
        }
        if matches!(shared, Shared::Retry) {
            if let Some(s) = share {
                shared = Shared::Outcome((s.to_any)(&out));
            }
        }
        leader.publish(shared);
        out
    }

    fn serve_fallback<O: Outcome>(&self, spec: Option<&FnSpec>, fallback: O::Value) -> O {
        self.inner.stats.fail_safe();
        if let Some(s) = spec {
            s.stats.fail_safe();
        }
        O::from_cached(fallback)
    }

    fn background<S: AsRef<str>>(
        &self,
        call: &Call<'_, S>,
        observed: Option<Bytes>,
        versions: Vec<Option<Bytes>>,
        leader: Option<Leader>,
    ) -> Background {
        Background {
            cache: self.clone(),
            key: call.key.to_owned(),
            tags: call.tags.iter().map(|t| t.as_ref().to_owned()).collect(),
            versions,
            observed,
            spec: call.spec,
            policy: call.policy.clone(),
            leader,
        }
    }

    /// Refreshes a stale (or early-expiring) entry once per key: one flight in this process,
    /// one lease across processes. A detachable load goes to the background queue and `None`
    /// is returned at once; otherwise the caller that wins both loads now and gets the new
    /// outcome (`None` if it lost, or the load failed: the stale value stays).
    async fn refresh<O, S, F, Fut, D>(
        &self,
        call: &Call<'_, S>,
        observed: Option<Bytes>,
        versions: Vec<Option<Bytes>>,
        stale: Option<&O::Value>,
        load: F,
    ) -> Option<O>
    where
        O: Outcome,
        S: AsRef<str>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = O>,
        D: Detach<O, F, Fut>,
    {
        if D::DETACHED {
            D::refresh(self.background(call, observed, versions, None), load);
            return None;
        }
        let Role::Leader(leader) = self.inner.flights.join(call.key) else {
            return None; // this process refreshes it already
        };
        let lease = self.try_lease(call.key).await?;
        let started_ms = now_ms();
        let started = Instant::now();
        let fut = load();
        let out = match (call.policy.timeout, stale) {
            (Some(limit), Some(_)) => tokio::time::timeout(limit, fut).await.ok(),
            _ => Some(fut.await),
        };
        let mut shared = Shared::Retry;
        let mut fresh = None;
        let write = Write::Leased(observed.as_deref(), &lease);
        match out {
            Some(out) => {
                self.count_load(call.spec);
                let ok = !out.is_failure();
                self.inner.stats.refresh(ok);
                if let Some(s) = call.spec {
                    s.stats.refresh(ok);
                }
                match out.cached_value(call.policy.cache_none) {
                    Some(value) => {
                        let times = (started_ms, started.elapsed());
                        if let Some(bytes) = self
                            .write_entry(
                                call.key,
                                value,
                                call.tags,
                                &versions,
                                write,
                                times,
                                &call.policy,
                                call.spec,
                            )
                            .await
                        {
                            shared = Shared::Entry(bytes, Basis::Observed(observed.clone()));
                        }
                    }
                    None => self.release_unwritten(write).await,
                }
                if ok {
                    fresh = Some(out);
                }
            }
            // Past the timeout: nothing to write; the lease goes back now.
            None => self.release_lease(&lease).await,
        }
        leader.publish(shared);
        fresh
    }
}

/// What waiting for another process's load gave.
enum Waited<T> {
    Value(T, Bytes),
    Lease(Lease),
    GaveUp,
}
