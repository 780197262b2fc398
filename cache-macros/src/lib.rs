//! Attribute macros of [cachette](https://docs.rs/cachette). Use them through the `cachette`
//! crate, which re-exports them; the generated code refers to `::cachette::__private`.
//!
//! This crate only parses and hands over: `attr` reads the arguments, `template` the key
//! templates, `params` the signature, `valid` checks them against each other, `expand` writes
//! the wrapped function, `derive` the `KeyPart` derive.

mod attr;
mod derive;
mod duration;
mod expand;
mod params;
mod template;
mod valid;

use proc_macro::TokenStream;

use crate::attr::Kind;

/// Caches the results of an async function. See the `cachette` crate for the arguments.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Cached, args.into(), item.into()).into()
}

/// Caches protected health information: sealed values, hashed identifiers, compliance caps,
/// audit. See `cachette::healthcare`.
#[proc_macro_attribute]
pub fn patient_cache(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::PatientCache, args.into(), item.into()).into()
}

/// Runs the function and writes its result to the cache (write-through, Spring's `@CachePut`).
#[proc_macro_attribute]
pub fn cache_put(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::CachePut, args.into(), item.into()).into()
}

/// Invalidates keys, patterns and tags after the function succeeds.
#[proc_macro_attribute]
pub fn invalidate(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Invalidate, args.into(), item.into()).into()
}

/// Invalidates protected entries (hashed identifiers, the `phi:` namespace), with audit.
#[proc_macro_attribute]
pub fn invalidate_patient_cache(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::InvalidatePatientCache, args.into(), item.into()).into()
}

/// Derives `KeyPart` for a struct with one field (delegating to it) or an enum of unit
/// variants (rendering the variant's name).
#[proc_macro_derive(KeyPart, attributes(cachette))]
pub fn derive_key_part(input: TokenStream) -> TokenStream {
    derive::key_part(input.into()).into()
}
