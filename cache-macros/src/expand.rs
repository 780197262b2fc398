//! Writes the wrapped function: the signature token for token and a new body. `cached` writes
//! `#[cached]`, `#[patient_cache]` and `#[cache_put]` (look up or write through, then run the
//! original body on a miss); `invalidate` writes `#[invalidate]` and
//! `#[invalidate_patient_cache]` (run the body, then invalidate).

mod cached;
mod invalidate;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::{GenericArgument, ItemFn, Path, PathArguments, ReturnType, Type};

use crate::attr::{Args, Kind};
use crate::params::Params;
use crate::template::{Segment, Template};

/// Expands a `kind` attribute on `item`. On error, the function is emitted unchanged next to
/// the error, so that the rest of the crate still type-checks and IDEs keep working.
pub(crate) fn attribute(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let attr = kind.attr();
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            // A method declared in a trait parses, but has no body to wrap.
            let msg = match syn::parse2::<syn::TraitItemFn>(item.clone()) {
                Ok(f) if f.default.is_none() => syn::Error::new_spanned(
                    &f.sig.ident,
                    format!(
                        "{attr} needs a function body: put it on the method in each `impl` of \
                         the trait, not on the declaration"
                    ),
                ),
                _ => syn::Error::new(e.span(), format!("{attr} goes on an `async fn`")),
            };
            let msg = msg.to_compile_error();
            return quote!(#msg #item);
        }
    };
    let expanded = Args::parse_for(kind, args).and_then(|args| match kind {
        Kind::Cached | Kind::PatientCache | Kind::CachePut => cached::expand(&args, &func),
        Kind::Invalidate | Kind::InvalidatePatientCache => invalidate::expand(&args, &func),
    });
    match expanded {
        Ok(tokens) => tokens,
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#err #func)
        }
    }
}

/// What every expansion needs: paths, the cache, identifiers.
pub(crate) struct Common {
    /// `::cachette::__private`, or under `crate = ".."`.
    pub private: TokenStream,
    /// `::cachette::__macro_support`, or under `crate = ".."`.
    pub support: TokenStream,
    /// An expression of type `&Cache`.
    pub cache_expr: TokenStream,
    /// Names of identifier parameters (`patient = ".."`, …), rendered hashed.
    pub ids: Vec<String>,
    /// The function's name.
    pub name: String,
}

impl Common {
    pub(crate) fn of(args: &Args, func: &ItemFn) -> Common {
        let krate: TokenStream = match &args.krate {
            Some(p) => p.to_token_stream(),
            None => quote!(::cachette),
        };
        let private = quote!(#krate::__private);
        let support = quote!(#krate::__macro_support);
        let cache_expr = match &args.cache {
            Some(e) => quote_spanned!(syn::spanned::Spanned::span(e)=> &(#e)),
            None => quote!(#private::global()),
        };
        Common {
            private,
            support,
            cache_expr,
            ids: args
                .ids
                .iter()
                .map(|(_, lit)| lit.value().trim_start_matches("r#").to_owned())
                .collect(),
            name: func.sig.ident.unraw().to_string(),
        }
    }
}

/// Parses templates, combining the errors of all of them.
pub(crate) fn templates(lits: &[syn::LitStr], what: &str) -> syn::Result<Vec<Template>> {
    let mut out = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for lit in lits {
        match Template::parse(lit, what) {
            Ok(t) => out.push(t),
            Err(e) => match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            },
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(out),
    }
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
}

pub(crate) fn shape(output: &ReturnType) -> Shape {
    let ty = match output {
        ReturnType::Default => {
            return Shape {
                mode: Mode::Plain,
                json: None,
                value_span: Span::call_site(),
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
    Shape {
        mode,
        json,
        value_span: syn::spanned::Spanned::span(value),
    }
}

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

/// Parameter names in the default key: all but skipped ones.
pub(crate) fn unskipped(params: &Params, args: &Args) -> Vec<String> {
    params
        .bindings
        .iter()
        .map(|b| b.name.clone())
        .filter(|n| !args.skip.iter().any(|s| s.unraw() == n))
        .collect()
}

/// The statements that render template `t` into `builder`. Placeholders naming an identifier
/// parameter (`patient = ".."`) render as its keyed hash.
pub(crate) fn render_with(
    t: &Template,
    params: &Params,
    builder: TokenStream,
    ids: &[String],
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
                let identifier = ids.contains(&h.root);
                let (method, cache) = if identifier {
                    (quote_spanned!(span=> id), quote!(__cachette_cache,))
                } else if h.hash {
                    (quote_spanned!(span=> hash), quote!())
                } else {
                    (quote_spanned!(span=> part), quote!())
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
