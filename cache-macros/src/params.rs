//! The names a function's signature binds: what a template may refer to.

use syn::ext::IdentExt as _;
use syn::{FnArg, Ident, Pat, Signature};

/// One name bound by a parameter pattern.
pub(crate) struct Binding {
    pub ident: Ident,
    /// The name as templates write it: `type` for `r#type`.
    pub name: String,
    /// Bound inside a pattern such as `Path(id)` rather than as a whole parameter.
    #[allow(dead_code)]
    pub nested: bool,
}

pub(crate) struct Params {
    pub has_self: bool,
    pub bindings: Vec<Binding>,
    /// Parameters whose pattern cannot be keyed (`impl Trait` types are fine; these are
    /// patterns with nothing to name, reported when no key is given).
    pub unnamed: Vec<proc_macro2::Span>,
}

impl Params {
    pub(crate) fn of(sig: &Signature) -> Params {
        let mut params = Params {
            has_self: false,
            bindings: Vec::new(),
            unnamed: Vec::new(),
        };
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(_) => params.has_self = true,
                FnArg::Typed(pt) => {
                    let before = params.bindings.len();
                    collect(&pt.pat, false, &mut params.bindings);
                    if params.bindings.len() == before && !matches!(*pt.pat, Pat::Wild(_)) {
                        params.unnamed.push(syn::spanned::Spanned::span(&pt.pat));
                    }
                }
            }
        }
        params
    }

    /// The binding named `name` (with or without `r#`).
    pub(crate) fn find(&self, name: &str) -> Option<&Binding> {
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.bindings.iter().find(|b| b.name == name)
    }
}

fn collect(pat: &Pat, nested: bool, out: &mut Vec<Binding>) {
    match pat {
        Pat::Ident(p) => {
            out.push(Binding {
                ident: p.ident.clone(),
                name: p.ident.unraw().to_string(),
                nested,
            });
            if let Some((_, sub)) = &p.subpat {
                collect(sub, true, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| collect(p, true, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| collect(p, true, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| collect(&f.pat, true, out)),
        Pat::Reference(r) => collect(&r.pat, true, out),
        Pat::Slice(s) => s.elems.iter().for_each(|p| collect(p, true, out)),
        Pat::Paren(p) => collect(&p.pat, nested, out),
        Pat::Type(t) => collect(&t.pat, nested, out),
        Pat::Or(o) => {
            if let Some(first) = o.cases.first() {
                collect(first, true, out);
            }
        }
        _ => {}
    }
}
