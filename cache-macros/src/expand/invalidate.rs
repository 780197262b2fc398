//! `#[invalidate]` and `#[invalidate_patient_cache]`: run the body, then invalidate keys,
//! patterns and tags rendered from the arguments (before the body as well with
//! `before = true`). A body that returns `Err` invalidates nothing.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use super::{Common, Mode, body, render_with, ret_ty, shape, templates};
use crate::attr::Args;
use crate::params::Params;
use crate::template::Template;
use crate::valid;

pub(crate) fn expand(args: &Args, func: &ItemFn) -> syn::Result<TokenStream> {
    let phi = args.kind.phi();
    let params = Params::of(&func.sig);
    let mut errors: Option<syn::Error> = None;
    let mut parsed = |lits: &[syn::LitStr], what: &str| match templates(lits, what) {
        Ok(t) => t,
        Err(e) => {
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
            Vec::new()
        }
    };
    let keys = parsed(&args.keys, "key");
    let patterns = parsed(&args.patterns, "pattern");
    let tags = parsed(&args.tags, "tag");
    if let Some(e) = errors {
        return Err(e);
    }
    let all: Vec<&Template> = keys.iter().chain(&patterns).chain(&tags).collect();
    valid::check(args, func, &params, None, &[], &all)?;
    let common = Common::of(args, func);
    let private = &common.private;

    // Keys and patterns of protected entries live in the `phi:` namespace.
    let ns = if phi { "phi:" } else { "" };
    // Keys of a versioned `#[cached]` function end in `:v{version}`; `version` here matches.
    let version_suffix = args.version.as_ref().map(|(v, _)| format!(":v{v}"));
    let render = |list: &[Template], namespaced: bool, versioned: bool| -> Vec<TokenStream> {
        list.iter()
            .map(|t| {
                let mut stmts = render_with(t, &params, quote!(__cachette_b), &common.ids);
                if let (true, Some(suffix)) = (versioned, &version_suffix) {
                    stmts.push(quote!(__cachette_b.lit(#suffix);));
                }
                let lead = if namespaced && !ns.is_empty() {
                    quote!(__cachette_b.lit(#ns);)
                } else {
                    quote!()
                };
                quote!({
                    let mut __cachette_b = #private::KeyBuilder::bare();
                    #lead
                    #(#stmts)*
                    __cachette_b.finish_tag()
                })
            })
            .collect()
    };
    let mut inv = quote!(#private::Invalidation::none());
    let key_exprs = render(&keys, true, true);
    if !key_exprs.is_empty() {
        inv.extend(quote!(.and_keys([#(#key_exprs),*].into_iter().flatten())));
    }
    let pattern_exprs = render(&patterns, true, false);
    if !pattern_exprs.is_empty() {
        inv.extend(quote!(.and_patterns([#(#pattern_exprs),*].into_iter().flatten())));
    }
    let tag_exprs = render(&tags, false, false);
    if !tag_exprs.is_empty() {
        inv.extend(quote!(.and_tags([#(#tag_exprs),*].into_iter().flatten())));
    }

    let name = &common.name;
    let function = quote!(::core::concat!(::core::module_path!(), "::", #name));
    let support = &common.support;
    let apply =
        quote!(#support::invalidate(__cachette_cache, #function, &__cachette_inv, #phi).await;);
    let before = args.before.as_ref().is_some_and(|b| b.value);
    let before = before.then(|| apply.clone());
    let succeeded = match shape(&func.sig.output).mode {
        Mode::Result => quote!(__cachette_out.is_ok()),
        Mode::Option | Mode::Plain => quote!(true),
    };
    let body = body(func);
    let ret_ty = ret_ty(func);
    let cache_expr = &common.cache_expr;
    let ItemFn {
        attrs, vis, sig, ..
    } = func;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let __cachette_cache: &#private::Cache = #cache_expr;
            let __cachette_inv = #inv;
            #before
            let __cachette_out: #ret_ty = #body.await;
            if #succeeded {
                #apply
            }
            __cachette_out
        }
    })
}
