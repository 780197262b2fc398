//! `#[cached(key = "user:{id}", batch = "id in ids")]`: a function that loads many ids at once.
//! Each id is cached under its own key (the template names the item); one call reads them all,
//! and the original body runs once, with the ids that were missing.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{FnArg, Ident, ItemFn, LitStr, Pat, ReturnType, Type};

use super::{Common, ret_ty, templates};
use crate::attr::CacheArgs;
use crate::ctxt::Ctxt;
use crate::params::{Binding, Params};
use crate::template::Template;
use crate::valid;

/// How the batch parameter holds its ids.
enum Holds {
    /// `Vec<T>`: the body gets the missing ids as a `Vec`.
    Vec,
    /// `&[T]` or `&Vec<T>`: the body gets a slice of the missing ids.
    Slice,
}

/// What the function returns.
struct Returns {
    /// `Result<_, E>` around it.
    result: bool,
    /// `Vec<Option<V>>`, one per id in the order given; otherwise a map from id to value.
    ordered: bool,
}

const RETURNS: &str = "a batch function returns a map from id to value (`HashMap<u64, User>`) \
                       or one `Option` per id in the order given (`Vec<Option<User>>`), each \
                       optionally in a `Result`";

pub(crate) fn expand(args: &CacheArgs, func: &ItemFn, batch: &LitStr) -> syn::Result<TokenStream> {
    let Some((item_name, coll_name)) = parse_batch(batch) else {
        return Err(syn::Error::new(
            batch.span(),
            "`batch` names the item and the collection parameter: write \
             `batch = \"id in ids\"` for a parameter `ids: Vec<u64>`, and `{id}` in the key",
        ));
    };
    let cx = Ctxt::new();
    refuse_options(&cx, args, batch);
    let mut params = Params::of(&func.sig);
    let coll = params.find(&coll_name).map(|b| b.ident.clone());
    let Some(coll) = coll else {
        cx.error_at(
            batch.span(),
            format!(
                "`{coll_name}` is not a parameter of this function; `batch = \"{item_name} in \
                 ..\"` names the parameter that holds the ids"
            ),
        );
        return Err(cx.check().err().unwrap_or_else(|| batch_error(batch)));
    };
    if params.find(&item_name).is_some() {
        cx.error_at(
            batch.span(),
            format!(
                "`{item_name}` is a parameter already; name the item of `{coll_name}` \
                 differently, as in `batch = \"item in {coll_name}\"`"
            ),
        );
    }
    let (item_ty, holds) = match collection(func, &coll_name) {
        Ok(found) => found,
        Err(e) => {
            cx.syn_error(e);
            return Err(cx.check().err().unwrap_or_else(|| batch_error(batch)));
        }
    };
    let returns = match returns(&func.sig.output) {
        Some(r) => r,
        None => {
            let span = match &func.sig.output {
                ReturnType::Type(_, ty) => ty.span(),
                ReturnType::Default => func.sig.ident.span(),
            };
            cx.error_at(span, RETURNS);
            return Err(cx.check().err().unwrap_or_else(|| batch_error(batch)));
        }
    };
    let Some(key_lit) = &args.key else {
        cx.error_at(
            batch.span(),
            format!(
                "a batch needs a key template naming the item: add `key = \"..:{{{item_name}}}\"`"
            ),
        );
        return Err(cx.check().err().unwrap_or_else(|| batch_error(batch)));
    };
    cx.check()?;

    // The item is a name the templates may use; the collection is not keyed as a whole.
    let item = Ident::new(&item_name, batch.span());
    params.bindings.retain(|b| b.name != coll_name);
    params.bindings.push(Binding {
        ident: item.clone(),
        name: item_name.clone(),
        nested: false,
    });
    let cx = Ctxt::new();
    let key = cx.ok(Template::parse(key_lit, "key"));
    let tags = templates(&cx, &args.shared.tags, "tag");
    cx.check()?;
    let Some(key) = key else {
        return Err(batch_error(batch));
    };
    if !key.holes().any(|h| h.root == item_name) {
        return Err(syn::Error::new(
            key_lit.span(),
            format!(
                "the key of a batch must name the item, or every id would share one key: \
                 write `{{{item_name}}}` in it, as in `key = \"user:{{{item_name}}}\"`"
            ),
        ));
    }
    let cx = Ctxt::new();
    valid::cached(&cx, args, func, &params, Some(&key), &tags);
    cx.check()?;

    let common = Common::of(args.attr, &args.shared, func);
    let support = &common.support;
    let name = &common.name;
    let template_expr = quote!(#key_lit);
    let spec = super::cached::spec(args, support, name, template_expr, false);
    let key_stmts = super::render_with(&key, &params, quote!(__cachette_k), &common);
    let render_key = super::cached::render_key(support, &key_stmts);
    let tag_exprs = super::cached::tag_exprs(&tags, &params, &common);
    let condition = match &args.condition {
        Some(c) => quote!(#c),
        None => quote!(true),
    };

    let ret_ty = ret_ty(func);
    let block = &func.block;
    let missing = format_ident!("__cachette_missing");
    let bind_missing = match holds {
        Holds::Vec => quote!(let #coll: #support::Vec<#item_ty> = #missing;),
        Holds::Slice => quote!(let #coll: &[#item_ty] = &#missing[..];),
    };
    // The original body, given the ids it is to load, pinned to the declared return type.
    let body = quote! {
        move |#missing: #support::Vec<#item_ty>| async move {
            #bind_missing
            #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
            if false {
                let __cachette_fake_return: #ret_ty = loop {};
                return __cachette_fake_return;
            }
            #block
        }
    };
    let ok = if returns.result {
        quote!(__cachette_r)
    } else {
        quote!(#support::Ok::<_, #support::Infallible>(__cachette_r))
    };
    // The body's result as a map by id, for the runtime.
    let to_map = if returns.ordered {
        quote! {
            (#ok).map(|__cachette_v| #support::by_position(&__CACHETTE_SPEC, __cachette_asked, __cachette_v))
        }
    } else {
        quote! {
            (#ok).map(|__cachette_m| {
                #support::IntoIterator::into_iter(__cachette_m).collect::<#support::HashMap<_, _>>()
            })
        }
    };
    // The runtime's values (one per distinct id) as the declared return type.
    let from_values = if returns.ordered {
        quote! {
            __cachette_out.map(|__cachette_v| {
                let __cachette_by_id: #support::HashMap<_, _> = #support::IntoIterator::into_iter(__cachette_ids)
                    .zip(__cachette_v)
                    .collect();
                #coll.iter()
                    .map(|__cachette_i| __cachette_by_id.get(__cachette_i).cloned().flatten())
                    .collect()
            })
        }
    } else {
        quote! {
            __cachette_out.map(|__cachette_v| {
                #support::IntoIterator::into_iter(__cachette_ids)
                    .zip(__cachette_v)
                    .filter_map(|(__cachette_i, __cachette_v)| __cachette_v.map(|__cachette_v| (__cachette_i, __cachette_v)))
                    .collect()
            })
        }
    };
    let unwrap = if returns.result {
        quote!(__cachette_ret)
    } else {
        quote!(match __cachette_ret {
            #support::Ok(__cachette_v) => __cachette_v,
            #support::Err(__cachette_never) => match __cachette_never {},
        })
    };
    // The ordered form pairs the body's values with the ids it was given.
    let give = if returns.ordered {
        quote!(#support::Clone::clone(&__cachette_asked))
    } else {
        quote!(__cachette_asked)
    };
    let value_span = item_ty.span();
    let call = quote_spanned! {value_span=>
        #support::cached_batch(__cachette_cache, &__CACHETTE_SPEC, __cachette_items, __cachette_load).await
    };

    let ItemFn {
        attrs, vis, sig, ..
    } = func;
    let registered = super::cached::register(support, &spec);
    let common_cache = &common.cache_expr;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #registered

            let __cachette_enabled: bool = #condition;
            let __cachette_cache: &#support::Cache = #common_cache;
            let __cachette_body = #body;
            // Each distinct id with its key and tags; `None` runs the body uncached (disabled
            // by `condition`, or an id that could not be rendered).
            let __cachette_items = if __cachette_enabled {
                '__cachette_render: {
                    let mut __cachette_items = #support::Vec::new();
                    let mut __cachette_seen = #support::HashSet::new();
                    for #item in #coll.iter() {
                        if !__cachette_seen.insert(#item) {
                            continue;
                        }
                        #render_key
                        let __cachette_tags: #support::Vec<#support::String> = #support::Vec::from([#(#tag_exprs),*]);
                        __cachette_items.push((#support::Clone::clone(#item), __cachette_key, __cachette_tags));
                    }
                    #support::Some(__cachette_items)
                }
            } else {
                #support::None
            };
            match __cachette_items {
                #support::Some(__cachette_items) => {
                    let __cachette_ids: #support::Vec<#item_ty> =
                        __cachette_items.iter().map(|(__cachette_i, ..)| #support::Clone::clone(__cachette_i)).collect();
                    let __cachette_load = move |__cachette_asked: #support::Vec<#item_ty>| {
                        let __cachette_fut = __cachette_body(#give);
                        async move {
                            let __cachette_r = __cachette_fut.await;
                            #to_map
                        }
                    };
                    let __cachette_out = #call;
                    let __cachette_ret = #from_values;
                    #unwrap
                }
                #support::None => __cachette_body(#coll.iter().cloned().collect()).await,
            }
        }
    })
}

fn batch_error(batch: &LitStr) -> syn::Error {
    syn::Error::new(batch.span(), "this `batch` cannot be expanded")
}

/// `"id in ids"` as `("id", "ids")`.
fn parse_batch(batch: &LitStr) -> Option<(String, String)> {
    let value = batch.value();
    let words: Vec<&str> = value.split_whitespace().collect();
    let ident = |w: &str| {
        !w.is_empty()
            && w.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !w.starts_with(|c: char| c.is_ascii_digit())
    };
    match words[..] {
        [item, "in", coll] if ident(item) && ident(coll) => {
            Some((item.to_owned(), coll.to_owned()))
        }
        _ => None,
    }
}

/// Options that a batch cannot honour, each reported where it is written.
fn refuse_options(cx: &Ctxt, args: &CacheArgs, batch: &LitStr) {
    let why = |what: &str| {
        format!(
            "`{what}` cannot be combined with `batch`: {}",
            match what {
                "cache_none" =>
                    "an id the body leaves out is not cached; to cache absence, return \
                             `Option` values and put `None` in the map for that id",
                "timeout" | "fail_safe" =>
                    "a batch waits for its one load and serves no expired \
                                        value; use a single-id `#[cached]` function for these",
                "early" | "beta" => "a batch reloads stale ids with the missing ones; remove it",
                "refresh" => "a batch refreshes nothing in the background; remove it",
                _ => "a batch keeps no L1 copies; remove it",
            }
        )
    };
    if let Some(b) = args.cache_none.as_ref().filter(|b| b.value) {
        cx.error_at(b.span, why("cache_none"));
    }
    if let Some(t) = args.timeout {
        cx.error_at(t.span, why("timeout"));
    }
    if let Some(t) = args.fail_safe {
        cx.error_at(t.span, why("fail_safe"));
    }
    if let Some(b) = args.early.as_ref().filter(|b| b.value) {
        cx.error_at(b.span, why("early"));
    }
    if let Some(b) = &args.beta {
        cx.error_at(b.span(), why("beta"));
    }
    if let Some(r) = &args.refresh {
        cx.error_at(r.span(), why("refresh"));
    }
    match args.l1 {
        Some(crate::attr::L1Arg::For(d)) => cx.error_at(d.span, why("l1")),
        Some(crate::attr::L1Arg::Off) => cx.error_at(batch.span(), why("l1")),
        None => {}
    }
}

/// The type of one id of the parameter `name`, and how the parameter holds them.
fn collection(func: &ItemFn, name: &str) -> syn::Result<(Type, Holds)> {
    let ty = func
        .sig
        .inputs
        .iter()
        .find_map(|input| match input {
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.ident == name => Some(&*pt.ty),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .ok_or_else(|| {
            syn::Error::new(
                func.sig.ident.span(),
                format!("`{name}` must be a plain parameter (`{name}: Vec<u64>`)"),
            )
        })?;
    let not_a_collection = || {
        syn::Error::new(
            ty.span(),
            format!(
                "the batch parameter `{name}` must hold the ids: write `{name}: Vec<u64>` or \
                 `{name}: &[u64]` (with your id type)"
            ),
        )
    };
    match ty {
        Type::Reference(r) => match &*r.elem {
            Type::Slice(s) => Ok(((*s.elem).clone(), Holds::Slice)),
            elem => vec_item(elem)
                .map(|t| (t, Holds::Slice))
                .ok_or_else(not_a_collection),
        },
        ty => vec_item(ty)
            .map(|t| (t, Holds::Vec))
            .ok_or_else(not_a_collection),
    }
}

/// `T` of `Vec<T>`.
fn vec_item(ty: &Type) -> Option<Type> {
    let (name, args) = super::last_segment(ty)?;
    (name == "Vec" && args.len() == 1).then(|| args[0].clone())
}

/// The shape of the return type, `None` when a batch cannot return it.
fn returns(output: &ReturnType) -> Option<Returns> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let (inner, result) = match super::last_segment(ty) {
        Some((name, args)) if name == "Result" && !args.is_empty() => (args[0], true),
        _ => (&**ty, false),
    };
    match super::last_segment(inner)? {
        (name, args) if name == "Vec" && args.len() == 1 => {
            let (opt, inner_args) = super::last_segment(args[0])?;
            (opt == "Option" && inner_args.len() == 1).then_some(Returns {
                result,
                ordered: true,
            })
        }
        (_, args) if args.len() == 2 => Some(Returns {
            result,
            ordered: false,
        }),
        _ => None,
    }
}
