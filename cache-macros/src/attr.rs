//! The arguments of the attributes: `#[cached]`, `#[cache_put]`, `#[invalidate]`,
//! `#[patient_cache]` and `#[invalidate_patient_cache]`, each with its own set of names.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitStr, Path, Token, bracketed};

use crate::duration;

/// Which attribute is being parsed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Cached,
    PatientCache,
    CachePut,
    Invalidate,
    InvalidatePatientCache,
}

const CACHED: &[&str] = &[
    "key",
    "ttl",
    "stale",
    "tags",
    "compress",
    "version",
    "skip",
    "condition",
    "cache",
    "cache_none",
    "timeout",
    "fail_safe",
    "jitter",
    "early",
    "beta",
    "priority",
    "refresh",
    "crate",
];
const PATIENT_CACHE: &[&str] = &[
    "key",
    "ttl",
    "stale",
    "tags",
    "compress",
    "version",
    "skip",
    "condition",
    "cache",
    "cache_none",
    "timeout",
    "fail_safe",
    "jitter",
    "early",
    "beta",
    "priority",
    "refresh",
    "compliance",
    "emergency",
    "patient",
    "doctor",
    "clinic",
    "crate",
];
const CACHE_PUT: &[&str] = &[
    "key",
    "ttl",
    "stale",
    "tags",
    "compress",
    "version",
    "condition",
    "cache",
    "cache_none",
    "crate",
];
const INVALIDATE: &[&str] = &[
    "keys", "patterns", "tags", "version", "before", "cache", "crate",
];
const INVALIDATE_PATIENT: &[&str] = &[
    "keys", "patterns", "tags", "version", "before", "cache", "patient", "doctor", "clinic",
    "crate",
];

impl Kind {
    /// The argument names, in the order the error for an unknown one lists them.
    pub(crate) fn names(self) -> &'static [&'static str] {
        match self {
            Kind::Cached => CACHED,
            Kind::PatientCache => PATIENT_CACHE,
            Kind::CachePut => CACHE_PUT,
            Kind::Invalidate => INVALIDATE,
            Kind::InvalidatePatientCache => INVALIDATE_PATIENT,
        }
    }

    /// The attribute as written, for messages.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Cached => "#[cached]",
            Kind::PatientCache => "#[patient_cache]",
            Kind::CachePut => "#[cache_put]",
            Kind::Invalidate => "#[invalidate]",
            Kind::InvalidatePatientCache => "#[invalidate_patient_cache]",
        }
    }

    /// Whether values are protected health information.
    pub(crate) fn phi(self) -> bool {
        matches!(self, Kind::PatientCache | Kind::InvalidatePatientCache)
    }
}

/// A duration argument: milliseconds and where it was written.
#[derive(Clone, Copy)]
pub(crate) struct DurationArg {
    pub ms: u64,
    pub span: Span,
}

pub(crate) enum CompressArg {
    Default,
    Never,
    Above(u64),
}

