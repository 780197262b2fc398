//! What one call asks for: its key, its tags, the function it belongs to and its policy, and
//! the loader that computes its value.

use std::future::Future;

use crate::cache::options::Policy;
use crate::l1::Stamp;
use crate::registry::FnSpec;

/// One call's key (prefix included), tags, spec and policy: the input of every step.
pub(crate) struct Call<'a> {
    pub key: &'a str,
    pub tags: &'a [String],
    /// The `#[cached]` function, for its counters and messages; `None` for the service API.
    pub spec: Option<&'static FnSpec>,
    pub policy: &'a Policy,
    /// The L1 stamp taken before the call's first read, when the call may use L1.
    pub l1: Option<Stamp>,
}

impl Clone for Call<'_> {
    fn clone(&self) -> Self {
        *self
    }
}
impl Copy for Call<'_> {}

impl Call<'_> {
    /// The key as shown in logs: protected keys are not shown.
    pub fn shown_key(&self) -> &str {
        if self.policy.phi { "<phi>" } else { self.key }
    }
}

/// The loader of a call (the original body, behind a closure called at most once).
pub(crate) trait Load<O>: FnOnce() -> Self::Fut {
    /// The loader's future.
    type Fut: Future<Output = O>;
}

impl<O, F, Fut> Load<O> for F
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = O>,
{
    type Fut = Fut;
}
