//! Loading a key that has no value to serve: one leader per key in this process (the flight),
//! one per key across processes (the lease); followers take the leader's result only if it
//! was loaded against the state of the key they read themselves. With a `timeout` and a value
//! kept for fail-safe, a slow load serves that value; with `fail_safe`, so does a failing one.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::lease::Lease;
use super::lookup::{Age, Found, Lookup, Read, ReadPlace};
use super::outcome::{Outcome, Share};
use super::refresh::{Background, RefreshMode};
use super::request::{Call, Load};
use super::write::{Condition, Lifetime, LoadTimes};
use crate::cache::Cache;
use crate::clock::millis;
use crate::entry;
use crate::flight::{self, Flight, Leader, Published, Role};

/// What the leader of a load holds: this process's flight, and the lease when it got one
/// (none: the store is unreachable, the refresh is forced, or another process's load took
/// longer than `lease_wait`).
struct Won {
    leader: Leader<Read>,
    lease: Option<Lease>,
}

/// What waiting for another process's load gave.
enum Waited<T> {
    /// The other process's value, and the read that found it.
    Value(T, Read),
    Lease(Lease),
    GaveUp,
}

/// What a caller's lookup leaves its load.
pub(crate) struct Basis {
    /// What the lookup read.
    pub read: Read,
    /// The ticket the call began with.
    pub since: u64,
    /// The caller's place in its key's read group, given up once it has joined the key's
    /// flight.
    pub place: Option<ReadPlace>,
}

impl Cache {
    /// Joins the key's flight: leads the load (taking the lease, or waiting for another
    /// process's load), or follows this process's leader. `Err` hands the loader back to a
    /// follower whose leader's result does not hold for it: it reads the key again. `since`
    /// is the ticket of the caller's first read: a leader's result holds for a follower if the
    /// leader's read came after it, or saw the very state the follower read.
    pub(crate) async fn load<O, L, M>(
        &self,
        call: Call<'_>,
        basis: Basis,
        fallback: Option<Found<O::Value>>,
        load: L,
        share: Option<&Share<O>>,
    ) -> Result<O, L>
    where
        O: Outcome,
        L: Load<O>,
        M: RefreshMode<O, L>,
    {
        let Basis { read, since, place } = basis;
        // Nothing to serve and nothing forced: the flight is cold, and callers arriving while
        // it runs wait for it before they read.
        let cold = fallback.is_none() && read.reached && !call.policy.force_refresh;
        let role = self.inner.flights.join(call.key, cold);
        // The flight is there to be found: the callers behind this one in the key's read
        // group may go (and wait for it, when it is cold).
        drop(place);
        let leader = match role {
            Role::Leader(leader) => leader,
            Role::Follower(rx) => {
                self.count_waited(call.spec);
                // With a value to serve, a follower waits no longer than a leader would.
                let published = match (call.policy.timeout, fallback) {
                    (Some(limit), Some(fallback)) => {
                        match tokio::time::timeout(limit, flight::follow(rx)).await {
                            Ok(published) => published,
                            Err(_) => return Ok(self.serve_fallback(call, fallback)),
                        }
                    }
                    _ => flight::follow(rx).await,
                };
                return match published {
                    Published::Entry(bytes, basis) => {
                        match self.accept_entry::<O::Value>(call, &bytes, &basis, &read, since) {
                            Some(v) => Ok(O::from_cached(v)),
                            None => Err(load),
                        }
                    }
                    // An outcome carries no tags of its own: it holds only for a follower that
                    // read the very state (entry and tag versions) its load started from, or
                    // whose call began before that load's read.
                    Published::Outcome(any, basis)
                        if basis.order > since || same_state(&basis, &read) =>
                    {
                        match share.and_then(|s| (s.from_any)(&*any)) {
                            Some(out) => Ok(out),
                            None => Err(load),
                        }
                    }
                    Published::Outcome(..) | Published::Retry => Err(load),
                };
            }
        };

        if !read.reached {
            return Ok(self.lead_unreached(call, read, load, leader, share).await);
        }
        // This process loads the key; across processes, the lease decides who.
        let lease = match self.try_lease(call.key).await {
            Some(lease) => Some(lease),
            // Waiting would return the very value a forced refresh bypasses.
            None if call.policy.force_refresh => None,
            None => match self.wait_for_other::<O>(call, read.order).await {
                Waited::Value(v, found) => {
                    // Followers take it only if they read this very entry: one that read a
                    // newer state (an invalidation after this read) reads again.
                    let bytes = found.observed.clone().unwrap_or_default();
                    leader.publish(Published::Entry(bytes, found));
                    return Ok(O::from_cached(v));
                }
                Waited::Lease(lease) => Some(lease),
                Waited::GaveUp => None,
            },
        };
        let won = Won { leader, lease };
        Ok(self
            .lead::<O, L, M>(call, read, fallback, load, won, share)
            .await)
    }