pub(crate) struct Args {
    pub kind: Kind,
    pub key: Option<LitStr>,
    pub ttl: Option<DurationArg>,
    pub stale: Option<DurationArg>,
    /// `stale = "off"`.
    pub stale_off: Option<Span>,
    pub tags: Vec<LitStr>,
    pub compress: Option<CompressArg>,
    pub version: Option<(String, Span)>,
    pub skip: Vec<Ident>,
    pub condition: Option<Expr>,
    pub cache: Option<Expr>,
    pub cache_none: Option<syn::LitBool>,
    pub krate: Option<Path>,
    pub timeout: Option<DurationArg>,
    pub fail_safe: Option<DurationArg>,
    pub jitter: Option<syn::LitInt>,
    pub early: Option<syn::LitBool>,
    pub beta: Option<syn::LitFloat>,
    pub priority: Option<LitStr>,
    pub refresh: Option<LitStr>,
    pub keys: Vec<LitStr>,
    pub patterns: Vec<LitStr>,
    pub before: Option<syn::LitBool>,
    pub compliance: Option<LitStr>,
    pub emergency: Option<syn::LitBool>,
    /// `patient = "param"`, `doctor = ..`, `clinic = ..`: (role, parameter name literal).
    pub ids: Vec<(&'static str, LitStr)>,
}

impl Args {
    fn new(kind: Kind) -> Self {
        Args {
            kind,
            key: None,
            ttl: None,
            stale: None,
            stale_off: None,
            tags: Vec::new(),
            compress: None,
            version: None,
            skip: Vec::new(),
            condition: None,
            cache: None,
            cache_none: None,
            krate: None,
            timeout: None,
            fail_safe: None,
            jitter: None,
            early: None,
            beta: None,
            priority: None,
            refresh: None,
            keys: Vec::new(),
            patterns: Vec::new(),
            before: None,
            compliance: None,
            emergency: None,
            ids: Vec::new(),
        }
    }
}

/// How each argument is written, for the errors about a missing or malformed value.
fn example(name: &str) -> &'static str {
    match name {
        "key" => "key = \"user:{id}\"",
        "ttl" => "ttl = \"5m\"",
        "stale" => "stale = \"30s\"",
        "tags" => "tags = [\"users\", \"user:{id}\"]",
        "compress" => "compress = 4096",
        "version" => "version = 2",
        "skip" => "skip = [trace_id]",
        "condition" => "condition = id > 0",
        "cache" => "cache = MY_CACHE",
        "cache_none" => "cache_none = true",
        "crate" => "crate = \"::my_cachette\"",
        "timeout" => "timeout = \"2s\"",
        "fail_safe" => "fail_safe = \"1h\"",
        "jitter" => "jitter = 10",
        "early" => "early = true",
        "beta" => "beta = 1.0",
        "priority" => "priority = \"high\"",
        "refresh" => "refresh = \"inline\"",
        "keys" => "keys = [\"user:{id}\"]",
        "patterns" => "patterns = [\"user:{id}:*\"]",
        "before" => "before = true",
        "compliance" => "compliance = \"sensitive\"",
        "emergency" => "emergency = true",
        "patient" => "patient = \"patient_id\"",
        "doctor" => "doctor = \"doctor_id\"",
        "clinic" => "clinic = \"clinic_id\"",
        _ => "key = \"user:{id}\"",
    }
}

impl Args {
    /// Parses the arguments of a `kind` attribute.
    pub(crate) fn parse_for(kind: Kind, tokens: proc_macro2::TokenStream) -> syn::Result<Self> {
        syn::parse::Parser::parse2(
            |input: ParseStream<'_>| Self::parse_args(kind, input),
            tokens,
        )
    }

