//! The arguments of the attributes. [`ARGS`] is the one list of them: which attributes take
//! each, what its value is, and how it is written. Parsing, the error for an unknown or
//! malformed argument and the examples in messages all read it; each attribute family then
//! gets its own typed arguments ([`CacheArgs`], [`InvalidateArgs`]).
//!
//! Argument names are looked up in the table rather than declared with `custom_keyword!`, as
//! tracing-attributes does: a second list of keywords would be one more place to keep in step,
//! and the table already gives the did-you-mean and the list of valid names.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitBool, LitFloat, LitInt, LitStr, Path, Token, bracketed};

use crate::ctxt::Ctxt;
use crate::duration;
use crate::suggest::closest;

/// Which attribute is being read.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) enum Attr {
    /// The default only so that the typed arguments can derive `Default`.
    #[default]
    Cached,
    PatientCache,
    CachePut,
    Invalidate,
    InvalidatePatientCache,
}

impl Attr {
    /// The attribute as written, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Attr::Cached => "#[cached]",
            Attr::PatientCache => "#[patient_cache]",
            Attr::CachePut => "#[cache_put]",
            Attr::Invalidate => "#[invalidate]",
            Attr::InvalidatePatientCache => "#[invalidate_patient_cache]",
        }
    }

    /// A whole attribute as written, for the error about a positional argument.
    fn example(self) -> &'static str {
        match self {
            Attr::Cached => "#[cached(key = \"user:{id}\", ttl = \"5m\")]",
            Attr::PatientCache => {
                "#[patient_cache(key = \"records:{patient_id}\", patient = \"patient_id\")]"
            }
            Attr::CachePut => "#[cache_put(key = \"user:{id}\", ttl = \"5m\")]",
            Attr::Invalidate => "#[invalidate(keys = [\"user:{id}\"], tags = [\"users\"])]",
            Attr::InvalidatePatientCache => {
                "#[invalidate_patient_cache(patterns = [\"records:{patient_id}:*\"], patient = \"patient_id\")]"
            }
        }
    }

    /// Whether values are protected health information.
    pub(crate) fn phi(self) -> bool {
        matches!(self, Attr::PatientCache | Attr::InvalidatePatientCache)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The arguments this attribute takes, in the table's order.
    fn args(self) -> impl Iterator<Item = &'static Arg> {
        ARGS.iter().filter(move |a| a.takes & self.bit() != 0)
    }
}

/// The attributes an argument belongs to, as a set of [`Attr::bit`]s.
type Takes = u8;
const CACHED: Takes = 1 << Attr::Cached as u8;
const PATIENT: Takes = 1 << Attr::PatientCache as u8;
const PUT: Takes = 1 << Attr::CachePut as u8;
const INVALIDATE: Takes = 1 << Attr::Invalidate as u8;
const INVALIDATE_PATIENT: Takes = 1 << Attr::InvalidatePatientCache as u8;
/// `#[cached]` and `#[patient_cache]`: the attributes that look up.
const LOOKUP: Takes = CACHED | PATIENT;
/// The attributes that write values.
const WRITE: Takes = LOOKUP | PUT;
/// The attributes that invalidate.
const INVALIDATION: Takes = INVALIDATE | INVALIDATE_PATIENT;
const PROTECTED: Takes = PATIENT | INVALIDATE_PATIENT;
const ALL: Takes = WRITE | INVALIDATION;

/// Each argument, for the code that reads its value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Name {
    Key,
    Keys,
    Patterns,
    Ttl,
    Stale,
    Tags,
    Compress,
    Version,
    ValueShape,
    Before,
    Skip,
    Condition,
    Cache,
    CacheNone,
    Timeout,
    FailSafe,
    Jitter,
    Early,
    Beta,
    Priority,
    Refresh,
    L1,
    Compliance,
    Emergency,
    Patient,
    Doctor,
    Clinic,
    Plain,
    Crate,
    Batch,
}