    /// The outcome a cold flight ended with, for a caller that waited for it and whose shared
    /// read (sent after it arrived) found the very state that flight's load started from: an
    /// outcome that is not stored (an error, a `None`) reaches those callers as it reaches
    /// followers, rather than each of them loading again.
    pub(crate) fn outcome_of_flight<O: Outcome>(
        &self,
        flight: &Flight<Read>,
        read: &Read,
        share: Option<&Share<O>>,
    ) -> Option<O> {
        match flight.published()? {
            Published::Outcome(any, basis) if same_state(&basis, read) => {
                share.and_then(|s| (s.from_any)(&*any))
            }
            _ => None,
        }
    }

    /// A follower takes the leader's entry if the leader's read began after the follower's
    /// call (nothing the follower is owed can be newer), or if it was loaded against the state
    /// of the key the follower saw and carries the tag versions the follower read: otherwise
    /// the key was invalidated while the leader loaded, and the follower goes round again.
    fn accept_entry<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        bytes: &[u8],
        basis: &Read,
        read: &Read,
        since: u64,
    ) -> Option<T> {
        let raw = entry::parse(bytes).ok()?;
        if !super::lookup::of_shape(&raw, call.policy.shape) {
            return None;
        }
        let holds = basis.order > since
            || (same_entry(basis, read) && raw.tags_current(call.tags, &read.versions));
        if !holds {
            return None;
        }
        self.open_payload(call.key, &raw, call.policy.phi).ok()
    }

    /// Leads a load while the store is away: the call runs uncached, and its result still
    /// reaches the callers that wait for it (the value as the entry it would have been, an
    /// outcome that is not stored when it can be cloned), so that an outage does not turn
    /// every caller into a load of its own.
    async fn lead_unreached<O: Outcome, L: Load<O>>(
        &self,
        call: Call<'_>,
        read: Read,
        load: L,
        leader: Leader<Read>,
        share: Option<&Share<O>>,
    ) -> O {
        let started_ms = self.now_ms();
        let started = Instant::now();
        let out = load().await;
        let times = LoadTimes {
            started_ms,
            took: started.elapsed(),
        };
        let published = match (share, out.cached_value(call.policy.cache_none)) {
            (Some(s), _) => Published::Outcome((s.to_any)(&out), read),
            (None, Some(value)) => match self.prepare(call, value, &[], times.into()) {
                Some(prepared) => Published::Entry(prepared.bytes, read),
                None => Published::Retry,
            },
            (None, None) => Published::Retry,
        };
        leader.publish(published);
        out
    }

    /// Another process holds the lease: polls for its value, with backoff, for at most
    /// `lease_wait`; takes the lease if it is freed without a value. The polls apply no
    /// backlog, so what they find carries the order of the leader's own read, `order`.
    async fn wait_for_other<O: Outcome>(&self, call: Call<'_>, order: u64) -> Waited<O::Value> {
        self.count_waited(call.spec);
        let deadline = Instant::now() + self.inner.limits.lease_wait;
        let mut pause = Duration::from_millis(5);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Waited::GaveUp;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 3 / 2).min(Duration::from_millis(100));
            match self.poll_other::<O>(call, order).await {
                Ok(Some((value, read))) => return Waited::Value(value, read),
                Ok(None) => {}
                Err(()) => return Waited::GaveUp,
            }
            if let Some(lease) = self.try_lease(call.key).await {
                // The holder may have written its value and released its lease between the
                // poll above and this lease: one more read, or this process loads it again.
                return match self.poll_other::<O>(call, order).await {
                    Ok(Some((value, read))) => {
                        self.release_lease(&lease).await;
                        Waited::Value(value, read)
                    }
                    Ok(None) | Err(()) => Waited::Lease(lease),
                };
            }
        }
    }

    /// One poll of [`wait_for_other`](Self::wait_for_other): the value another process wrote,
    /// if it is there; an error when the store could not be read.
    async fn poll_other<O: Outcome>(
        &self,
        call: Call<'_>,
        order: u64,
    ) -> Result<Option<(O::Value, Read)>, ()> {
        match self.lookup::<O::Value>(call, false, order).await {
            Ok(Lookup {
                found:
                    Some(Found {
                        value,
                        age: Age::Fresh | Age::RefreshEarly | Age::Stale,
                        ..
                    }),
                read,
            }) if read.observed.is_some() => Ok(Some((value, read))),
            Ok(_) => Ok(None),
            Err(_) => Err(()),
        }
    }

    /// Loads as the leader of this key's flight: with the loader timeout and fail-safe, writes
    /// the result, releases the lease and hands the result to the followers.
    async fn lead<O, L, M>(
        &self,
        call: Call<'_>,
        read: Read,
        fallback: Option<Found<O::Value>>,
        load: L,
        Won { leader, lease }: Won,
        share: Option<&Share<O>>,
    ) -> O
    where
        O: Outcome,
        L: Load<O>,
        M: RefreshMode<O, L>,
    {
        let policy = call.policy;
        let started_ms = self.now_ms();
        let started = Instant::now();
        let mut fut = Box::pin(load());
        let (out, fallback) = match (policy.timeout, fallback) {
            (Some(limit), Some(fallback)) => {
                match tokio::time::timeout(limit, fut.as_mut()).await {
                    Ok(out) => (out, Some(fallback)),
                    Err(_) => {
                        // Past the timeout with a value to serve: serve it. A load that may
                        // leave the caller goes on in a task, still leading the key's flight,
                        // so that callers meanwhile wait for it (each up to its own timeout)
                        // rather than start loads of their own: one load per key, timed out
                        // or not. A load that may not leave is dropped here.
                        if let Some(lease) = &lease {
                            self.release_lease(lease).await;
                        }
                        if M::IN_BACKGROUND {
                            let mut bg = Background::of(self, call, read);
                            bg.leader = Some(leader);
                            M::spawn_finish(bg, started_ms, fut);
                        } else {
                            // The load ends here, before its flight does: a caller that
                            // arrives once the flight is over may start the next load, and
                            // must not run it beside this one. Followers that read this very
                            // entry are served it too (it is what each of them would fall
                            // back to); others read again.
                            drop(fut);
                            leader.publish(match &read.observed {
                                Some(bytes) => {
                                    Published::Entry(bytes.clone(), read.same_state_only())
                                }
                                None => Published::Retry,
                            });
                        }
                        return self.serve_fallback(call, fallback);
                    }
                }
            }
            (_, fallback) => (fut.await, fallback),
        };
        let took = started.elapsed();
        self.count_load(call.spec);
        self.count_load_took(call.spec, took);
        let cond = Condition::Unchanged(lease.as_ref());

        if let (true, Some(grace), Some(old)) = (out.is_failure(), policy.fail_safe, fallback) {
            // Stale-if-error, within the grace counted from the value's first expiry: serve
            // the expired value, and keep serving it for the throttle so a failing database
            // is not asked again on every request. Rewriting it never extends the grace.
            let now = self.now_ms();
            let kept_until_ms = old.expires_ms.saturating_add(millis(grace));
            if now < kept_until_ms {
                let throttle = millis(self.inner.limits.fail_safe_throttle);
                let lifetime = Lifetime::FailSafe {
                    now_ms: now,
                    fresh_until_ms: now.saturating_add(throttle).min(kept_until_ms),
                    expires_ms: old.expires_ms,
                    kept_until_ms,
                };
                let published = match self.write(call, &old.value, &read, lifetime, cond).await {
                    Some(bytes) => Published::Entry(bytes, read.same_state_only()),
                    None => Published::Retry,
                };
                leader.publish(published);
                tracing::warn!(
                    target: "cachette",
                    function = call.spec.map(|s| s.name),
                    "loader failed; serving the expired value (fail-safe)"
                );
                return self.serve_fallback(call, old);
            }
        }

        // A load that found the key empty writes only under a lease held in the store: pattern
        // invalidation stops such loads by deleting their leases, and cannot see the others.
        let visible = read.observed.is_some() || lease.as_ref().is_some_and(|l| l.in_store);
        let written = match out.cached_value(policy.cache_none).filter(|_| visible) {
            Some(value) => {
                let times = LoadTimes { started_ms, took };
                self.write(call, value, &read, times.into(), cond).await
            }
            None => {
                self.release_unwritten(cond).await;
                None
            }
        };
        // The read goes with the result: followers check it against their own.
        let published = match (written, share) {
            (Some(bytes), _) => Published::Entry(bytes, read),
            (None, Some(s)) => Published::Outcome((s.to_any)(&out), read),
            (None, None) => Published::Retry,
        };
        leader.publish(published);
        out
    }

    fn serve_fallback<O: Outcome>(&self, call: Call<'_>, fallback: Found<O::Value>) -> O {
        self.count_fail_safe(call.spec);
        O::from_cached(fallback.value)
    }
}

/// Whether two reads saw the same entry (by fingerprint), or both saw nothing there.
fn same_entry(a: &Read, b: &Read) -> bool {
    if !(a.reached && b.reached) {
        return false;
    }
    match (&a.observed, &b.observed) {
        (None, None) => true,
        (Some(a), Some(b)) => crate::store::same_fingerprint(a, b),
        _ => false,
    }
}

/// Whether two reads saw the same entry and the same tag versions.
fn same_state(a: &Read, b: &Read) -> bool {
    same_entry(a, b) && a.versions == b.versions
}
