//! Attribute macros of [cachette](https://docs.rs/cachette). Use them through the `cachette`
//! crate, which re-exports them; the generated code reaches the runtime only through
//! `::cachette::__macro_support` (or the path given with `crate = ".."`).
//!
//! This crate only parses and hands over. Modules depend one way: `ctxt` (errors) and
//! `suggest` (did-you-mean) at the bottom; `attr` reads the arguments (its table `ARGS` is the
//! one list of them), `template` the key templates, `params` the signature; `valid` checks them
//! against each other; `expand` writes the wrapped function, `derive` the `KeyPart` derive.

mod attr;
mod ctxt;
mod derive;
mod duration;
mod expand;
mod params;
mod suggest;
mod template;
mod valid;

use proc_macro::TokenStream;

use crate::attr::Attr;

/// Caches the results of an async function. See the `cachette` crate for the arguments.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Attr::Cached, args.into(), item.into()).into()
}

/// Caches protected health information: sealed values, hashed identifiers, compliance caps,
/// audit. See `cachette::healthcare`.
#[proc_macro_attribute]
pub fn patient_cache(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Attr::PatientCache, args.into(), item.into()).into()
}

/// Runs the function and writes its result to the cache (write-through, Spring's `@CachePut`).
#[proc_macro_attribute]
pub fn cache_put(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Attr::CachePut, args.into(), item.into()).into()
}

/// Invalidates keys, patterns and tags after the function succeeds.
#[proc_macro_attribute]
pub fn invalidate(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Attr::Invalidate, args.into(), item.into()).into()
}

/// Invalidates protected entries (hashed identifiers, the `phi:` namespace), with audit.
#[proc_macro_attribute]
pub fn invalidate_patient_cache(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Attr::InvalidatePatientCache, args.into(), item.into()).into()
}

/// Derives `KeyPart` for a struct with one field (delegating to it) or an enum of unit
/// variants (rendering the variant's name). `#[cachette(crate = "path")]` names the facade
/// when it is renamed, as `#[serde(crate = "..")]` does.
#[proc_macro_derive(KeyPart, attributes(cachette))]
pub fn derive_key_part(input: TokenStream) -> TokenStream {
    derive::key_part(input.into()).into()
}
