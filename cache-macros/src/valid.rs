//! Checks of the arguments against the signature, each error at the token to fix.

use std::collections::HashSet;

use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{ItemFn, LitStr, ReturnType, Type};

use crate::attr::{Attr, CacheArgs, InvalidateArgs, Name, Shared, example};
use crate::ctxt::Ctxt;
use crate::params::Params;
use crate::suggest::closest;
use crate::template::Template;

/// What to add to "`name` is not a parameter": the closest parameter (also returned) or the
/// list of them.
fn unknown_name_hint(name: &str, params: &Params) -> (String, Option<String>) {
    let names = params
        .bindings
        .iter()
        .map(|b| b.name.as_str())
        .collect::<Vec<_>>();
    match closest(name, names.iter().copied()) {
        Some(c) => (format!("; did you mean `{c}`?"), Some(c.to_owned())),
        None if names.is_empty() => ("; the function has no parameters".to_owned(), None),
        None => (format!("; the parameters are: {}", names.join(", ")), None),
    }
}

/// Checks that every placeholder names a parameter (or `self.field` in a method). The parameters
/// suggested for misspelt placeholders go into `suggested`.
fn holes(cx: &Ctxt, t: &Template, params: &Params, suggested: &mut HashSet<String>) {
    for hole in t.holes() {
        if hole.root == "self" {
            if !params.has_self {
                cx.error_at(
                    hole.span,
                    format!(
                        "`{{self.{}}}` can only be used in a method that takes `self`; \
                         this function has no receiver, so key one of its parameters",
                        hole.fields.join(".")
                    ),
                );
            }
            continue;
        }
        if params.find(&hole.root).is_none() {
            let (hint, suggestion) = unknown_name_hint(&hole.root, params);
            suggested.extend(suggestion);
            cx.error_at(
                hole.span,
                format!(
                    "`{{{}}}` is not a parameter of this function{hint}",
                    hole.root
                ),
            );
        }
    }
}

/// The TTL cap of a compliance level, in ms.
pub(crate) fn compliance_cap_ms(level: &str) -> u64 {
    match level {
        "standard" => 24 * 3600 * 1000,
        "restricted" => 15 * 60 * 1000,
        _ => 2 * 3600 * 1000,
    }
}

/// The TTL cap of emergency data, in ms.
pub(crate) const EMERGENCY_CAP_MS: u64 = 5 * 60 * 1000;

/// The TTL cap of a `#[patient_cache]` function, in ms.
pub(crate) fn phi_cap_ms(args: &CacheArgs) -> u64 {
    let cap = compliance_cap_ms(&compliance(args));
    if args.emergency() {
        cap.min(EMERGENCY_CAP_MS)
    } else {
        cap
    }
}

fn compliance(args: &CacheArgs) -> String {
    args.compliance
        .as_ref()
        .map_or("sensitive".to_owned(), LitStr::value)
}

/// What every attribute checks: an `async fn`, the placeholders of `templates`, the
/// identifier parameters.
fn common(
    cx: &Ctxt,
    attr: Attr,
    shared: &Shared,
    func: &ItemFn,
    params: &Params,
    templates: &[&Template],
) {
    if func.sig.asyncness.is_none() {
        cx.error_at(
            func.sig.fn_token.span,
            format!(
                "{} works on `async fn`; make this function `async`, or put the attribute on \
                 an async function that it calls",
                attr.name()
            ),
        );
    }
    for t in templates {
        holes(cx, t, params, &mut HashSet::new());
    }
    for id in &shared.ids {
        let name = id.param.value();
        if params.find(&name).is_none() {
            let (hint, _) = unknown_name_hint(&name, params);
            cx.error_at(
                id.param.span(),
                format!(
                    "`{}` names `{name}`, which is not a parameter of this function{hint}",
                    id.role
                ),
            );
        }
    }
}