    fn parse_args(kind: Kind, input: ParseStream<'_>) -> syn::Result<Self> {
        let names = kind.names();
        let mut args = Args::new(kind);
        let mut seen: Vec<String> = Vec::new();
        let mut errors: Option<syn::Error> = None;
        let mut push_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        while !input.is_empty() {
            let Ok(name) = input.call(Ident::parse_any) else {
                return Err(also(
                    errors,
                    input.error(format!(
                        "expected a named argument, as in `{}`",
                        example_attr(kind)
                    )),
                ));
            };
            let text = name.to_string();
            if !names.contains(&text.as_str()) {
                let hint = crate::valid::closest(&text, names.iter().copied())
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                push_err(syn::Error::new(
                    name.span(),
                    format!(
                        "unknown argument `{text}` of {}; {hint}expected one of: {}",
                        kind.attr(),
                        names.join(", ")
                    ),
                ));
            } else if seen.contains(&text) {
                push_err(syn::Error::new(
                    name.span(),
                    format!("`{text}` is given twice; keep one"),
                ));
            }
            seen.push(text.clone());
            let known = names.contains(&text.as_str());
            if input.parse::<Token![=]>().is_err() {
                if known {
                    // `cache_none` alone, or `ttl 60`: say how the argument is written.
                    let msg = format!("`{text}` needs a value, as in `{}`", example(&text));
                    return Err(also(errors, syn::Error::new(name.span(), msg)));
                }
                skip_value(input)?;
            } else if known {
                if let Err(e) = args.parse_value(&text, input) {
                    push_err(e);
                    skip_value(input)?;
                }
            } else {
                skip_value(input)?;
            }
            if input.is_empty() {
                break;
            }
            if let Err(e) = input.parse::<Token![,]>() {
                let e = syn::Error::new(e.span(), "expected `,` between arguments");
                return Err(also(errors, e));
            }
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }
}

impl Args {
    /// Parses the value of argument `name` (one of [`NAMES`]), after its `=`.
    fn parse_value(&mut self, name: &str, input: ParseStream<'_>) -> syn::Result<()> {
        // The value is the wrong kind of token: keep the position, say what is expected.
        let expected = |e: syn::Error, what: &str| {
            syn::Error::new(
                e.span(),
                format!("`{name}` takes {what}, as in `{}`", example(name)),
            )
        };
        match name {
            "key" => {
                self.key = Some(
                    input
                        .parse()
                        .map_err(|e| expected(e, "a template in a string"))?,
                )
            }
            "ttl" => self.ttl = Some(parse_duration(input, "ttl")?),
            "stale" => {
                if input.peek(LitStr) && input.fork().parse::<LitStr>()?.value() == "off" {
                    self.stale_off = Some(input.parse::<LitStr>()?.span());
                } else {
                    self.stale = Some(parse_duration(input, "stale")?);
                }
            }
            "timeout" => self.timeout = Some(parse_duration(input, "timeout")?),
            "fail_safe" => self.fail_safe = Some(parse_duration(input, "fail_safe")?),
            "jitter" => {
                let lit: syn::LitInt = input
                    .parse()
                    .map_err(|e| expected(e, "a percentage from 0 to 100"))?;
                if !matches!(lit.base10_parse::<u8>(), Ok(0..=100)) {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`jitter` is a percentage from 0 to 100",
                    ));
                }
                self.jitter = Some(lit);
            }
            "early" => {
                self.early = Some(
                    input
                        .parse()
                        .map_err(|e| expected(e, "`true` or `false`"))?,
                )
            }
            "before" => {
                self.before = Some(
                    input
                        .parse()
                        .map_err(|e| expected(e, "`true` or `false`"))?,
                )
            }
            "emergency" => {
                self.emergency = Some(
                    input
                        .parse()
                        .map_err(|e| expected(e, "`true` or `false`"))?,
                )
            }
            "beta" => {
                let lit: syn::LitFloat = input
                    .parse()
                    .map_err(|e| expected(e, "a positive number such as 1.0"))?;
                if !lit
                    .base10_parse::<f64>()
                    .is_ok_and(|b| b > 0.0 && b.is_finite())
                {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`beta` must be a positive number, as in `beta = 1.0`",
                    ));
                }
                self.beta = Some(lit);
            }
            "priority" => {
                let lit: LitStr = input
                    .parse()
                    .map_err(|e| expected(e, "a priority in a string"))?;
                if !matches!(lit.value().as_str(), "critical" | "high" | "normal" | "low") {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`priority` is one of \"critical\", \"high\", \"normal\", \"low\"",
                    ));
                }
                self.priority = Some(lit);
            }
            "refresh" => {
                let lit: LitStr = input.parse().map_err(|e| expected(e, "a string"))?;
                if !matches!(lit.value().as_str(), "background" | "inline") {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`refresh` is \"background\" (stale values are refreshed in a background \
                         task; the default where the function owns its arguments) or \"inline\" \
                         (by one caller)",
                    ));
                }
                self.refresh = Some(lit);
            }
            "compliance" => {
                let lit: LitStr = input
                    .parse()
                    .map_err(|e| expected(e, "a level in a string"))?;
                if !matches!(
                    lit.value().as_str(),
                    "standard" | "sensitive" | "restricted"
                ) {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`compliance` is one of \"standard\" (24 h cap), \"sensitive\" (2 h cap), \
                         \"restricted\" (15 min cap)",
                    ));
                }
                self.compliance = Some(lit);
            }
            "patient" | "doctor" | "clinic" => {
                let lit: LitStr = input
                    .parse()
                    .map_err(|e| expected(e, "the name of a parameter in a string"))?;
                let role = match name {
                    "patient" => "patient",
                    "doctor" => "doctor",
                    _ => "clinic",
                };
                self.ids.push((role, lit));
            }
            "keys" => {
                self.keys = parse_list::<LitStr>(input)
                    .map_err(|e| expected(e, "a list of templates in strings"))?
            }
            "patterns" => {
                self.patterns = parse_list::<LitStr>(input)
                    .map_err(|e| expected(e, "a list of templates in strings"))?
            }
            "tags" => {
                self.tags = parse_list::<LitStr>(input)
                    .map_err(|e| expected(e, "a list of templates in strings"))?
            }
            "compress" => self.compress = Some(parse_compress(input)?),
            "version" => self.version = Some(parse_version(input)?),
            "skip" => {
                self.skip = parse_list::<Ident>(input)
                    .map_err(|e| expected(e, "a list of parameter names"))?
            }
            "condition" => self.condition = Some(input.parse()?),
            "cache" => self.cache = Some(input.parse()?),
            "cache_none" => {
                self.cache_none = Some(
                    input
                        .parse::<syn::LitBool>()
                        .map_err(|e| expected(e, "`true` or `false`"))?,
                )
            }
            "crate" => {
                let lit: LitStr = input
                    .parse()
                    .map_err(|e| expected(e, "a path in a string"))?;
                self.krate = Some(lit.parse().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        format!(
                            "`crate` takes a path in a string, as in `{}`",
                            example("crate")
                        ),
                    )
                })?);
            }
            other => {
                return Err(syn::Error::new(
                    input.span(),
                    format!("unexpected argument `{other}`"),
                ));
            }
        }
        Ok(())
    }
}