/// What an argument's value is.
#[derive(Clone, Copy)]
enum Kind {
    /// A template in a string.
    Template,
    /// A list of templates in strings.
    Templates,
    /// An integer of seconds or a duration in a string.
    Duration,
    /// A duration, or `"off"`.
    DurationOrOff,
    /// A duration, or `false`.
    DurationOrFalse,
    Bool,
    /// An integer from 0 to 100.
    Percent,
    /// A positive float.
    Positive,
    /// One of a few strings, each with what it means.
    OneOf(&'static [(&'static str, &'static str)]),
    /// The name of a parameter in a string.
    Param,
    /// A list of parameter names.
    Params,
    Expr,
    /// A path in a string.
    Path,
    /// `true`, `false` or a threshold in bytes.
    Compress,
    /// An integer or a string of `[A-Za-z0-9_.-]`.
    Version,
    /// `"<item> in <parameter>"`.
    Batch,
}

/// One row of [`ARGS`].
pub(crate) struct Arg {
    pub name: &'static str,
    id: Name,
    takes: Takes,
    kind: Kind,
    /// How it is written.
    pub example: &'static str,
}

const fn arg(name: &'static str, id: Name, takes: Takes, kind: Kind, example: &'static str) -> Arg {
    Arg {
        name,
        id,
        takes,
        kind,
        example,
    }
}

/// Every argument of every attribute, in the order the error for an unknown one lists them.
pub(crate) const ARGS: &[Arg] = &[
    arg(
        "key",
        Name::Key,
        WRITE,
        Kind::Template,
        "key = \"user:{id}\"",
    ),
    arg(
        "keys",
        Name::Keys,
        INVALIDATION,
        Kind::Templates,
        "keys = [\"user:{id}\"]",
    ),
    arg(
        "patterns",
        Name::Patterns,
        INVALIDATION,
        Kind::Templates,
        "patterns = [\"user:{id}:*\"]",
    ),
    arg("ttl", Name::Ttl, WRITE, Kind::Duration, "ttl = \"5m\""),
    arg(
        "stale",
        Name::Stale,
        WRITE,
        Kind::DurationOrOff,
        "stale = \"30s\"",
    ),
    arg(
        "tags",
        Name::Tags,
        ALL,
        Kind::Templates,
        "tags = [\"users\", \"user:{id}\"]",
    ),
    arg(
        "compress",
        Name::Compress,
        WRITE,
        Kind::Compress,
        "compress = 4096",
    ),
    arg("version", Name::Version, ALL, Kind::Version, "version = 2"),
    arg(
        "value_shape",
        Name::ValueShape,
        WRITE,
        Kind::Bool,
        "value_shape = false",
    ),
    arg(
        "before",
        Name::Before,
        INVALIDATION,
        Kind::Bool,
        "before = true",
    ),
    arg(
        "skip",
        Name::Skip,
        LOOKUP,
        Kind::Params,
        "skip = [trace_id]",
    ),
    arg(
        "condition",
        Name::Condition,
        WRITE,
        Kind::Expr,
        "condition = id > 0",
    ),
    arg("cache", Name::Cache, ALL, Kind::Expr, "cache = MY_CACHE"),
    arg(
        "cache_none",
        Name::CacheNone,
        WRITE,
        Kind::Bool,
        "cache_none = true",
    ),
    arg(
        "timeout",
        Name::Timeout,
        LOOKUP,
        Kind::Duration,
        "timeout = \"2s\"",
    ),
    arg(
        "fail_safe",
        Name::FailSafe,
        LOOKUP,
        Kind::Duration,
        "fail_safe = \"1h\"",
    ),
    arg("jitter", Name::Jitter, LOOKUP, Kind::Percent, "jitter = 10"),
    arg("early", Name::Early, LOOKUP, Kind::Bool, "early = true"),
    arg("beta", Name::Beta, LOOKUP, Kind::Positive, "beta = 1.0"),
    arg(
        "priority",
        Name::Priority,
        LOOKUP,
        Kind::OneOf(PRIORITIES),
        "priority = \"high\"",
    ),
    arg(
        "refresh",
        Name::Refresh,
        LOOKUP,
        Kind::OneOf(REFRESH),
        "refresh = \"inline\"",
    ),
    arg(
        "l1",
        Name::L1,
        LOOKUP,
        Kind::DurationOrFalse,
        "l1 = \"30s\"",
    ),
    arg(
        "compliance",
        Name::Compliance,
        PATIENT,
        Kind::OneOf(COMPLIANCE),
        "compliance = \"sensitive\"",
    ),
    arg(
        "emergency",
        Name::Emergency,
        PATIENT,
        Kind::Bool,
        "emergency = true",
    ),
    arg(
        "patient",
        Name::Patient,
        PROTECTED,
        Kind::Param,
        "patient = \"patient_id\"",
    ),
    arg(
        "doctor",
        Name::Doctor,
        PROTECTED,
        Kind::Param,
        "doctor = \"doctor_id\"",
    ),
    arg(
        "clinic",
        Name::Clinic,
        PROTECTED,
        Kind::Param,
        "clinic = \"clinic_id\"",
    ),
    arg(
        "plain",
        Name::Plain,
        PROTECTED,
        Kind::Params,
        "plain = [page]",
    ),
    arg(
        "batch",
        Name::Batch,
        CACHED,
        Kind::Batch,
        "batch = \"id in ids\"",
    ),
    arg(
        "crate",
        Name::Crate,
        ALL,
        Kind::Path,
        "crate = \"::my_cachette\"",
    ),
];

const PRIORITIES: &[(&str, &str)] = &[("critical", ""), ("high", ""), ("normal", ""), ("low", "")];
const REFRESH: &[(&str, &str)] = &[
    (
        "background",
        "stale values are refreshed in a background task; the default where the function owns \
         its arguments",
    ),
    ("inline", "by one caller"),
];
const COMPLIANCE: &[(&str, &str)] = &[
    ("standard", "24 h cap"),
    ("sensitive", "2 h cap"),
    ("restricted", "15 min cap"),
];

/// How argument `name` is written, for messages.
pub(crate) fn example(name: Name) -> &'static str {
    ARGS.iter().find(|a| a.id == name).map_or("", |a| a.example)
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

/// `l1 = ".."` or `l1 = false`.
#[derive(Clone, Copy)]
pub(crate) enum L1Arg {
    For(DurationArg),
    Off,
}

/// `stale = ..`.
#[derive(Clone, Copy)]
pub(crate) enum Stale {
    After(DurationArg),
    /// `stale = "off"`.
    Off,
}

/// `patient = "param"`, `doctor = ..`, `clinic = ..`: an identifier parameter, rendered as its
/// keyed hash.
pub(crate) struct Id {
    pub role: &'static str,
    pub param: LitStr,
}

/// A parsed value, as its [`Kind`] gives it.
pub(crate) enum Value {
    Str(LitStr),
    Strs(Vec<LitStr>),
    Duration(DurationArg),
    Stale(Stale),
    L1(L1Arg),
    Bool(LitBool),
    Percent(u8),
    Float(LitFloat),
    Idents(Vec<Ident>),
    Expr(Expr),
    Path(Path),
    Compress(CompressArg),
    Version(String),
}

/// What every attribute takes: where the runtime is, which cache, tags, version, identifiers.
#[derive(Default)]
pub(crate) struct Shared {
    pub krate: Option<Path>,
    pub cache: Option<Expr>,
    pub tags: Vec<LitStr>,
    pub version: Option<String>,
    pub ids: Vec<Id>,
    /// `plain = [..]`: placeholders of a protected function written as they are; every other
    /// one is keyed-hashed, so an identifier forgotten in `patient = ..` still stays out of
    /// key names.
    pub plain: Vec<Ident>,
}

impl Shared {
    /// Takes `value` if `name` is shared by every attribute; gives it back otherwise.
    fn set(&mut self, name: Name, value: Value) -> Option<Value> {
        match (name, value) {
            (Name::Crate, Value::Path(p)) => self.krate = Some(p),
            (Name::Cache, Value::Expr(e)) => self.cache = Some(e),
            (Name::Tags, Value::Strs(t)) => self.tags = t,
            (Name::Version, Value::Version(v)) => self.version = Some(v),
            (Name::Plain, Value::Idents(p)) => self.plain = p,
            (Name::Patient | Name::Doctor | Name::Clinic, Value::Str(param)) => {
                let role = match name {
                    Name::Patient => "patient",
                    Name::Doctor => "doctor",
                    _ => "clinic",
                };
                self.ids.push(Id { role, param });
            }
            (_, value) => return Some(value),
        }
        None
    }
}

/// The arguments of `#[cached]`, `#[patient_cache]` and `#[cache_put]`.
#[derive(Default)]
pub(crate) struct CacheArgs {
    pub attr: Attr,
    pub shared: Shared,
    pub key: Option<LitStr>,
    pub ttl: Option<DurationArg>,
    pub stale: Option<Stale>,
    pub compress: Option<CompressArg>,
    pub skip: Vec<Ident>,
    pub condition: Option<Expr>,
    pub cache_none: Option<LitBool>,
    pub timeout: Option<DurationArg>,
    pub fail_safe: Option<DurationArg>,
    pub jitter: Option<u8>,
    pub early: Option<LitBool>,
    pub beta: Option<LitFloat>,
    pub priority: Option<LitStr>,
    pub refresh: Option<LitStr>,
    pub l1: Option<L1Arg>,
    pub compliance: Option<LitStr>,
    pub emergency: Option<LitBool>,
    /// `value_shape = false`: entries record no shape of the value type, and none is checked.
    pub value_shape: Option<LitBool>,
    /// `batch = "id in ids"`: one call loads many ids, each cached under its own key.
    pub batch: Option<LitStr>,
}

/// The arguments of `#[invalidate]` and `#[invalidate_patient_cache]`.
#[derive(Default)]
pub(crate) struct InvalidateArgs {
    pub attr: Attr,
    pub shared: Shared,
    pub keys: Vec<LitStr>,
    pub patterns: Vec<LitStr>,
    pub before: Option<LitBool>,
}

/// The typed arguments of one family of attributes.
pub(crate) trait Family: Sized {
    fn new(attr: Attr) -> Self;
    /// Stores the value of an argument that [`ARGS`] gives to this family.
    fn set(&mut self, name: Name, value: Value);