/// Checks that each `plain = [..]` name is rendered somewhere: a placeholder of `templates`,
/// or a parameter of `default_key`. A name that is not would be a `plain` that protects
/// nothing, most likely a misspelling that leaves the real placeholder hashed.
fn plain(cx: &Ctxt, shared: &Shared, templates: &[&Template], default_key: Option<&Params>) {
    for p in &shared.plain {
        let name = p.unraw().to_string();
        let in_template = templates.iter().any(|t| t.holes().any(|h| h.root == name));
        let in_default_key = default_key.is_some_and(|params| params.find(&name).is_some());
        if !in_template && !in_default_key {
            cx.error_spanned_by(
                p,
                format!(
                    "`plain` names `{name}`, which is not a placeholder of this function's key, \
                     tags or patterns; every placeholder of a protected function is hashed \
                     unless listed here, so remove `{name}` or add `{{{name}}}` to a template"
                ),
            );
        }
    }
}

/// Checks `#[invalidate]` and `#[invalidate_patient_cache]` against the function.
pub(crate) fn invalidate(
    cx: &Ctxt,
    args: &InvalidateArgs,
    func: &ItemFn,
    params: &Params,
    templates: &[&Template],
) {
    common(cx, args.attr, &args.shared, func, params, templates);
    plain(cx, &args.shared, templates, None);
    if templates.is_empty() {
        cx.error_at(
            proc_macro2::Span::call_site(),
            format!(
                "{} needs something to invalidate: `keys`, `patterns` or `tags`",
                args.attr.name()
            ),
        );
    }
}

/// Checks `#[cached]`, `#[patient_cache]` and `#[cache_put]` against the function.
pub(crate) fn cached(
    cx: &Ctxt,
    args: &CacheArgs,
    func: &ItemFn,
    params: &Params,
    key: Option<&Template>,
    tags: &[Template],
) {
    common(cx, args.attr, &args.shared, func, params, &[]);
    let rendered: Vec<&Template> = key.into_iter().chain(tags).collect();
    // Without a key template the default key renders every parameter.
    plain(cx, &args.shared, &rendered, key.is_none().then_some(params));
    let put = args.attr == Attr::CachePut;
    if put && key.is_none() {
        cx.error_at(
            proc_macro2::Span::call_site(),
            format!(
                "#[cache_put] needs a `key`: the key template of the #[cached] function whose \
                 value it replaces, as in `#[cache_put({})]`",
                example(Name::Key)
            ),
        );
    }
    if let (Some(beta), None | Some(syn::LitBool { value: false, .. })) = (&args.beta, &args.early)
    {
        cx.error_spanned_by(
            beta,
            "`beta` tunes early refresh; add `early = true`, or remove `beta`",
        );
    }
    if let Some(t) = args.timeout.filter(|t| t.ms == 0) {
        cx.error_at(
            t.span,
            "a `timeout` of zero would never wait for the loader; remove it, or give a duration",
        );
    }
    if args.attr == Attr::PatientCache {
        phi_caps(cx, args);
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if contains_impl_trait(ty) {
            cx.error_at(
                ty.span(),
                "a cached function must return a nameable type: an `impl Trait` value cannot \
                 be stored and rebuilt; return the concrete type",
            );
        }
    }
    if let Some(cache_none) = args.cache_none.as_ref().filter(|b| b.value) {
        if !returns_option(&func.sig.output) {
            cx.error_spanned_by(
                cache_none,
                "`cache_none` is about `None` results, but this function does not return \
                 `Option<T>` (as written in its signature); remove `cache_none`",
            );
        }
    }
    if let (Some(ttl), Some(stale)) = (&args.ttl, args.stale_after()) {
        if ttl.ms > 0 && stale.ms >= ttl.ms {
            cx.error_at(
                stale.span,
                "`stale` must be shorter than `ttl`: a value turns stale before it expires \
                 (for example `ttl = \"5m\", stale = \"1m\"`)",
            );
        }
    }

    // A parameter suggested for a misspelt placeholder in the key is not reported again as
    // missing from the key: fixing the spelling fixes both.
    let mut suggested = HashSet::new();
    if let Some(key) = key {
        holes(cx, key, params, &mut suggested);
    }
    for t in tags {
        holes(cx, t, params, &mut HashSet::new());
    }
    let in_key: HashSet<&str> = key
        .into_iter()
        .flat_map(|k| k.holes().map(|h| h.root.as_str()))
        .collect();
    let skipped = skipped(cx, args, params, &in_key);
    if put {
        return;
    }
    let Some(key) = key else {
        for span in &params.unnamed {
            cx.error_at(
                *span,
                "this parameter binds no name, so the default key cannot include it; give \
                 the function a `key = \"..\"` template",
            );
        }
        return;
    };
    for b in &params.bindings {
        let name = b.name.as_str();
        if !in_key.contains(name) && !skipped.contains(name) && !suggested.contains(name) {
            cx.error_at(
                b.ident.span(),
                format!(
                    "parameter `{name}` is not part of the cache key `{}`: two calls that \
                     differ only in `{name}` would share one cached value. Add it to the key \
                     (as `{{{name}}}`), or leave it out deliberately with `skip = [{name}]`",
                    key.lit.value()
                ),
            );
        }
    }
}