/// A whole attribute as written, for the error about a positional argument.
fn example_attr(kind: Kind) -> &'static str {
    match kind {
        Kind::Cached => "#[cached(key = \"user:{id}\", ttl = \"5m\")]",
        Kind::PatientCache => {
            "#[patient_cache(key = \"records:{patient_id}\", patient = \"patient_id\")]"
        }
        Kind::CachePut => "#[cache_put(key = \"user:{id}\", ttl = \"5m\")]",
        Kind::Invalidate => "#[invalidate(keys = [\"user:{id}\"], tags = [\"users\"])]",
        Kind::InvalidatePatientCache => {
            "#[invalidate_patient_cache(patterns = [\"records:{patient_id}:*\"], patient = \"patient_id\")]"
        }
    }
}

/// `e` after the errors found so far.
fn also(errors: Option<syn::Error>, e: syn::Error) -> syn::Error {
    match errors {
        Some(mut all) => {
            all.combine(e);
            all
        }
        None => e,
    }
}

/// Skips the rest of a value that could not be parsed, up to the next `,`, so that the
/// arguments after it are still checked.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

fn parse_list<T: Parse>(input: ParseStream<'_>) -> syn::Result<Vec<T>> {
    let content;
    bracketed!(content in input);
    Ok(Punctuated::<T, Token![,]>::parse_terminated(&content)?
        .into_iter()
        .collect())
}

fn parse_duration(input: ParseStream<'_>, what: &str) -> syn::Result<DurationArg> {
    let lit: Lit = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{what}` takes an integer of seconds or a string such as \"5m\", written in the \
                 attribute: the macro reads the value, so it cannot be a constant or an expression"
            ),
        )
    })?;
    let parsed = match &lit {
        Lit::Int(i) => i
            .base10_parse::<u64>()
            .map_err(|e| e.to_string())
            .and_then(|s| {
                s.checked_mul(1000)
                    .ok_or_else(|| "the duration is too long to count in milliseconds".into())
            }),
        Lit::Str(s) => duration::parse_ms(&s.value()),
        _ => Err(format!(
            "write an integer of seconds (`{what} = 300`) or a string such as \"5m\""
        )),
    };
    match parsed {
        Ok(ms) => Ok(DurationArg {
            ms,
            span: lit.span(),
        }),
        Err(reason) => Err(syn::Error::new(
            lit.span(),
            format!("invalid `{what}` duration: {reason}"),
        )),
    }
}

fn parse_compress(input: ParseStream<'_>) -> syn::Result<CompressArg> {
    const EXPECTED: &str =
        "`compress` takes `true`, `false`, or a threshold in bytes (`compress = 4096`)";
    let lit: Lit = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), EXPECTED))?;
    match lit {
        Lit::Bool(b) if b.value => Ok(CompressArg::Default),
        Lit::Bool(_) => Ok(CompressArg::Never),
        Lit::Int(i) => Ok(CompressArg::Above(i.base10_parse()?)),
        other => Err(syn::Error::new(other.span(), EXPECTED)),
    }
}

fn parse_version(input: ParseStream<'_>) -> syn::Result<(String, Span)> {
    const EXPECTED: &str = "`version` takes an integer or a string, as in `version = 2`";
    let lit: Lit = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), EXPECTED))?;
    let (text, span) = match &lit {
        Lit::Int(i) => (i.base10_digits().to_owned(), i.span()),
        Lit::Str(s) => (s.value(), s.span()),
        other => return Err(syn::Error::new(other.span(), EXPECTED)),
    };
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(syn::Error::new(
            span,
            format!(
                "`version = {text:?}` may only hold letters, digits, `_`, `.` and `-`, as in \
                 `version = 2` or `version = \"2024-06\"`"
            ),
        ));
    }
    Ok((text, span))
}
