//! `#[derive(KeyPart)]`: newtype ids render as their field; unit enums as the variant name.
//! `#[cachette(crate = "path")]` names the facade when the dependency is renamed.

use proc_macro2::TokenStream;
use quote::{ToTokens as _, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Data, DeriveInput, Fields, GenericParam, LitStr, Path, Type};

use crate::ctxt::Ctxt;
use crate::expand::respan;

pub(crate) fn key_part(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(t) => t,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let krate = krate(&input)?;
    let name = &input.ident;
    let mut generics = input.generics.clone();
    let body = match &input.data {
        Data::Struct(s) if s.fields.len() == 1 => {
            let field = s.fields.iter().next().expect("one field");
            let ty = &field.ty;
            // A missing `KeyPart` is reported at the field's type alone.
            let krate = respan(&krate, ty.span());
            let access = match &field.ident {
                Some(id) => quote_spanned!(ty.span()=> self.#id),
                None => quote_spanned!(ty.span()=> self.0),
            };
            // `struct Id<T>(T)` renders when `T` does: bound the impl by the field's type.
            if mentions_type_param(ty, &input.generics) {
                generics
                    .make_where_clause()
                    .predicates
                    .push(syn::parse_quote_spanned!(ty.span()=> #ty: #krate::KeyPart));
            }
            // A field type without `KeyPart` is reported at the field.
            quote_spanned!(ty.span()=> #krate::KeyPart::write_key_part(&#access, out))
        }
        Data::Enum(e) if e.variants.iter().all(|v| matches!(v.fields, Fields::Unit)) => {
            let arms = e.variants.iter().map(|v| {
                let id = &v.ident;
                let text = id.to_string();
                quote!(Self::#id => out.write_str(#text))
            });
            quote!(match self { #(#arms,)* })
        }
        Data::Struct(s) => {
            let what = match s.fields.len() {
                0 => "has no field".to_owned(),
                n => format!("has {n} fields"),
            };
            return Err(unsupported(name, &format!("`{name}` {what}")));
        }
        Data::Enum(e) => {
            let v = e
                .variants
                .iter()
                .find(|v| !matches!(v.fields, Fields::Unit))
                .expect("a variant with fields");
            return Err(unsupported(
                &v.ident,
                &format!("variant `{}` has fields", v.ident),
            ));
        }
        Data::Union(_) => return Err(unsupported(name, &format!("`{name}` is a union"))),
    };
    let (impl_g, ty_g, where_g) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_g #krate::KeyPart for #name #ty_g #where_g {
            fn write_key_part(&self, out: &mut #krate::KeyWriter<'_>) {
                #body
            }
        }
    })
}

/// The path of the facade: `::cachette`, or the one `#[cachette(crate = "..")]` gives.
fn krate(input: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let mut krate: Option<Path> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("cachette")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("crate") {
                return Err(meta.error(
                    "unknown argument of #[cachette(..)]; the only one is `crate`, as in \
                     `#[cachette(crate = \"my_cachette\")]`",
                ));
            }
            let lit: LitStr = meta.value()?.parse()?;
            let path = lit.parse::<Path>().map_err(|_| {
                syn::Error::new(
                    lit.span(),
                    "`crate` takes a path in a string, as in `#[cachette(crate = \"my_cachette\")]`",
                )
            })?;
            if krate.replace(path).is_some() {
                return Err(meta.error("`crate` is given twice; keep one"));
            }
            Ok(())
        });
        cx.ok(parsed);
    }
    cx.check()?;
    Ok(krate.map_or_else(|| quote!(::cachette), |p| p.to_token_stream()))
}

fn unsupported(at: &syn::Ident, what: &str) -> syn::Error {
    syn::Error::new(
        at.span(),
        format!(
            "#[derive(KeyPart)] supports structs with exactly one field and enums of unit \
             variants, and {what}; implement `cachette::KeyPart` by hand, or key its fields \
             with `{{arg.field}}` placeholders"
        ),
    )
}

/// Whether `ty` names one of the type parameters of `generics`.
fn mentions_type_param(ty: &Type, generics: &syn::Generics) -> bool {
    struct Finder<'a> {
        params: Vec<&'a syn::Ident>,
        found: bool,
    }
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if let Some(first) = path.segments.first() {
                if self.params.contains(&&first.ident) {
                    self.found = true;
                }
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut finder = Finder {
        params: generics
            .params
            .iter()
            .filter_map(|p| match p {
                GenericParam::Type(t) => Some(&t.ident),
                _ => None,
            })
            .collect(),
        found: false,
    };
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.found
}
