//! Writes the wrapped function: the signature token for token and a new body. `cached` writes
//! `#[cached]`, `#[patient_cache]` and `#[cache_put]` (look up or write through, then run the
//! original body on a miss); `invalidate` writes `#[invalidate]` and
//! `#[invalidate_patient_cache]` (run the body, then invalidate).

mod batch;
mod cached;
mod invalidate;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::{GenericArgument, ItemFn, Path, PathArguments, ReturnType, Type};

use crate::attr::{Attr, CacheArgs, Family as _, InvalidateArgs, Shared};
use crate::ctxt::Ctxt;
use crate::params::Params;
use crate::template::{Segment, Template};

/// Expands an `attr` attribute on `item`. On error, the function is emitted unchanged next to
/// the error, so that the rest of the crate still type-checks and IDEs keep working.
pub(crate) fn attribute(attr: Attr, args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let name = attr.name();
            // A method declared in a trait parses, but has no body to wrap.
            let msg = match syn::parse2::<syn::TraitItemFn>(item.clone()) {
                Ok(f) if f.default.is_none() => syn::Error::new_spanned(
                    &f.sig.ident,
                    format!(
                        "{name} needs a function body: put it on the method in each `impl` of \
                         the trait, not on the declaration"
                    ),
                ),
                _ => syn::Error::new(e.span(), format!("{name} goes on an `async fn`")),
            };
            let msg = msg.to_compile_error();
            return quote!(#msg #item);
        }
    };
    let expanded = match attr {
        Attr::Cached | Attr::PatientCache | Attr::CachePut => CacheArgs::parse(attr, args)
            .and_then(|mut args| {
                typed_ids(attr, &mut args.shared, &func);
                cached::expand(&args, &func)
            }),
        Attr::Invalidate | Attr::InvalidatePatientCache => InvalidateArgs::parse(attr, args)
            .and_then(|mut args| {
                typed_ids(attr, &mut args.shared, &func);
                invalidate::expand(&args, &func)
            }),
    };
    match expanded {
        Ok(tokens) => tokens,
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#err #func)
        }
    }
}

/// In a protected function, a parameter typed `PatientId`, `DoctorId` or `ClinicId` (the
/// newtypes of `cachette::healthcare`, by their name) is declared as `patient = ".."`,
/// `doctor = ".."` or `clinic = ".."` would declare it, unless it is declared already.
fn typed_ids(attr: Attr, shared: &mut Shared, func: &ItemFn) {
    if !attr.phi() {
        return;
    }
    for input in &func.sig.inputs {
        let syn::FnArg::Typed(pt) = input else {
            continue;
        };
        let syn::Pat::Ident(pi) = &*pt.pat else {
            continue;
        };
        let mut ty = &*pt.ty;
        while let Type::Reference(r) = ty {
            ty = &r.elem;
        }
        let role = match last_segment(ty) {
            Some((name, args)) if args.is_empty() => match name.as_str() {
                "PatientId" => "patient",
                "DoctorId" => "doctor",
                "ClinicId" => "clinic",
                _ => continue,
            },
            _ => continue,
        };
        let name = pi.ident.unraw().to_string();
        if shared.ids.iter().any(|id| id.param.value() == name) {
            continue;
        }
        shared.ids.push(crate::attr::Id {
            role,
            param: syn::LitStr::new(&name, pi.ident.span()),
        });
    }
}

/// What every expansion needs: paths, the cache, identifiers.
pub(crate) struct Common {
    /// `::cachette::__macro_support`, or under `crate = ".."`: the only path into the runtime.
    pub support: TokenStream,
    /// An expression of type `&Cache`.
    pub cache_expr: TokenStream,
    /// Names of identifier parameters (`patient = ".."`, …), rendered hashed.
    pub ids: Vec<String>,
    /// Whether values are protected: then every placeholder not in `plain` is hashed too.
    pub protected: bool,
    /// `plain = [..]`: placeholders of a protected function rendered as they are.
    pub plain: Vec<String>,
    /// The function's name.
    pub name: String,
}

