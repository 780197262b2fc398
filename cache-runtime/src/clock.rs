//! Wall-clock readings for freshness checks.
//!
//! Reading the precise clock costs 20–40 ns on common virtual machines (the TSC read behind
//! `clock_gettime` is slow there), several times what the rest of an in-process hit spends on
//! time. Linux also keeps a *coarse* wall clock: the time of the last timer tick, read from
//! the vDSO page without touching the TSC (about 5 ns). It is never ahead of the precise clock
//! and at most about one tick (1–10 ms) behind it, so it is enough to see that an entry is
//! plainly fresh; anything near a boundary is judged by the precise clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// The clock a cache judges its entries by: the wall clock, plus the offset of a test's
/// virtual clock when one is configured (`testing::TestClock`). Each cache has its own, so two
/// tests with two caches never move each other's time. Without a virtual clock a reading costs
/// one predictable branch more than the wall clock.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clock {
    offset: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// A clock `offset` ms (shared with its handle, which advances it) ahead of the wall clock.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn offset_by(offset: Arc<AtomicU64>) -> Clock {
        Clock {
            offset: Some(offset),
        }
    }

    /// How far ahead of the wall clock this clock is, in ms.
    #[inline]
    pub(crate) fn offset_ms(&self) -> u64 {
        match &self.offset {
            None => 0,
            Some(o) => o.load(Relaxed),
        }
    }

    /// Unix time in ms on this clock.
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        now_ms().saturating_add(self.offset_ms())
    }

    /// [`now_ms_for`] on this clock: the coarse wall clock where it cannot change the verdict.
    #[inline]
    pub(crate) fn now_ms_for(&self, fresh_until_ms: u64) -> u64 {
        match &self.offset {
            None => now_ms_for(fresh_until_ms),
            Some(o) => {
                let off = o.load(Relaxed);
                now_ms_for(fresh_until_ms.saturating_sub(off)).saturating_add(off)
            }
        }
    }
}

/// `d` in whole milliseconds, saturating.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Unix time in ms on this machine's clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The unix time in ms to judge an entry that is fresh until `fresh_until_ms` against: the
/// coarse clock when even its worst lag leaves the entry fresh (then the precise clock would
/// say fresh too), the precise clock otherwise.
#[inline]
pub(crate) fn now_ms_for(fresh_until_ms: u64) -> u64 {
    match coarse::now_ms() {
        Some((now, slack)) if now.saturating_add(slack) < fresh_until_ms => now,
        _ => now_ms(),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod coarse {
    use std::sync::OnceLock;

    /// Coarse resolutions above this are not trusted: the precise clock is used instead.
    const MAX_RESOLUTION_NS: i64 = 20_000_000;

    fn read(clock: libc::clockid_t, get: bool) -> Option<libc::timespec> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call, which is
        // all either function requires; neither keeps the pointer.
        let rc = unsafe {
            if get {
                libc::clock_gettime(clock, &mut ts)
            } else {
                libc::clock_getres(clock, &mut ts)
            }
        };
        (rc == 0).then_some(ts)
    }

    /// How far behind the precise clock the coarse one may be, in ms: two of its ticks, so
    /// that a tick handled late still falls within it. `None` when there is no usable coarse
    /// clock.
    fn slack_ms() -> Option<u64> {
        static SLACK: OnceLock<Option<u64>> = OnceLock::new();
        *SLACK.get_or_init(|| {
            let res = read(libc::CLOCK_REALTIME_COARSE, false)?;
            // `time_t` and `c_long` are 32 bits on some targets: the conversions are not
            // useless everywhere.
            #[allow(clippy::useless_conversion)]
            let ns = i64::from(res.tv_sec)
                .checked_mul(1_000_000_000)?
                .checked_add(i64::from(res.tv_nsec))?;
            if !(1..=MAX_RESOLUTION_NS).contains(&ns) {
                return None;
            }
            u64::try_from(2 * ns / 1_000_000 + 1).ok()
        })
    }

    /// The coarse unix time in ms and its slack.
    #[inline]
    pub(super) fn now_ms() -> Option<(u64, u64)> {
        let slack = slack_ms()?;
        let ts = read(libc::CLOCK_REALTIME_COARSE, true)?;
        let secs = u64::try_from(ts.tv_sec).ok()?;
        let ms = secs
            .checked_mul(1000)?
            .checked_add(u64::try_from(ts.tv_nsec / 1_000_000).ok()?)?;
        Some((ms, slack))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod coarse {
    /// No coarse clock here: every freshness check reads the precise one.
    #[inline]
    pub(super) fn now_ms() -> Option<(u64, u64)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_reading_is_never_ahead() {
        for _ in 0..1000 {
            if let Some((coarse, slack)) = coarse::now_ms() {
                assert!(slack >= 1);
                let precise = now_ms();
                assert!(
                    coarse <= precise,
                    "coarse {coarse} ahead of precise {precise}"
                );
            }
        }
    }

    #[test]
    fn boundaries_use_the_precise_clock() {
        let before = now_ms();
        // An entry fresh until now (or already past it) is judged by the precise clock.
        let judged = now_ms_for(before);
        assert!(judged >= before);
        // A plainly fresh entry may be judged by either; never ahead of the precise clock.
        let judged = now_ms_for(before + 3_600_000);
        assert!(judged <= now_ms());
    }
}