    /// Parses the arguments of `attr`, reporting every malformed one.
    fn parse(attr: Attr, tokens: proc_macro2::TokenStream) -> syn::Result<Self> {
        (|input: ParseStream<'_>| parse_args::<Self>(attr, input)).parse2(tokens)
    }
}

impl CacheArgs {
    /// `stale = "off"`, or emergency data, which is never served stale.
    pub(crate) fn emergency(&self) -> bool {
        self.emergency.as_ref().is_some_and(|e| e.value)
    }

    pub(crate) fn stale_after(&self) -> Option<DurationArg> {
        match self.stale {
            Some(Stale::After(d)) => Some(d),
            _ => None,
        }
    }
}

impl Family for CacheArgs {
    fn new(attr: Attr) -> Self {
        CacheArgs {
            attr,
            ..CacheArgs::default()
        }
    }

    fn set(&mut self, name: Name, value: Value) {
        let Some(value) = self.shared.set(name, value) else {
            return;
        };
        match (name, value) {
            (Name::Key, Value::Str(k)) => self.key = Some(k),
            (Name::Ttl, Value::Duration(d)) => self.ttl = Some(d),
            (Name::Stale, Value::Stale(s)) => self.stale = Some(s),
            (Name::Compress, Value::Compress(c)) => self.compress = Some(c),
            (Name::Skip, Value::Idents(s)) => self.skip = s,
            (Name::Condition, Value::Expr(e)) => self.condition = Some(e),
            (Name::CacheNone, Value::Bool(b)) => self.cache_none = Some(b),
            (Name::Timeout, Value::Duration(d)) => self.timeout = Some(d),
            (Name::FailSafe, Value::Duration(d)) => self.fail_safe = Some(d),
            (Name::Jitter, Value::Percent(p)) => self.jitter = Some(p),
            (Name::Early, Value::Bool(b)) => self.early = Some(b),
            (Name::Beta, Value::Float(f)) => self.beta = Some(f),
            (Name::Priority, Value::Str(s)) => self.priority = Some(s),
            (Name::Refresh, Value::Str(s)) => self.refresh = Some(s),
            (Name::L1, Value::L1(l)) => self.l1 = Some(l),
            (Name::Compliance, Value::Str(s)) => self.compliance = Some(s),
            (Name::Emergency, Value::Bool(b)) => self.emergency = Some(b),
            (Name::ValueShape, Value::Bool(b)) => self.value_shape = Some(b),
            (Name::Batch, Value::Str(b)) => self.batch = Some(b),
            (name, _) => unreachable!("{name:?} is not an argument of {}", self.attr.name()),
        }
    }
}

impl Family for InvalidateArgs {
    fn new(attr: Attr) -> Self {
        InvalidateArgs {
            attr,
            ..InvalidateArgs::default()
        }
    }

