//! Checks of the arguments against the signature, each error at the token to fix.

use std::collections::HashSet;

use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{ItemFn, ReturnType, Type};

use syn::LitStr;

use crate::attr::{Args, Kind};
use crate::params::Params;
use crate::template::Template;

/// The closest of `candidates` to `name`, if close enough to suggest.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn add(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// What to add to "`name` is not a parameter": the closest parameter (also returned) or the
/// list of them.
fn unknown_name_hint(name: &str, params: &Params) -> (String, Option<String>) {
    let names = params
        .bindings
        .iter()
        .map(|b| b.name.clone())
        .collect::<Vec<_>>();
    match closest(name, names.iter().map(String::as_str)) {
        Some(c) => (format!("; did you mean `{c}`?"), Some(c.to_owned())),
        None if names.is_empty() => ("; the function has no parameters".to_owned(), None),
        None => (format!("; the parameters are: {}", names.join(", ")), None),
    }
}

/// Checks that every placeholder names a parameter (or `self.field` in a method). The parameters
/// suggested for misspelt placeholders go into `suggested`.
pub(crate) fn holes(
    t: &Template,
    params: &Params,
    errors: &mut Option<syn::Error>,
    suggested: &mut HashSet<String>,
) {
    for hole in t.holes() {
        if hole.root == "self" {
            if !params.has_self {
                add(
                    errors,
                    syn::Error::new(
                        hole.span,
                        format!(
                            "`{{self.{}}}` can only be used in a method that takes `self`; \
                             this function has no receiver, so key one of its parameters",
                            hole.fields.join(".")
                        ),
                    ),
                );
            }
            continue;
        }
        if params.find(&hole.root).is_none() {
            let (hint, suggestion) = unknown_name_hint(&hole.root, params);
            suggested.extend(suggestion);
            add(
                errors,
                syn::Error::new(
                    hole.span,
                    format!(
                        "`{{{}}}` is not a parameter of this function{hint}",
                        hole.root
                    ),
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

/// Checks the whole attribute against the function.
pub(crate) fn check(
    args: &Args,
    func: &ItemFn,
    params: &Params,
    key: Option<&Template>,
    tags: &[Template],
    others: &[&Template],
) -> syn::Result<()> {
    let mut errors = None;
    let kind = args.kind;
    let attr = kind.attr();
    let caches = matches!(kind, Kind::Cached | Kind::PatientCache | Kind::CachePut);

    if func.sig.asyncness.is_none() {
        add(
            &mut errors,
            syn::Error::new(
                func.sig.fn_token.span,
                format!(
                    "{attr} works on `async fn`; make this function `async`, or put the \
                     attribute on an async function that it calls"
                ),
            ),
        );
    }
    for t in others {
        holes(t, params, &mut errors, &mut HashSet::new());
    }
    for (role, lit) in &args.ids {
        if params.find(&lit.value()).is_none() {
            let (hint, _) = unknown_name_hint(&lit.value(), params);
            add(
                &mut errors,
                syn::Error::new(
                    lit.span(),
                    format!(
                        "`{role}` names `{}`, which is not a parameter of this function{hint}",
                        lit.value()
                    ),
                ),
            );
        }
    }
    if matches!(kind, Kind::Invalidate | Kind::InvalidatePatientCache)
        && args.keys.is_empty()
        && args.patterns.is_empty()
        && args.tags.is_empty()
    {
        add(
            &mut errors,
            syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("{attr} needs something to invalidate: `keys`, `patterns` or `tags`"),
            ),
        );
    }
    if kind == Kind::CachePut && key.is_none() {
        add(
            &mut errors,
            syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[cache_put] needs a `key`: the key template of the #[cached] function whose \
                 value it replaces, as in `#[cache_put(key = \"user:{id}\")]`",
            ),
        );
    }
    if let (Some(beta), None | Some(syn::LitBool { value: false, .. })) = (&args.beta, &args.early)
    {
        add(
            &mut errors,
            syn::Error::new(
                beta.span(),
                "`beta` tunes early refresh; add `early = true`, or remove `beta`",
            ),
        );
    }
    if let Some(t) = args.timeout.filter(|t| t.ms == 0) {
        add(
            &mut errors,
            syn::Error::new(
                t.span,
                "a `timeout` of zero would never wait for the loader; remove it, or give a duration",
            ),
        );
    }
    if kind == Kind::PatientCache {
        let level = args
            .compliance
            .as_ref()
            .map_or("sensitive".to_owned(), LitStr::value);
        let emergency = args.emergency.as_ref().is_some_and(|e| e.value);
        let cap = if emergency {
            EMERGENCY_CAP_MS.min(compliance_cap_ms(&level))
        } else {
            compliance_cap_ms(&level)
        };
        if let Some(ttl) = args.ttl.filter(|t| t.ms > cap) {
            let why = if emergency {
                "emergency data".to_owned()
            } else {
                format!("`{level}` data")
            };
            add(
                &mut errors,
                syn::Error::new(
                    ttl.span,
                    format!(
                        "the ttl is over the cap of {why} ({}); lower it, or choose another \
                         compliance level",
                        human_ms(cap)
                    ),
                ),
            );
        }
        if emergency {
            if let Some(stale) = &args.stale {
                add(
                    &mut errors,
                    syn::Error::new(
                        stale.span,
                        "emergency data is never served stale; remove `stale`",
                    ),
                );
            }
            if let Some(fs) = &args.fail_safe {
                add(
                    &mut errors,
                    syn::Error::new(
                        fs.span,
                        "emergency data is never served past its ttl; remove `fail_safe`",
                    ),
                );
            }
        }
    }
    if !caches {
        return match errors {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if contains_impl_trait(ty) {
            add(
                &mut errors,
                syn::Error::new(
                    ty.span(),
                    "a cached function must return a nameable type: an `impl Trait` value cannot \
                     be stored and rebuilt; return the concrete type",
                ),
            );
        }
    }

    if let Some(cache_none) = args.cache_none.as_ref().filter(|b| b.value) {
        if !returns_option(&func.sig.output) {
            add(
                &mut errors,
                syn::Error::new(
                    cache_none.span(),
                    "`cache_none` is about `None` results, but this function does not return \
                     `Option<T>` (as written in its signature); remove `cache_none`",
                ),
            );
        }
    }

    if let (Some(ttl), Some(stale)) = (&args.ttl, &args.stale) {
        if ttl.ms > 0 && stale.ms >= ttl.ms {
            add(
                &mut errors,
                syn::Error::new(
                    stale.span,
                    "`stale` must be shorter than `ttl`: a value turns stale before it expires \
                     (for example `ttl = \"5m\", stale = \"1m\"`)",
                ),
            );
        }
    }

    // A parameter suggested for a misspelt placeholder in the key is not reported again as
    // missing from the key: fixing the spelling fixes both.
    let mut suggested = HashSet::new();
    if let Some(key) = key {
        holes(key, params, &mut errors, &mut suggested);
    }
    for t in tags {
        holes(t, params, &mut errors, &mut HashSet::new());
    }

    let in_key: HashSet<String> = match key {
        Some(k) => k.holes().map(|h| h.root.clone()).collect(),
        None => HashSet::new(),
    };
    let mut skipped = HashSet::new();
    for s in &args.skip {
        let name = s.unraw().to_string();
        if params.find(&name).is_none() {
            let (hint, _) = unknown_name_hint(&name, params);
            add(
                &mut errors,
                syn::Error::new(
                    s.span(),
                    format!(
                        "`skip` names `{name}`, which is not a parameter of this function{hint}"
                    ),
                ),
            );
        } else if in_key.contains(&name) {
            add(
                &mut errors,
                syn::Error::new(
                    s.span(),
                    format!(
                        "`{name}` is used in the key and listed in `skip`; remove one of the two"
                    ),
                ),
            );
        }
        skipped.insert(name);
    }

    if let (Some(key), true) = (key, kind != Kind::CachePut) {
        for b in &params.bindings {
            let name = b.name.clone();
            if !in_key.contains(&name) && !skipped.contains(&name) && !suggested.contains(&name) {
                add(
                    &mut errors,
                    syn::Error::new(
                        b.ident.span(),
                        format!(
                            "parameter `{name}` is not part of the cache key `{}`: two calls that \
                             differ only in `{name}` would share one cached value. Add it to the \
                             key (as `{{{name}}}`), or leave it out deliberately with \
                             `skip = [{name}]`",
                            key.lit.value()
                        ),
                    ),
                );
            }
        }
    } else if kind != Kind::CachePut {
        for span in &params.unnamed {
            add(
                &mut errors,
                syn::Error::new(
                    *span,
                    "this parameter binds no name, so the default key cannot include it; give \
                     the function a `key = \"..\"` template",
                ),
            );
        }
    }

    match errors {
        Some(e) => Err(e),
        None => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_close_names() {
        assert_eq!(
            closest("usr_id", ["user_id", "page"].into_iter()),
            Some("user_id")
        );
        assert_eq!(closest("idd", ["id"].into_iter()), Some("id"));
        assert_eq!(closest("zzz", ["user_id"].into_iter()), None);
    }
}
