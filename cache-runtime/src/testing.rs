//! Tools for testing code that caches (feature `testing`): a virtual clock, a store that
//! fails on demand, probes of what the cache did and holds, and per-test scopes.
//!
//! - [`TestClock`]: advance the time a cache judges its entries by, without sleeping.
//! - [`Faults`]: make the store fail, stall, return garbage or go away, and count it.
//! - [`Mark`], [`stored_values_containing`], [`key_of`](fn@key_of) (or
//!   [`key_of!`](macro@key_of)): what happened since a point of the test, what the store
//!   holds, which key a call uses.
//! - [`scope`], [`pass_through`]: give one test's `#[cached]` functions a cache of their own,
//!   or none, without touching the tests running beside it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use cache_runtime::{Cache, LoadOptions};
//! use cache_runtime::testing::{Mark, TestClock};
//!
//! let clock = TestClock::new();
//! let cache = Cache::builder().clock(&clock).build().unwrap();
//! let options = LoadOptions::ttl(Duration::from_secs(300));
//! let load = || async { Ok::<_, std::io::Error>(42) };
//!
//! let mark = Mark::new(&cache);
//! cache.get_or_load("answer", &options, load).await.unwrap();
//! cache.get_or_load("answer", &options, load).await.unwrap();
//! assert_eq!(mark.since().loads, 1);
//!
//! clock.advance(Duration::from_secs(301)); // five minutes later, at once
//! cache.get_or_load("answer", &options, load).await.unwrap();
//! assert_eq!(mark.since().loads, 2);
//! # }
//! ```

mod clock;
mod faults;
mod probe;
mod scope;

pub use self::clock::TestClock;
pub(crate) use self::faults::{FaultStore, Wrapped};
pub use self::faults::{Faults, Injected};
pub use self::probe::{Mark, stored_values_containing};
pub use self::scope::{key_of, pass_through, scope};
pub(crate) use self::scope::{pass_through_active, probe_key, scoped_global};
/// The [`key_of!`](macro@crate::key_of) macro.
pub use crate::key_of;