    fn set(&mut self, name: Name, value: Value) {
        let Some(value) = self.shared.set(name, value) else {
            return;
        };
        match (name, value) {
            (Name::Keys, Value::Strs(k)) => self.keys = k,
            (Name::Patterns, Value::Strs(p)) => self.patterns = p,
            (Name::Before, Value::Bool(b)) => self.before = Some(b),
            (name, _) => unreachable!("{name:?} is not an argument of {}", self.attr.name()),
        }
    }
}

/// `name = value, ..`: every unknown, repeated or malformed argument is reported, and the
/// arguments after it are still read.
fn parse_args<F: Family>(attr: Attr, input: ParseStream<'_>) -> syn::Result<F> {
    let cx = Ctxt::new();
    let mut out = F::new(attr);
    let mut seen: Vec<String> = Vec::new();
    while !input.is_empty() {
        let Ok(name) = input.call(Ident::parse_any) else {
            let msg = format!("expected a named argument, as in `{}`", attr.example());
            return Err(cx.fail(input.error(msg)));
        };
        let text = name.to_string();
        let arg = attr.args().find(|a| a.name == text);
        if arg.is_none() {
            let hint = closest(&text, attr.args().map(|a| a.name))
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            let valid = attr.args().map(|a| a.name).collect::<Vec<_>>().join(", ");
            cx.error_at(
                name.span(),
                format!(
                    "unknown argument `{text}` of {}; {hint}expected one of: {valid}",
                    attr.name()
                ),
            );
        } else if seen.contains(&text) {
            cx.error_at(name.span(), format!("`{text}` is given twice; keep one"));
        }
        seen.push(text.clone());
        match (arg, input.parse::<Token![=]>()) {
            // `cache_none` alone, or `ttl 60`: say how the argument is written.
            (Some(arg), Err(_)) => {
                let msg = format!("`{text}` needs a value, as in `{}`", arg.example);
                return Err(cx.fail(syn::Error::new(name.span(), msg)));
            }
            (Some(arg), Ok(_)) => match parse_value(arg, input) {
                Ok(value) => out.set(arg.id, value),
                Err(e) => {
                    cx.syn_error(e);
                    skip_value(input)?;
                }
            },
            (None, _) => skip_value(input)?,
        }
        if input.is_empty() {
            break;
        }
        if let Err(e) = input.parse::<Token![,]>() {
            return Err(cx.fail(syn::Error::new(e.span(), "expected `,` between arguments")));
        }
    }
    cx.check()?;
    Ok(out)
}

/// The value of `arg`, after its `=`, as its kind says.
fn parse_value(arg: &Arg, input: ParseStream<'_>) -> syn::Result<Value> {
    let name = arg.name;
    // The value is the wrong kind of token: keep the position, say what is expected.
    let expected = |what: &'static str| {
        move |e: syn::Error| {
            syn::Error::new(
                e.span(),
                format!("`{name}` takes {what}, as in `{}`", arg.example),
            )
        }
    };
    Ok(match arg.kind {
        Kind::Template => Value::Str(input.parse().map_err(expected("a template in a string"))?),
        Kind::Templates => {
            Value::Strs(parse_list(input).map_err(expected("a list of templates in strings"))?)
        }
        Kind::Duration => Value::Duration(parse_duration(input, name)?),
        Kind::DurationOrOff => {
            if input.peek(LitStr) && input.fork().parse::<LitStr>()?.value() == "off" {
                input.parse::<LitStr>()?;
                Value::Stale(Stale::Off)
            } else {
                Value::Stale(Stale::After(parse_duration(input, name)?))
            }
        }
        Kind::DurationOrFalse => {
            if input.peek(LitBool) {
                let b: LitBool = input.parse()?;
                if b.value {
                    let msg = format!(
                        "`{name}` takes a duration or `false`: copies are kept by default when \
                         the cache has an L1 tier; write `{}` to choose how long, or \
                         `{name} = false` to keep none",
                        arg.example
                    );
                    return Err(syn::Error::new(b.span, msg));
                }
                Value::L1(L1Arg::Off)
            } else {
                let d = parse_duration(input, name)?;
                if d.ms == 0 {
                    let msg = format!("`{name}` of zero keeps nothing: write `{name} = false`");
                    return Err(syn::Error::new(d.span, msg));
                }
                Value::L1(L1Arg::For(d))
            }
        }
        Kind::Bool => Value::Bool(input.parse().map_err(expected("`true` or `false`"))?),
        Kind::Percent => {
            let lit: LitInt = input
                .parse()
                .map_err(expected("a percentage from 0 to 100"))?;
            match lit.base10_parse::<u8>() {
                Ok(p @ 0..=100) => Value::Percent(p),
                _ => {
                    let msg = format!("`{name}` is a percentage from 0 to 100");
                    return Err(syn::Error::new(lit.span(), msg));
                }
            }
        }
        Kind::Positive => {
            let lit: LitFloat = input
                .parse()
                .map_err(expected("a positive number such as 1.0"))?;
            if !lit
                .base10_parse::<f64>()
                .is_ok_and(|b| b > 0.0 && b.is_finite())
            {
                let msg = format!(
                    "`{name}` must be a positive number, as in `{}`",
                    arg.example
                );
                return Err(syn::Error::new(lit.span(), msg));
            }
            Value::Float(lit)
        }
        Kind::OneOf(choices) => {
            let lit: LitStr = input.parse().map_err(expected("a string"))?;
            if !choices.iter().any(|(c, _)| lit.value() == *c) {
                let list = choices
                    .iter()
                    .map(|(c, what)| match what {
                        &"" => format!("{c:?}"),
                        what => format!("{c:?} ({what})"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(syn::Error::new(
                    lit.span(),
                    format!("`{name}` is one of {list}"),
                ));
            }
            Value::Str(lit)
        }
        Kind::Batch => Value::Str(input.parse().map_err(expected(
            "the item's name and the collection parameter in a string",
        ))?),
        Kind::Param => Value::Str(
            input
                .parse()
                .map_err(expected("the name of a parameter in a string"))?,
        ),
        Kind::Params => {
            Value::Idents(parse_list(input).map_err(expected("a list of parameter names"))?)
        }
        Kind::Expr => Value::Expr(input.parse()?),
        Kind::Path => {
            let lit: LitStr = input.parse().map_err(expected("a path in a string"))?;
            let path = lit
                .parse()
                .map_err(|e| expected("a path in a string")(syn::Error::new(lit.span(), e)))?;
            Value::Path(path)
        }
        Kind::Compress => Value::Compress(input.parse()?),
        Kind::Version => Value::Version(input.parse::<Version>()?.0),
    })
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

impl Parse for CompressArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const EXPECTED: &str =
            "`compress` takes `true`, `false`, or a threshold in bytes (`compress = 4096`)";
        let lookahead = input.lookahead1();
        if lookahead.peek(LitBool) {
            let b: LitBool = input.parse()?;
            Ok(if b.value {
                CompressArg::Default
            } else {
                CompressArg::Never
            })
        } else if lookahead.peek(LitInt) {
            Ok(CompressArg::Above(input.parse::<LitInt>()?.base10_parse()?))
        } else {
            Err(syn::Error::new(input.span(), EXPECTED))
        }
    }
}

/// `version = 2` or `version = "2024-06"`.
struct Version(String);

impl Parse for Version {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const EXPECTED: &str = "`version` takes an integer or a string, as in `version = 2`";
        let lookahead = input.lookahead1();
        let (text, span) = if lookahead.peek(LitInt) {
            let i: LitInt = input.parse()?;
            (i.base10_digits().to_owned(), i.span())
        } else if lookahead.peek(LitStr) {
            let s: LitStr = input.parse()?;
            (s.value(), s.span())
        } else {
            return Err(syn::Error::new(input.span(), EXPECTED));
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
        Ok(Version(text))
    }
}
