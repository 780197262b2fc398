//! What a call returns, seen by the cache: which outcomes are stored ([`Outcome`]), and how an
//! outcome that is not stored (an `Err`, a `None`) still reaches the callers that waited for
//! it ([`Share`], chosen by [`Sharer`]).

use std::any::Any;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a function's return value maps to what is cached.
///
/// `Result<T, E>` caches `Ok` only; `Option<T>` caches `Some` only (and `None` too with
/// `cache_none = true`); any other `T` is wrapped in [`Plain`] and always cached.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached",
    label = "the value returned here must implement `Serialize` and `DeserializeOwned`"
)]
pub trait Outcome: Sized {
    /// What is stored.
    type Value: Serialize + DeserializeOwned;
    /// The value to store, if this outcome is cacheable.
    fn cached_value(&self, cache_none: bool) -> Option<&Self::Value>;
    /// Rebuilds the outcome from a stored value.
    fn from_cached(value: Self::Value) -> Self;
    /// Whether this outcome is a failure (an `Err`), for fail-safe.
    fn is_failure(&self) -> bool {
        false
    }
}

impl<T: Serialize + DeserializeOwned, E> Outcome for Result<T, E> {
    type Value = T;
    #[inline]
    fn cached_value(&self, _: bool) -> Option<&T> {
        self.as_ref().ok()
    }
    #[inline]
    fn from_cached(value: T) -> Self {
        Ok(value)
    }
    #[inline]
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}

impl<T: Serialize + DeserializeOwned> Outcome for Option<T> {
    type Value = Option<T>;
    #[inline]
    fn cached_value(&self, cache_none: bool) -> Option<&Option<T>> {
        (self.is_some() || cache_none).then_some(self)
    }
    #[inline]
    fn from_cached(value: Option<T>) -> Self {
        value
    }
}

/// A return value that is always cached.
#[doc(hidden)]
pub struct Plain<T>(pub T);

impl<T: Serialize + DeserializeOwned> Outcome for Plain<T> {
    type Value = T;
    #[inline]
    fn cached_value(&self, _: bool) -> Option<&T> {
        Some(&self.0)
    }
    #[inline]
    fn from_cached(value: T) -> Self {
        Plain(value)
    }
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

/// How a value that can be cloned is kept decoded in the L1 tier, so that an L1 hit clones it
/// rather than decoding its bytes. Built where the value's type is known to be `Clone + Send +
/// Sync + 'static` (the outcome's need not be: `Result<User, sqlx::Error>` keeps its `User`).
pub struct Keep<V> {
    /// Wraps a value for keeping.
    pub to_any: fn(&V) -> Arc<dyn Any + Send + Sync>,
    /// Takes a copy back out.
    pub from_any: fn(&(dyn Any + Send + Sync)) -> Option<V>,
}

impl<V> Clone for Keep<V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for Keep<V> {}

/// Picks how a value is kept, by autoref specialization at the macro's call site:
/// `(&&Keeper::<V>::new()).keep()` is `Some` exactly when `V` is `Clone + Send + Sync +
/// 'static`.
#[doc(hidden)]
pub struct Keeper<V>(std::marker::PhantomData<fn() -> V>);

impl<V> Keeper<V> {
    /// A chooser for values of type `V`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Keeper(std::marker::PhantomData)
    }
}

/// The choice for values that can be cloned.
#[doc(hidden)]
pub trait KeepViaClone<V> {
    /// How to keep.
    fn keep(&self) -> Option<Keep<V>>;
}

impl<V: Clone + Send + Sync + 'static> KeepViaClone<V> for &Keeper<V> {
    fn keep(&self) -> Option<Keep<V>> {
        Some(Keep {
            to_any: |v| Arc::new(v.clone()),
            from_any: |any| any.downcast_ref::<V>().cloned(),
        })
    }
}

/// The fallback: L1 keeps the bytes, and decodes them on each hit.
#[doc(hidden)]
pub trait KeepNone<V> {
    /// How to keep.
    fn keep(&self) -> Option<Keep<V>>;
}

impl<V> KeepNone<V> for Keeper<V> {
    fn keep(&self) -> Option<Keep<V>> {
        None
    }
}

/// How a call's results reach others: the outcome to the callers that waited for its load,
/// the value to later L1 hits.
pub(crate) struct Sharing<'a, O: Outcome> {
    pub outcome: Option<&'a Share<O>>,
    pub value: Option<&'a Keep<O::Value>>,
}

impl<O: Outcome> Clone for Sharing<'_, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<O: Outcome> Copy for Sharing<'_, O> {}

impl<O: Outcome> Sharing<'_, O> {
    /// Nothing shared but through the encoded entry.
    pub fn none() -> Self {
        Sharing {
            outcome: None,
            value: None,
        }
    }
}
