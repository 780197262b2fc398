//! `#[invalidate]` and `#[invalidate_patient_cache]`: run the body, then invalidate keys,
//! patterns and tags rendered from the arguments (before the body as well with
//! `before = true`). A body that returns `Err` invalidates nothing.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use super::{Common, Mode, body, render_with, ret_ty, shape, templates};
use crate::attr::InvalidateArgs;
use crate::ctxt::Ctxt;
use crate::params::Params;
use crate::template::Template;
use crate::valid;

pub(crate) fn expand(args: &InvalidateArgs, func: &ItemFn) -> syn::Result<TokenStream> {
    let phi = args.attr.phi();
    let params = Params::of(&func.sig);
    let cx = Ctxt::new();
    let keys = templates(&cx, &args.keys, "key");
    let patterns = templates(&cx, &args.patterns, "pattern");
    let tags = templates(&cx, &args.shared.tags, "tag");
    cx.check()?;
    let all: Vec<&Template> = keys.iter().chain(&patterns).chain(&tags).collect();
    let cx = Ctxt::new();
    valid::invalidate(&cx, args, func, &params, &all);
    cx.check()?;
    let common = Common::of(args.attr, &args.shared, func);
    let support = &common.support;

    // Keys and patterns of protected entries live in the `phi:` namespace.
    let ns = if phi { "phi:" } else { "" };
    // Keys of a versioned `#[cached]` function end in `:v{version}`; `version` here matches.
    let version_suffix = args.shared.version.as_ref().map(|v| format!(":v{v}"));
    // Each item is `Option<String>`: `None` (an argument that could not be rendered) is
    // skipped.
    let render = |list: &[Template], namespaced: bool, versioned: bool| -> Vec<TokenStream> {
        list.iter()
            .map(|t| {
                let mut stmts = render_with(t, &params, quote!(__cachette_b), &common);
                if let (true, Some(suffix)) = (versioned, &version_suffix) {
                    stmts.push(quote!(__cachette_b.lit(#suffix);));
                }
                let lead = (namespaced && phi).then(|| quote!(__cachette_b.lit(#ns);));
                quote!({
                    let mut __cachette_b = #support::tag();
                    #lead
                    #(#stmts)*
                    __cachette_b.finish_tag()
                })
            })
            .collect()
    };
    let mut inv = quote!(#support::Invalidation::none());
    for (method, exprs) in [
        (quote!(and_keys), render(&keys, true, true)),
        (quote!(and_patterns), render(&patterns, true, false)),
        (quote!(and_tags), render(&tags, false, false)),
    ] {
        if !exprs.is_empty() {
            inv.extend(quote!(.#method([#(#exprs),*].into_iter().flatten())));
        }
    }

    let name = &common.name;
    let function = quote!(::core::concat!(::core::module_path!(), "::", #name));
    let apply =
        quote!(#support::invalidate(__cachette_cache, #function, &__cachette_inv, #phi).await;);
    let before = args
        .before
        .as_ref()
        .is_some_and(|b| b.value)
        .then(|| apply.clone());
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
            let __cachette_cache: &#support::Cache = #cache_expr;
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
