//! `#[cached]`, `#[patient_cache]` and `#[cache_put]`: render the key and tags, then look up
//! (or, for `#[cache_put]`, write through) and run the original body on a miss.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::visit::Visit;
use syn::{FnArg, ItemFn, LitStr, ReturnType};

use super::{Common, Mode, body, render_with, respan, ret_ty, shape, templates};
use crate::attr::{Attr, CacheArgs, CompressArg, Stale};
use crate::ctxt::Ctxt;
use crate::params::Params;
use crate::template::Template;
use crate::valid;

pub(crate) fn expand(args: &CacheArgs, func: &ItemFn) -> syn::Result<TokenStream> {
    if let Some(batch) = &args.batch {
        return super::batch::expand(args, func, batch);
    }
    let attr = args.attr;
    let phi = attr.phi();
    let params = Params::of(&func.sig);
    let cx = Ctxt::new();
    let key = args
        .key
        .as_ref()
        .and_then(|k| cx.ok(Template::parse(k, "key")));
    let tags = templates(&cx, &args.shared.tags, "tag");
    cx.check()?;
    let cx = Ctxt::new();
    valid::cached(&cx, args, func, &params, key.as_ref(), &tags);
    cx.check()?;
    let common = Common::of(args.attr, &args.shared, func);
    let support = &common.support;
    let name = &common.name;
    let ns = if phi { "phi:" } else { "" };

    // The registry entry.
    let (template_expr, default_key) = match &key {
        Some(k) => {
            let lit = LitStr::new(&format!("{ns}{}", k.lit.value()), k.lit.span());
            (quote!(#lit), false)
        }
        None => {
            let mut t = if params.has_self {
                format!("::{{Self}}::{name}")
            } else {
                format!("::{name}")
            };
            for b in unskipped(&params, args) {
                t.push_str(&format!(":{{{b}}}"));
            }
            let lit = LitStr::new(&t, Span::call_site());
            (
                quote!(::core::concat!(#ns, ::core::module_path!(), #lit)),
                true,
            )
        }
    };
    let spec = spec(args, support, name, template_expr, default_key);

    // The key.
    let mut key_stmts = Vec::new();
    if phi {
        key_stmts.push(quote!(__cachette_k.lit(#ns);));
    }
    match &key {
        Some(k) => key_stmts.extend(render_with(k, &params, quote!(__cachette_k), &common)),
        None => {
            key_stmts.push(quote!(__cachette_k.lit(::core::module_path!());));
            if params.has_self {
                // Methods of different types in one module (two `impl Repo for ..`) must not
                // share keys: the receiver's type is part of the default key.
                key_stmts.push(quote! {
                    __cachette_k.lit("::");
                    __cachette_k.part(::core::any::type_name::<Self>());
                });
            }
            let mut lead = format!("::{name}");
            for b in unskipped(&params, args) {
                lead.push(':');
                key_stmts.push(quote!(__cachette_k.lit(#lead);));
                lead.clear();
                let ident = params
                    .find(&b)
                    .map(|x| x.ident.clone())
                    .unwrap_or_else(|| format_ident!("{}", b));
                if common.hashed(&b) {
                    key_stmts.push(
                        quote_spanned!(ident.span()=> __cachette_k.id(__cachette_cache, &#ident);),
                    );
                } else {
                    key_stmts.push(quote_spanned!(ident.span()=> __cachette_k.part(&#ident);));
                }
            }
            if !lead.is_empty() {
                key_stmts.push(quote!(__cachette_k.lit(#lead);));
            }
        }
    }

    // Tags: the attribute's, and for protected functions one per identifier
    // (`patient:{hash}`), which the healthcare helpers invalidate.
    let mut tag_exprs = tag_exprs(&tags, &params, &common);
    for id in &args.shared.ids {
        let ident = params
            .find(&id.param.value())
            .map(|b| b.ident.clone())
            .unwrap_or_else(|| format_ident!("{}", id.param.value()));
        let lead = format!("{}:", id.role);
        let stmts = [
            quote!(__cachette_t.lit(#lead);),
            quote!(__cachette_t.id(__cachette_cache, &#ident);),
        ];
        tag_exprs.push(tag_expr(support, &stmts));
    }
    let tag_count = tag_exprs.len();

    let condition = match &args.condition {
        Some(c) => quote!(#c),
        None => quote!(true),
    };

    let body = body(func);
    let ret_ty = ret_ty(func);
    let shape = shape(&func.sig.output);
    let (into_outcome, from_outcome) = match (&shape.mode, &shape.json) {
        (Mode::Result | Mode::Option, None) => (body.clone(), quote!()),
        (Mode::Result | Mode::Option, Some(json)) => (
            quote!(async move { #body.await.map(|__cachette_j| __cachette_j.0) }),
            quote!(.map(#json)),
        ),
        (Mode::Plain, None) => (
            quote!(async move { #support::Plain(#body.await) }),
            quote!(.0),
        ),
        (Mode::Plain, Some(_)) => (
            quote!(async move { #support::Plain(#body.await.0) }),
            quote!(.0),
        ),
    };
    let from_outcome = match (&shape.mode, &shape.json) {
        (Mode::Plain, Some(json)) => quote!(#json(__cachette_out #from_outcome)),
        _ => quote!(__cachette_out #from_outcome),
    };
    // Outcomes that are not cached (errors, `None`) reach every caller that waited for the
    // load when they can be cloned; chosen by autoref specialization on the declared type.
    let share = match (&shape.mode, &shape.json) {
        (Mode::Result | Mode::Option, None) => quote! {{
            #[allow(unused_imports)]
            use #support::{ShareNone as _, ShareViaClone as _};
            (&&#support::Sharer::<#ret_ty>::new()).share()
        }},
        _ => quote!(#support::None),
    };
    // Values that can be cloned are kept decoded by the L1 tier: a hit clones, never decodes.
    let value_ty = &shape.value;
    let keep = quote! {{
        #[allow(unused_imports)]
        use #support::{KeepNone as _, KeepViaClone as _};
        (&&#support::Keeper::<#value_ty>::new()).keep()
    }};
    let ret_span = match &func.sig.output {
        ReturnType::Type(..) => shape.value_span,
        ReturnType::Default => func.sig.ident.span(),
    };
    let spec_ref = quote!(&__CACHETTE_SPEC, __cachette_key, &__cachette_tags);
    // The whole call at the value's type, where a missing `Serialize` is reported.
    let support_at = respan(support, ret_span);
    // A write-through shares nothing with waiting callers: it binds neither (a plain `None`
    // bound and never used would leave its type to infer).
    let (call, check_send, sharing) = if attr == Attr::CachePut {
        let call = quote_spanned! {ret_span=>
            #support_at::put(__cachette_cache, #spec_ref, __cachette_load()).await
        };
        (call, None, quote!())
    } else {
        let background = detachable(args, func);
        let entry = if background {
            quote_spanned!(ret_span=> cached_in_background)
        } else {
            quote_spanned!(ret_span=> cached_inline)
        };
        let call = quote_spanned! {ret_span=>
            #support_at::#entry(__cachette_cache, #spec_ref, __cachette_load, __cachette_share.as_ref(), __cachette_keep.as_ref()).await
        };
        let sharing = quote! {
            let __cachette_share = #share;
            let __cachette_keep = #keep;
        };
        (call, background.then(|| check_send(attr, func)), sharing)
    };

    let ItemFn {
        attrs, vis, sig, ..
    } = func;
    let registered = register(support, &spec);
    let render_key = render_key(support, &key_stmts);
    let common_cache = &common.cache_expr;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #registered

            let __cachette_enabled: bool = #condition;
            let __cachette_cache: &#support::Cache = #common_cache;
            // `None` runs the call uncached: disabled by `condition`, or an argument that
            // could not be rendered (its key would be shared with other arguments).
            let __cachette_prepared = if __cachette_enabled {
                '__cachette_render: {
                    #render_key
                    let __cachette_tags: [#support::String; #tag_count] = [#(#tag_exprs),*];
                    #support::Some((__cachette_key, __cachette_tags))
                }
            } else {
                #support::None
            };
            #sharing
            let __cachette_load = move || #into_outcome;
            #check_send
            let __cachette_out = match __cachette_prepared {
                #support::Some((__cachette_key, __cachette_tags)) => #call,
                #support::None => __cachette_load().await,
            };
            #from_outcome
        }
    })
}

/// The registry entry of the function.
pub(super) fn spec(
    args: &CacheArgs,
    support: &TokenStream,
    name: &str,
    template_expr: TokenStream,
    default_key: bool,
) -> TokenStream {
    let mut spec = quote!(#support::FnSpec::new(#name, ::core::module_path!(), #template_expr));
    let mut set = |on: bool, call: TokenStream| {
        if on {
            spec.extend(quote!(.#call));
        }
    };
    let ms = |d: Option<crate::attr::DurationArg>| d.map(|d| d.ms);
    set(default_key, quote!(default_key()));
    for (method, value) in [
        (quote!(ttl_ms), ms(args.ttl)),
        (quote!(stale_ms), ms(args.stale_after())),
        (quote!(timeout_ms), ms(args.timeout)),
        (quote!(fail_safe_ms), ms(args.fail_safe)),
    ] {
        set(value.is_some(), quote!(#method(#value)));
    }
    set(matches!(args.stale, Some(Stale::Off)), quote!(stale_off()));
    match args.l1 {
        Some(crate::attr::L1Arg::For(d)) => {
            let ms = d.ms;
            set(true, quote!(l1_ms(#ms)));
        }
        Some(crate::attr::L1Arg::Off) => set(true, quote!(no_l1())),
        None => {}
    }
    let tags = &args.shared.tags;
    set(!tags.is_empty(), quote!(tags(&[#(#tags),*])));
    let compress = match &args.compress {
        None => None,
        Some(CompressArg::Default) => Some(quote!(Enabled)),
        Some(CompressArg::Never) => Some(quote!(Never)),
        Some(CompressArg::Above(n)) => {
            let n = *n as usize;
            Some(quote!(Above(#n)))
        }
    };
    set(
        compress.is_some(),
        quote!(compress(#support::Compress::#compress)),
    );
    let version = &args.shared.version;
    set(version.is_some(), quote!(version(#version)));
    let flag = |b: &Option<syn::LitBool>| b.as_ref().is_some_and(|b| b.value);
    set(flag(&args.cache_none), quote!(cache_none()));
    let value_shape = args.value_shape.as_ref().is_none_or(|b| b.value);
    set(!value_shape, quote!(no_value_shape()));
    let jitter = args.jitter;
    set(jitter.is_some(), quote!(jitter(#jitter)));
    let beta: f64 = args
        .beta
        .as_ref()
        .and_then(|b| b.base10_parse().ok())
        .unwrap_or(1.0);
    set(flag(&args.early), quote!(early(#beta)));
    let emergency = args.emergency();
    let priority = match args.priority.as_ref().map(LitStr::value).as_deref() {
        Some("critical") => Some(quote!(Critical)),
        Some("high") => Some(quote!(High)),
        Some("low") => Some(quote!(Low)),
        Some(_) => Some(quote!(Normal)),
        None if emergency => Some(quote!(Critical)),
        None => None,
    };
    set(
        priority.is_some(),
        quote!(priority(#support::Priority::#priority)),
    );
    set(args.attr == Attr::CachePut, quote!(put()));
    if args.attr.phi() {
        // Emergency data is never served stale: fresh for the whole TTL.
        set(emergency, quote!(stale_off()));
        let cap = valid::phi_cap_ms(args);
        set(true, quote!(phi().max_ttl_ms(#cap)));
    }
    set(true, quote!(at(::core::file!(), ::core::line!())));
    spec
}

/// The function's [`spec`] as the static `__CACHETTE_SPEC`, registered in the runtime's
/// registry.
pub(super) fn register(support: &TokenStream, spec: &TokenStream) -> TokenStream {
    let linkme = quote!(#support::linkme);
    quote! {
        #[#linkme::distributed_slice(#support::REGISTRY)]
        #[linkme(crate = #linkme)]
        static __CACHETTE_SPEC: #support::FnSpec = #spec;
    }
}

/// `__cachette_key`, rendered by `key_stmts` into a builder and finished; a key that cannot
/// be rendered leaves the block `'__cachette_render` with `None` (the call runs uncached).
pub(super) fn render_key(support: &TokenStream, key_stmts: &[TokenStream]) -> TokenStream {
    quote! {
        let mut __cachette_k = #support::key(__cachette_cache);
        #(#key_stmts)*
        let #support::Some(__cachette_key) = __cachette_k.finish(&__CACHETTE_SPEC) else {
            break '__cachette_render #support::None;
        };
    }
}

/// One expression per tag template: the tag, or leaving `'__cachette_render` with `None`.
pub(super) fn tag_exprs(tags: &[Template], params: &Params, common: &Common) -> Vec<TokenStream> {
    tags.iter()
        .map(|t| {
            let stmts = render_with(t, params, quote!(__cachette_t), common);
            tag_expr(&common.support, &stmts)
        })
        .collect()
}

/// A tag rendered by `stmts` into `__cachette_t`, or leaving `'__cachette_render` with `None`.
fn tag_expr(support: &TokenStream, stmts: &[TokenStream]) -> TokenStream {
    quote!({
        let mut __cachette_t = #support::tag();
        #(#stmts)*
        match __cachette_t.finish_tag() {
            #support::Some(__cachette_t) => __cachette_t,
            #support::None => break '__cachette_render #support::None,
        }
    })
}

/// Parameter names in the default key: all but skipped ones.
fn unskipped(params: &Params, args: &CacheArgs) -> Vec<String> {
    params
        .bindings
        .iter()
        .map(|b| b.name.clone())
        .filter(|n| !args.skip.iter().any(|s| s.unraw() == n))
        .collect()
}

/// A check that the body of a function refreshed in the background can go to another thread,
/// which says what to write when it cannot. Without it, rustc would report the bound of the
/// runtime function the call goes through. It is read on the loader (the closure): an error
/// about a trait of the closure uses this trait's message, where one about the future itself
/// would be reported as the `Send` of the value held across an `.await`.
fn check_send(attr: Attr, func: &ItemFn) -> TokenStream {
    let name = &func.sig.ident;
    let message = format!(
        "the body of `{}` is not `Send`, so {} cannot refresh it in a background task",
        name.unraw(),
        attr.name(),
    );
    let note = format!(
        "write `{}(refresh = \"inline\", ..)]`: the caller that finds a stale value refreshes \
         it itself",
        attr.name().trim_end_matches(']')
    );
    // In a block of its own, so that these names cannot shadow the user's in the body.
    quote_spanned! {name.span()=>
        let __cachette_load = {
            #[diagnostic::on_unimplemented(
                message = #message,
                label = "it holds a value that is not `Send` across an `.await`, or takes one",
                note = #note,
            )]
            trait RefreshInBackground<Fut> {}
            #[diagnostic::do_not_recommend]
            impl<F, Fut> RefreshInBackground<Fut> for F
            where
                F: FnOnce() -> Fut + Send + 'static,
                Fut: Send + 'static,
            {
            }
            fn refresh_in_background<F: FnOnce() -> Fut + RefreshInBackground<Fut>, Fut>(load: F) -> F {
                load
            }
            refresh_in_background(__cachette_load)
        };
    }
}

/// Whether the body may run in a background task (stale refresh, a load past its timeout):
/// it must own everything it uses. Read from the signature: no receiver, no reference,
/// lifetime, `impl Trait`, `Self` or generic parameter in the inputs or the output.
fn detachable(args: &CacheArgs, func: &ItemFn) -> bool {
    if args.refresh.as_ref().is_some_and(|r| r.value() == "inline") {
        return false;
    }
    if !func.sig.generics.params.is_empty() {
        return false;
    }
    struct Borrows(bool);
    impl<'ast> Visit<'ast> for Borrows {
        fn visit_type_reference(&mut self, _: &'ast syn::TypeReference) {
            self.0 = true;
        }
        fn visit_lifetime(&mut self, _: &'ast syn::Lifetime) {
            self.0 = true;
        }
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_trait_object(&mut self, _: &'ast syn::TypeTraitObject) {
            self.0 = true;
        }
        fn visit_ident(&mut self, i: &'ast proc_macro2::Ident) {
            if i == "Self" {
                self.0 = true;
            }
        }
    }
    let mut b = Borrows(false);
    for input in &func.sig.inputs {
        match input {
            FnArg::Receiver(_) => return false,
            FnArg::Typed(pt) => b.visit_type(&pt.ty),
        }
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        b.visit_type(ty);
    }
    !b.0
}
