//! Key and tag templates: `"user:{id}"`, `"{self.tenant}:{filter:hash}"`.
//!
//! Placeholders keep the position they were written at, so an error about one points into the
//! string (where the compiler offers sub-spans; elsewhere at the whole literal).

use proc_macro2::Span;
use syn::LitStr;

/// One piece of a template.
pub(crate) enum Segment {
    /// Text copied into the key as is.
    Lit(String),
    /// An argument rendered into the key.
    Hole(Hole),
}

/// `{root.field.field:hash}`.
pub(crate) struct Hole {
    /// A parameter name or `self`.
    pub root: String,
    pub fields: Vec<String>,
    pub hash: bool,
    /// Where the placeholder is written (inside the literal where possible).
    pub span: Span,
}

pub(crate) struct Template {
    pub lit: LitStr,
    pub segments: Vec<Segment>,
}

/// Characters a rendered part can contain: the escaped alphabet, `%XX` escapes and `~` (None).
/// Two placeholders must be separated by at least one character outside this set, or keys would
/// be ambiguous (`{a}{b}`: "1"+"23" and "12"+"3").
fn in_part_alphabet(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-' | '%' | '~')
}

/// Where `range` of the literal's value is in the source, when the compiler can say.
fn sub_span(lit: &LitStr, start: usize, end: usize) -> Span {
    let repr = lit.token().to_string();
    // Only a plain "..." literal without escapes maps value offsets to source offsets 1:1.
    let plain = repr.len() == lit.value().len() + 2 && repr.starts_with('"');
    if plain {
        if let Some(s) = lit.token().subspan(start + 1..end + 1) {
            return s;
        }
    }
    lit.span()
}

impl Template {
    pub(crate) fn parse(lit: &LitStr, what: &str) -> syn::Result<Template> {
        let value = lit.value();
        let mut segments = Vec::new();
        let mut errors: Option<syn::Error> = None;
        let mut push_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };

        if what != "pattern" && value.starts_with("__cachette") {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "a {what} template cannot start with `__cachette`: that namespace holds the \
                     cache's own bookkeeping (tag versions, leases, locks)"
                ),
            ));
        }
        if value.is_empty() {
            return Err(syn::Error::new(
                lit.span(),
                format!("the {what} template is empty"),
            ));
        }

        let mut text = String::new();
        let mut text_start = 0;
        let mut chars = value.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => {
                    let mut end = None;
                    let mut nested_brace = false;
                    for (j, d) in chars.by_ref() {
                        if d == '}' {
                            end = Some(j);
                            break;
                        }
                        if d == '{' {
                            nested_brace = true;
                            push_err(syn::Error::new(
                                sub_span(lit, i, j + 1),
                                format!(
                                    "unbalanced `{{` in {what} template: a placeholder cannot contain `{{`"
                                ),
                            ));
                            end = None;
                            break;
                        }
                    }
                    let Some(end) = end else {
                        if !nested_brace {
                            push_err(syn::Error::new(
                                sub_span(lit, i, value.len()),
                                format!(
                                    "unbalanced `{{` in {what} template: close the placeholder with `}}`"
                                ),
                            ));
                        }
                        break;
                    };
                    let span = sub_span(lit, i, end + 1);
                    if !text.is_empty() || segments.is_empty() {
                        check_text(lit, &text, text_start, what, &mut push_err);
                    }
                    if let Some(Segment::Hole(prev)) = segments.last() {
                        if !text.chars().any(|c| !in_part_alphabet(c)) {
                            push_err(syn::Error::new(
                                span,
                                format!(
                                    "placeholders `{{{}}}` and `{{{}}}` need a separator such as `:` between them; \
                                     without one, different arguments could render the same key",
                                    prev.root,
                                    &value[i + 1..end],
                                ),
                            ));
                        }
                    }
                    if !text.is_empty() {
                        segments.push(Segment::Lit(std::mem::take(&mut text)));
                    }
                    match parse_hole(&value[i + 1..end], span) {
                        Ok(h) => segments.push(Segment::Hole(h)),
                        Err(e) => push_err(e),
                    }
                    text_start = end + 1;
                }
                '}' => {
                    push_err(syn::Error::new(
                        sub_span(lit, i, i + 1),
                        format!("unbalanced `}}` in {what} template: there is no `{{` before it"),
                    ));
                }
                c => {
                    if text.is_empty() {
                        text_start = i;
                    }
                    text.push(c);
                }
            }
        }
        if !text.is_empty() {
            check_text(lit, &text, text_start, what, &mut push_err);
            segments.push(Segment::Lit(text));
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(Template {
                lit: lit.clone(),
                segments,
            }),
        }
    }

    pub(crate) fn holes(&self) -> impl Iterator<Item = &Hole> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Hole(h) => Some(h),
            Segment::Lit(_) => None,
        })
    }
}

/// Literal text may not hold glob characters: pattern invalidation would expand them.
fn check_text(
    lit: &LitStr,
    text: &str,
    start: usize,
    what: &str,
    push_err: &mut impl FnMut(syn::Error),
) {
    // A pattern is a glob on purpose; only its placeholders are escaped.
    let globs_allowed = what == "pattern";
    for (i, c) in text.char_indices() {
        let glob = matches!(c, '*' | '?' | '[' | ']' | '\\');
        if (glob && !globs_allowed) || c.is_control() {
            push_err(syn::Error::new(
                sub_span(lit, start + i, start + i + c.len_utf8()),
                format!(
                    "`{}` cannot appear in a {what} template: pattern invalidation would read it \
                     as a glob; use letters, digits and separators such as `:`",
                    c.escape_default()
                ),
            ));
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && s != "_"
}

fn parse_hole(inner: &str, span: Span) -> syn::Result<Hole> {
    let inner_trim = inner.trim();
    if inner_trim.is_empty() {
        return Err(syn::Error::new(
            span,
            "empty placeholder `{}`: name a parameter, as in `{id}`",
        ));
    }
    let (path, format) = match inner_trim.split_once(':') {
        Some((p, f)) => (p.trim(), Some(f.trim())),
        None => (inner_trim, None),
    };
    let hash = match format {
        None => false,
        Some("hash") => true,
        Some(other) => {
            return Err(syn::Error::new(
                span,
                format!("unknown format `:{other}` in `{{{inner}}}`; the only format is `:hash`"),
            ));
        }
    };
    let mut parts = path.split('.');
    let root = parts.next().unwrap_or_default().trim().to_owned();
    let fields: Vec<String> = parts.map(|f| f.trim().to_owned()).collect();
    let root_ok = root == "self" || is_ident(&root);
    // A tuple index as Rust writes it: `0`, `12`, not `01`.
    let is_index = |f: &str| {
        f.bytes().all(|b| b.is_ascii_digit())
            && (f == "0" || !f.starts_with('0'))
            && f.parse::<u32>().is_ok()
    };
    let fields_ok = fields.iter().all(|f| is_ident(f) || is_index(f));
    if !root_ok || !fields_ok {
        return Err(syn::Error::new(
            span,
            format!(
                "`{{{inner}}}` is not a placeholder: write a parameter name, a field path such as \
                 `{{user.id}}` or `{{self.tenant}}`, optionally followed by `:hash`"
            ),
        ));
    }
    if root == "self" && fields.is_empty() {
        return Err(syn::Error::new(
            span,
            "`{self}` would put the whole receiver in the key; name a field, as in `{self.tenant}`",
        ));
    }
    Ok(Hole {
        root,
        fields,
        hash,
        span,
    })
}