impl Common {
    pub(crate) fn of(attr: Attr, shared: &Shared, func: &ItemFn) -> Common {
        let krate: TokenStream = match &shared.krate {
            Some(p) => p.to_token_stream(),
            None => quote!(::cachette),
        };
        let support = quote!(#krate::__macro_support);
        let cache_expr = match &shared.cache {
            Some(e) => quote_spanned!(syn::spanned::Spanned::span(e)=> &(#e)),
            None => quote!(#support::global()),
        };
        Common {
            support,
            cache_expr,
            ids: shared
                .ids
                .iter()
                .map(|id| id.param.value().trim_start_matches("r#").to_owned())
                .collect(),
            protected: attr.phi(),
            plain: shared.plain.iter().map(|p| p.unraw().to_string()).collect(),
            name: func.sig.ident.unraw().to_string(),
        }
    }

    /// Whether the placeholder or parameter `root` renders as its keyed hash: a declared
    /// identifier, or any name of a protected function that is not declared `plain`.
    pub(crate) fn hashed(&self, root: &str) -> bool {
        self.ids.iter().any(|id| id == root)
            || (self.protected && !self.plain.iter().any(|p| p == root))
    }
}

/// `tokens` with every token at `span`, so that an error about a call written with them (a
/// trait bound of a `__macro_support` function) lands on the user's token that `span` is, and
/// only there.
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(&g.stream(), span));
                group.set_span(span);
                tt = group.into();
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// Parses the templates `lits`, recording the errors of all of them in `cx`.
pub(crate) fn templates(cx: &Ctxt, lits: &[syn::LitStr], what: &str) -> Vec<Template> {
    lits.iter()
        .filter_map(|lit| cx.ok(Template::parse(lit, what)))
        .collect()
}

/// The original body as an `async move` block whose output is pinned to the declared return
/// type, so that `?` and `return` inside it resolve exactly as in the unwrapped function.
pub(crate) fn body(func: &ItemFn) -> TokenStream {
    let block = &func.block;
    let ret_ty = ret_ty(func);
    quote! {
        async move {
            #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
            if false {
                let __cachette_fake_return: #ret_ty = loop {};
                return __cachette_fake_return;
            }
            #block
        }
    }
}

/// The declared return type, `()` when none is written.
pub(crate) fn ret_ty(func: &ItemFn) -> TokenStream {
    match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    }
}

/// How the return type maps to what is cached.
pub(crate) enum Mode {
    Result,
    Option,
    Plain,
}

pub(crate) struct Shape {
    pub mode: Mode,
    /// The path of a `Json<T>`-like newtype wrapping the value, whose `.0` is cached.
    pub json: Option<Path>,
    /// Where the type of the cached value is written (`T` in `Result<T, E>`, `Json<T>`), so
    /// that a missing `Serialize` is reported there.
    pub value_span: Span,
    /// The type of what is stored (`T` of `Result<T, E>`, `Option<T>`, `T`; inside `Json`).
    pub value: TokenStream,
}

pub(crate) fn shape(output: &ReturnType) -> Shape {
    let ty = match output {
        ReturnType::Default => {
            return Shape {
                mode: Mode::Plain,
                json: None,
                value_span: Span::call_site(),
                value: quote!(()),
            };
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    let (mode, value) = match last_segment(ty) {
        Some((name, args)) if name == "Result" && !args.is_empty() => (Mode::Result, args[0]),
        Some((name, args)) if name == "Option" && args.len() == 1 => (Mode::Option, args[0]),
        _ => (Mode::Plain, ty),
    };
    let (json, value) = match (value, last_segment(value)) {
        (Type::Path(tp), Some((name, args))) if name == "Json" && args.len() == 1 => {
            let mut path = tp.path.clone();
            if let Some(last) = path.segments.last_mut() {
                last.arguments = PathArguments::None;
            }
            (Some(path), args[0])
        }
        _ => (None, value),
    };
    let stored = match mode {
        Mode::Option => quote!(::core::option::Option<#value>),
        Mode::Result | Mode::Plain => quote!(#value),
    };
    Shape {
        mode,
        json,
        value_span: syn::spanned::Spanned::span(value),
        value: stored,
    }
}

/// The last segment of a path type (no qualified self) and its type arguments.
fn last_segment(ty: &Type) -> Option<(String, Vec<&Type>)> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let last = tp.path.segments.last()?;
    let args = match &last.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((last.ident.to_string(), args))
}

/// The statements that render template `t` into `builder`. Placeholders naming an identifier
/// parameter (`patient = ".."`), and every placeholder of a protected function not declared
/// `plain`, render as their keyed hash.
pub(crate) fn render_with(
    t: &Template,
    params: &Params,
    builder: TokenStream,
    common: &Common,
) -> Vec<TokenStream> {
    t.segments
        .iter()
        .map(|seg| match seg {
            Segment::Lit(s) => quote!(#builder.lit(#s);),
            Segment::Hole(h) => {
                // `{param}`: a type that cannot render is reported at the parameter in the
                // signature, where the type is written. `{param.field}` and `{self.field}`: at
                // the placeholder, where the field is named.
                let span = if h.root == "self" || !h.fields.is_empty() {
                    h.span
                } else {
                    params.find(&h.root).map_or(h.span, |b| b.ident.span())
                };
                let root = if h.root == "self" {
                    quote_spanned!(span=> self)
                } else {
                    let mut ident = params
                        .find(&h.root)
                        .map_or_else(|| format_ident!("{}", h.root), |b| b.ident.clone());
                    ident.set_span(span);
                    quote!(#ident)
                };
                // Located at the placeholder but resolved as the macro's own tokens, so that
                // rustc does not offer to rewrite the string literal into a field name.
                let field_span = h.span.resolved_at(Span::mixed_site());
                let fields = h.fields.iter().map(|f| {
                    if f.bytes().all(|b| b.is_ascii_digit()) {
                        let idx = syn::Index {
                            index: f.parse().unwrap_or(0),
                            span: field_span,
                        };
                        quote!(.#idx)
                    } else {
                        let id = format_ident!("{}", f, span = field_span);
                        quote!(.#id)
                    }
                });
                // An identifier is always hashed with the cache's key: an unkeyed `:hash` of
                // an MRN could be reversed by hashing every plausible MRN.
                let (method, cache) = match (common.hashed(&h.root), h.hash) {
                    (true, false) => (quote_spanned!(span=> id), quote!(__cachette_cache,)),
                    // A declared identifier keeps its `KeyPart` rendering under `:hash`, so
                    // the helpers that hash a raw id find the same key.
                    (true, true) if common.ids.contains(&h.root) => {
                        (quote_spanned!(span=> id), quote!(__cachette_cache,))
                    }
                    (true, true) => (quote_spanned!(span=> id_hash), quote!(__cachette_cache,)),
                    (false, true) => (quote_spanned!(span=> hash), quote!()),
                    (false, false) => (quote_spanned!(span=> part), quote!()),
                };
                if h.fields.is_empty() {
                    quote_spanned!(span=> #builder.#method(#cache &#root);)
                } else {
                    // The field access first, so that the bound error below points at the
                    // placeholder alone.
                    quote_spanned! {span=> {
                        let __cachette_field = &#root #(#fields)*;
                        #builder.#method(#cache __cachette_field);
                    }}
                }
            }
        })
        .collect()
}
