//! `#[cached]`, `#[patient_cache]` and `#[cache_put]`: render the key and tags, then look up
//! (or, for `#[cache_put]`, write through) and run the original body on a miss.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::visit::Visit;
use syn::{FnArg, ItemFn, LitStr, ReturnType};

use super::{Common, Mode, body, render_with, ret_ty, shape, templates, unskipped};
use crate::attr::{Args, CompressArg, Kind};
use crate::params::Params;
use crate::template::Template;
use crate::valid;

pub(crate) fn expand(args: &Args, func: &ItemFn) -> syn::Result<TokenStream> {
    let kind = args.kind;
    let phi = kind.phi();
    let params = Params::of(&func.sig);
    let key = args
        .key
        .as_ref()
        .map(|k| Template::parse(k, "key"))
        .transpose();
    let tags = templates(&args.tags, "tag");
    let (key, tags) = match (key, tags) {
        (Ok(k), Ok(t)) => (k, t),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    valid::check(args, func, &params, key.as_ref(), &tags, &[])?;
    let common = Common::of(args, func);
    let private = &common.private;
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
    let spec = spec(args, func, private, name, template_expr, default_key);

    // The key.
    let mut key_stmts = Vec::new();
    if phi {
        key_stmts.push(quote!(__cachette_k.lit(#ns);));
    }
    match &key {
        Some(k) => key_stmts.extend(render_with(k, &params, quote!(__cachette_k), &common.ids)),
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
                if common.ids.contains(&b) {
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
    let mut tag_exprs: Vec<TokenStream> = tags
        .iter()
        .map(|t| {
            let stmts = render_with(t, &params, quote!(__cachette_t), &common.ids);
            quote!({
                let mut __cachette_t = #private::KeyBuilder::tag();
                #(#stmts)*
                match __cachette_t.finish_tag() {
                    #private::Some(__cachette_t) => __cachette_t,
                    #private::None => break '__cachette_render #private::None,
                }
            })
        })
        .collect();
    for (role, lit) in &args.ids {
        let ident = params
            .find(&lit.value())
            .map(|b| b.ident.clone())
            .unwrap_or_else(|| format_ident!("{}", lit.value()));
        let lead = format!("{role}:");
        tag_exprs.push(quote!({
            let mut __cachette_t = #private::KeyBuilder::tag();
            __cachette_t.lit(#lead);
            __cachette_t.id(__cachette_cache, &#ident);
            match __cachette_t.finish_tag() {
                #private::Some(__cachette_t) => __cachette_t,
                #private::None => break '__cachette_render #private::None,
            }
        }));
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
            quote!(async move { #private::Plain(#body.await) }),
            quote!(.0),
        ),
        (Mode::Plain, Some(_)) => (
            quote!(async move { #private::Plain(#body.await.0) }),
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
            use #private::{ShareNone as _, ShareViaClone as _};
            (&&#private::Sharer::<#ret_ty>::new()).share()
        }},
        _ => quote!(#private::None),
    };
    let ret_span = match &func.sig.output {
        ReturnType::Type(..) => shape.value_span,
        ReturnType::Default => func.sig.ident.span(),
    };
    let support = &common.support;
    let call = if kind == Kind::CachePut {
        quote_spanned! {ret_span=>
            #support::put(__cachette_cache, &__CACHETTE_SPEC, __cachette_key, &__cachette_tags, __cachette_load()).await
        }
    } else {
        let entry = if detachable(args, func) {
            quote_spanned!(ret_span=> cached_in_background)
        } else {
            quote_spanned!(ret_span=> cached_inline)
        };
        quote_spanned! {ret_span=>
            #support::#entry(
                __cachette_cache, &__CACHETTE_SPEC, __cachette_key, &__cachette_tags, __cachette_load, __cachette_share.as_ref(),
            ).await
        }
    };

    let ItemFn {
        attrs, vis, sig, ..
    } = func;
    let linkme = quote!(#private::linkme);
    let common_cache = &common.cache_expr;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #[#linkme::distributed_slice(#private::REGISTRY)]
            #[linkme(crate = #linkme)]
            static __CACHETTE_SPEC: #private::FnSpec = #spec;

            let __cachette_enabled: bool = #condition;
            let __cachette_cache: &#private::Cache = #common_cache;
            // `None` runs the call uncached: disabled by `condition`, or an argument that
            // could not be rendered (its key would be shared with other arguments).
            let __cachette_prepared = if __cachette_enabled {
                '__cachette_render: {
                    let mut __cachette_k = #private::KeyBuilder::key(__cachette_cache);
                    #(#key_stmts)*
                    let #private::Some(__cachette_key) = __cachette_k.finish(&__CACHETTE_SPEC) else {
                        break '__cachette_render #private::None;
                    };
                    let __cachette_tags: [#private::String; #tag_count] = [#(#tag_exprs),*];
                    #private::Some((__cachette_key, __cachette_tags))
                }
            } else {
                #private::None
            };
            #[allow(unused_variables)]
            let __cachette_share = #share;
            let __cachette_load = move || #into_outcome;
            let __cachette_out = match __cachette_prepared {
                #private::Some((__cachette_key, __cachette_tags)) => #call,
                #private::None => __cachette_load().await,
            };
            #from_outcome
        }
    })
}

/// The registry entry of the function.
fn spec(
    args: &Args,
    func: &ItemFn,
    private: &TokenStream,
    name: &str,
    template_expr: TokenStream,
    default_key: bool,
) -> TokenStream {
    let _ = func;
    let mut spec = quote!(#private::FnSpec::new(#name, ::core::module_path!(), #template_expr));
    if default_key {
        spec.extend(quote!(.default_key()));
    }
    if let Some(ttl) = &args.ttl {
        let ms = ttl.ms;
        spec.extend(quote!(.ttl_ms(#ms)));
    }
    if let Some(stale) = &args.stale {
        let ms = stale.ms;
        spec.extend(quote!(.stale_ms(#ms)));
    }
    if args.stale_off.is_some() {
        spec.extend(quote!(.stale_off()));
    }
    if !args.tags.is_empty() {
        let t = &args.tags;
        spec.extend(quote!(.tags(&[#(#t),*])));
    }
    match &args.compress {
        None => {}
        Some(CompressArg::Default) => spec.extend(quote!(.compress(#private::Compress::Enabled))),
        Some(CompressArg::Never) => spec.extend(quote!(.compress(#private::Compress::Never))),
        Some(CompressArg::Above(n)) => {
            let n = *n as usize;
            spec.extend(quote!(.compress(#private::Compress::Above(#n))));
        }
    }
    if let Some((v, _)) = &args.version {
        spec.extend(quote!(.version(#v)));
    }
    if args.cache_none.as_ref().is_some_and(|b| b.value) {
        spec.extend(quote!(.cache_none()));
    }
    if let Some(t) = &args.timeout {
        let ms = t.ms;
        spec.extend(quote!(.timeout_ms(#ms)));
    }
    if let Some(f) = &args.fail_safe {
        let ms = f.ms;
        spec.extend(quote!(.fail_safe_ms(#ms)));
    }
    if let Some(j) = &args.jitter {
        let j: u8 = j.base10_parse().unwrap_or(0);
        spec.extend(quote!(.jitter(#j)));
    }
    if args.early.as_ref().is_some_and(|e| e.value) {
        let beta: f64 = args
            .beta
            .as_ref()
            .and_then(|b| b.base10_parse().ok())
            .unwrap_or(1.0);
        spec.extend(quote!(.early(#beta)));
    }
    let emergency = args.emergency.as_ref().is_some_and(|e| e.value);
    let priority = match args.priority.as_ref().map(LitStr::value).as_deref() {
        Some("critical") => Some(quote!(Critical)),
        Some("high") => Some(quote!(High)),
        Some("low") => Some(quote!(Low)),
        Some(_) => Some(quote!(Normal)),
        None if emergency => Some(quote!(Critical)),
        None => None,
    };
    if let Some(p) = priority {
        spec.extend(quote!(.priority(#private::Priority::#p)));
    }
    if args.kind == Kind::CachePut {
        spec.extend(quote!(.put()));
    }
    if args.kind.phi() {
        let level = args
            .compliance
            .as_ref()
            .map_or("sensitive".to_owned(), LitStr::value);
        let mut cap = valid::compliance_cap_ms(&level);
        if emergency {
            cap = cap.min(valid::EMERGENCY_CAP_MS);
            // Never served stale: fresh for the whole TTL.
            spec.extend(quote!(.stale_off()));
        }
        spec.extend(quote!(.phi().max_ttl_ms(#cap)));
    }
    spec.extend(quote!(.at(::core::file!(), ::core::line!())));
    spec
}

/// Whether the body may run in a background task (stale refresh, a load past its timeout):
/// it must own everything it uses. Read from the signature: no receiver, no reference,
/// lifetime, `impl Trait`, `Self` or generic parameter in the inputs or the output.
fn detachable(args: &Args, func: &ItemFn) -> bool {
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