/// The names in `skip`, each checked: a parameter, and not in the key.
fn skipped(
    cx: &Ctxt,
    args: &CacheArgs,
    params: &Params,
    in_key: &HashSet<&str>,
) -> HashSet<String> {
    let mut skipped = HashSet::new();
    for s in &args.skip {
        let name = s.unraw().to_string();
        if params.find(&name).is_none() {
            let (hint, _) = unknown_name_hint(&name, params);
            cx.error_at(
                s.span(),
                format!("`skip` names `{name}`, which is not a parameter of this function{hint}"),
            );
        } else if in_key.contains(name.as_str()) {
            cx.error_at(
                s.span(),
                format!("`{name}` is used in the key and listed in `skip`; remove one of the two"),
            );
        }
        skipped.insert(name);
    }
    skipped
}

/// The retention caps of protected data, and the rules of emergency data. Every duration
/// that keeps a value in the store counts: `ttl`, and `stale` and `fail_safe`, since a stale
/// or fail-safe value is PHI still held.
fn phi_caps(cx: &Ctxt, args: &CacheArgs) {
    let emergency = args.emergency();
    let cap = phi_cap_ms(args);
    let why = if emergency {
        "emergency data".to_owned()
    } else {
        format!("`{}` data", compliance(args))
    };
    let mut retentions = vec![("ttl", args.ttl)];
    // Emergency data gets its own error for `stale` and `fail_safe` below.
    if !emergency {
        retentions.push(("stale", args.stale_after()));
        retentions.push(("fail_safe", args.fail_safe));
    }
    let mut over = false;
    for (name, d) in retentions {
        if let Some(d) = d.filter(|d| d.ms > cap) {
            over = true;
            cx.error_at(
                d.span,
                format!(
                    "the {name} is over the cap of {why} ({}); lower it, or choose another \
                     compliance level",
                    human_ms(cap)
                ),
            );
        }
    }
    // The store keeps an entry for its ttl plus the fail-safe grace: together they are held.
    if let (false, false, Some(ttl), Some(grace)) = (over, emergency, args.ttl, args.fail_safe) {
        if ttl.ms.saturating_add(grace.ms) > cap {
            cx.error_at(
                grace.span,
                format!(
                    "the ttl and the fail_safe together keep {why} for {}, over its cap of {}: \
                     a fail-safe value is held past its ttl; lower either",
                    human_ms(ttl.ms.saturating_add(grace.ms)),
                    human_ms(cap)
                ),
            );
        }
    }
    if !emergency {
        return;
    }
    if let Some(stale) = args.stale_after() {
        cx.error_at(
            stale.span,
            "emergency data is never served stale; remove `stale`",
        );
    }
    if let Some(fs) = &args.fail_safe {
        cx.error_at(
            fs.span,
            "emergency data is never served past its ttl; remove `fail_safe`",
        );
    }
}

/// `ms` as "2 h", "15 min" or "5 min".
fn human_ms(ms: u64) -> String {
    if ms % 3_600_000 == 0 {
        format!("{} h", ms / 3_600_000)
    } else {
        format!("{} min", ms / 60_000)
    }
}

/// Whether the return type is written `Option<..>` (the expansion reads it the same way).
fn returns_option(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Type::Path(tp) = &**ty else { return false };
    tp.qself.is_none()
        && tp.path.segments.last().is_some_and(|s| {
            s.ident == "Option" && matches!(s.arguments, syn::PathArguments::AngleBracketed(_))
        })
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Finder(false);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}
