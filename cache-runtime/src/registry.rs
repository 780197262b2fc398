//! The link-time registry of every cached function.
//!
//! Each `#[cached]` function contributes one [`FnSpec`] to [`REGISTRY`] through linkme, so the
//! whole program's caching is known at startup without any registration call: listing it,
//! reporting two functions that share a key template, per-function statistics.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::codec::Compress;
use crate::refresh_queue::Priority;
use crate::stats::Counters;

/// Everything the attribute said about one cached function.
#[derive(Debug)]
#[non_exhaustive]
pub struct FnSpec {
    /// The function's name.
    pub name: &'static str,
    /// `module_path!()` where it is defined.
    pub module: &'static str,
    /// The key template as written, or the generated default (`module::fn:{a}:{b}`).
    pub template: &'static str,
    /// Whether `template` is the generated default.
    pub default_key: bool,
    /// `ttl`; `None` uses the cache's default.
    pub ttl: Option<Duration>,
    /// `stale`; `None` uses half the TTL.
    pub stale: Option<Duration>,
    /// `tags`, as templates.
    pub tags: &'static [&'static str],
    /// `compress`.
    pub compress: Compress,
    /// `version`, appended to the key as `:v{version}`.
    pub version: Option<&'static str>,
    /// `cache_none`: whether `None` results are cached.
    pub cache_none: bool,
    /// `stale = "off"`: values stay fresh until they expire.
    pub stale_off: bool,
    /// `timeout`: past it, a stale value is served while the load goes on.
    pub timeout: Option<Duration>,
    /// `fail_safe`: how long past `ttl` an entry is kept to be served when the loader fails.
    pub fail_safe: Option<Duration>,
    /// `jitter`: TTLs are shortened by up to this many percent, at random.
    pub jitter: u8,
    /// `early = true` (and `beta`): probabilistic early refresh with this beta.
    pub early_beta: Option<f64>,
    /// `priority` of this function's background refreshes.
    pub priority: Priority,
    /// `l1`: how long the L1 tier keeps a copy at most; `None` uses the cache's `l1_ttl`,
    /// zero (`l1 = false`) keeps none.
    pub l1: Option<Duration>,
    /// The compliance cap: a TTL from configuration above it is lowered to it.
    pub max_ttl: Option<Duration>,
    /// Whether this is a `#[cache_put]` writer (it shares its template with a reader).
    pub put: bool,
    /// Whether the lowering of a configured TTL to `max_ttl` was logged already.
    pub clamp_logged: std::sync::atomic::AtomicBool,
    /// Whether values are protected health information (set by `#[patient_cache]`).
    pub phi: bool,
    /// Where the function is defined, for messages.
    pub file: &'static str,
    /// The line of the function, for messages.
    pub line: u32,
    /// This function's counters, across every cache it used.
    pub stats: Counters,
    /// This function's handles in the installed `metrics` recorder.
    pub metrics: crate::metrics::FnMetrics,
    /// The shape of the value type (`fingerprint.rs`), traced at the first call, with the
    /// name of the type it was traced for.
    pub shape: std::sync::OnceLock<(&'static str, u64)>,
    /// `value_shape`: whether entries record the shape of the value type and are checked
    /// against it (`false` with `value_shape = false`).
    pub value_shape: bool,
}

impl FnSpec {
    /// A spec with defaults for everything but the identity; the base the macros fill in.
    pub const fn new(name: &'static str, module: &'static str, template: &'static str) -> Self {
        FnSpec {
            name,
            module,
            template,
            default_key: false,
            ttl: None,
            stale: None,
            tags: &[],
            compress: Compress::Default,
            version: None,
            cache_none: false,
            stale_off: false,
            timeout: None,
            fail_safe: None,
            jitter: 0,
            early_beta: None,
            priority: Priority::Normal,
            l1: None,
            max_ttl: None,
            put: false,
            clamp_logged: std::sync::atomic::AtomicBool::new(false),
            phi: false,
            file: "",
            line: 0,
            stats: Counters::new(),
            metrics: crate::metrics::FnMetrics::new(),
            shape: std::sync::OnceLock::new(),
            value_shape: true,
        }
    }

    /// The shape of `T`, the function's value type: traced once, then a load. A function of a
    /// generic `impl` shares its spec between instantiations; only the first type traced is
    /// checked (`None` for the others).
    pub(crate) fn shape_of<T: serde::de::DeserializeOwned>(&self) -> Option<u64> {
        let name = std::any::type_name::<T>();
        let (traced, shape) = *self
            .shape
            .get_or_init(|| (name, crate::fingerprint::hash::<T>()));
        (std::ptr::eq(traced, name) || traced == name).then_some(shape)
    }

    /// `l1 = ".."`: the L1 tier keeps copies at most `ms` milliseconds.
    pub const fn l1_ms(mut self, ms: u64) -> Self {
        self.l1 = Some(Duration::from_millis(ms));
        self
    }

    /// `l1 = false`: never kept in the L1 tier.
    pub const fn no_l1(mut self) -> Self {
        self.l1 = Some(Duration::ZERO);
        self
    }

    /// `value_shape = false`: entries record no shape of the value type, and none is checked.
    pub const fn no_value_shape(mut self) -> Self {
        self.value_shape = false;
        self
    }

    /// Marks the template as the generated default.
    pub const fn default_key(mut self) -> Self {
        self.default_key = true;
        self
    }

    /// Sets the TTL.
    pub const fn ttl_ms(mut self, ms: u64) -> Self {
        self.ttl = Some(Duration::from_millis(ms));
        self
    }

    /// Sets when values turn stale.
    pub const fn stale_ms(mut self, ms: u64) -> Self {
        self.stale = Some(Duration::from_millis(ms));
        self
    }

    /// Sets the tag templates.
    pub const fn tags(mut self, tags: &'static [&'static str]) -> Self {
        self.tags = tags;
        self
    }

    /// Sets compression.
    pub const fn compress(mut self, compress: Compress) -> Self {
        self.compress = compress;
        self
    }

    /// Sets the version segment.
    pub const fn version(mut self, version: &'static str) -> Self {
        self.version = Some(version);
        self
    }

    /// Caches `None` results too.
    pub const fn cache_none(mut self) -> Self {
        self.cache_none = true;
        self
    }

    /// Values stay fresh until they expire (`stale = "off"`).
    pub const fn stale_off(mut self) -> Self {
        self.stale_off = true;
        self
    }

    /// Sets the loader timeout.
    pub const fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout = Some(Duration::from_millis(ms));
        self
    }

    /// Sets the fail-safe grace period.
    pub const fn fail_safe_ms(mut self, ms: u64) -> Self {
        self.fail_safe = Some(Duration::from_millis(ms));
        self
    }

    /// Sets the TTL jitter in percent (at most 100).
    pub const fn jitter(mut self, percent: u8) -> Self {
        self.jitter = if percent > 100 { 100 } else { percent };
        self
    }

    /// Enables probabilistic early refresh with `beta` (1.0 is the paper's default).
    pub const fn early(mut self, beta: f64) -> Self {
        self.early_beta = Some(beta);
        self
    }

    /// Sets the refresh priority.
    pub const fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Caps the TTL (compliance levels).
    pub const fn max_ttl_ms(mut self, ms: u64) -> Self {
        self.max_ttl = Some(Duration::from_millis(ms));
        self
    }

    /// Marks a `#[cache_put]` writer.
    pub const fn put(mut self) -> Self {
        self.put = true;
        self
    }

    /// Marks the values as protected health information.
    pub const fn phi(mut self) -> Self {
        self.phi = true;
        self
    }

    /// Records where the function is defined.
    pub const fn at(mut self, file: &'static str, line: u32) -> Self {
        self.file = file;
        self.line = line;
        self
    }

    /// `module::name`.
    pub fn path(&self) -> String {
        format!("{}::{}", self.module, self.name)
    }
}

#[doc(hidden)]
#[linkme::distributed_slice]
pub static REGISTRY: [FnSpec];

/// Every cached function linked into this program.
///
/// ```
/// for f in cache_runtime::registry() {
///     println!("{}::{} key={} ttl={:?}", f.module, f.name, f.template, f.ttl);
/// }
/// ```
pub fn registry() -> &'static [FnSpec] {
    &REGISTRY
}

/// Groups of functions that share one key template (and version): their entries would overwrite
/// each other. Generated default templates include the module path and, for methods, the
/// receiver's type (`{Self}`, distinct at run time); two associated functions of one name in
/// one module do collide, and are reported.
pub fn duplicate_templates() -> Vec<Vec<&'static FnSpec>> {
    duplicates_in(registry())
}

fn duplicates_in(specs: &'static [FnSpec]) -> Vec<Vec<&'static FnSpec>> {
    let mut by_template: BTreeMap<(&str, Option<&str>), Vec<&'static FnSpec>> = BTreeMap::new();
    let distinct_at_run_time = |s: &FnSpec| s.default_key && s.template.contains("{Self}");
    for spec in specs.iter().filter(|s| !s.put && !distinct_at_run_time(s)) {
        by_template
            .entry((spec.template, spec.version))
            .or_default()
            .push(spec);
    }
    by_template.into_values().filter(|v| v.len() > 1).collect()
}

/// Pairs of a `#[cache_put]` writer and a reader of its template (and version) whose tags
/// differ: an entry is served only to a function with exactly the tags it was written with,
/// so the writer's entries would never be served to that reader.
fn puts_with_other_tags(specs: &'static [FnSpec]) -> Vec<(&'static FnSpec, &'static FnSpec)> {
    let same_tags = |a: &FnSpec, b: &FnSpec| {
        a.tags.iter().all(|t| b.tags.contains(t)) && b.tags.iter().all(|t| a.tags.contains(t))
    };
    let mut pairs = Vec::new();
    for put in specs.iter().filter(|s| s.put) {
        for reader in specs.iter().filter(|s| !s.put) {
            let shared = (reader.template, reader.version) == (put.template, put.version);
            if shared && !same_tags(put, reader) {
                pairs.push((put, reader));
            }
        }
    }
    pairs
}

/// Logs a warning for each group of [`duplicate_templates`], and for each `#[cache_put]`
/// whose tags differ from those of a reader of its key; called when a cache is built.
pub(crate) fn report_duplicates() {
    for (put, reader) in puts_with_other_tags(registry()) {
        tracing::warn!(
            target: "cachette",
            template = put.template,
            writer = %format!("{} ({}:{})", put.path(), put.file, put.line),
            reader = %format!("{} ({}:{})", reader.path(), reader.file, reader.line),
            "a #[cache_put] writes entries with other tags than the function that reads its key; \
             an entry is served only with the tags it was written with, so these writes are \
             never served to it (give the writer the reader's tags)"
        );
    }
    for group in duplicate_templates() {
        let names: Vec<String> = group
            .iter()
            .map(|s| format!("{} ({}:{})", s.path(), s.file, s.line))
            .collect();
        tracing::warn!(
            target: "cachette",
            template = group[0].template,
            functions = %names.join(", "),
            "several cached functions share one key template; their entries overwrite each other \
             (give each a distinct key or a version)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_writers_whose_tags_differ_from_their_readers() {
        static SPECS: [FnSpec; 5] = [
            FnSpec::new("user", "m", "user:{id}").tags(&["users", "user:{id}"]),
            FnSpec::new("save", "m", "user:{id}")
                .tags(&["user:{id}", "users"])
                .put(),
            FnSpec::new("rename", "m", "user:{id}")
                .tags(&["users"])
                .put(),
            FnSpec::new("order", "m", "order:{id}"),
            FnSpec::new("save_order", "m", "order:{id}").put(),
        ];
        let pairs: Vec<_> = puts_with_other_tags(&SPECS)
            .iter()
            .map(|(w, r)| (w.name, r.name))
            .collect();
        assert_eq!(pairs, [("rename", "user")]);
    }

    #[test]
    fn finds_shared_templates() {
        static SPECS: [FnSpec; 7] = [
            FnSpec::new("a", "m", "user:{id}"),
            FnSpec::new("b", "m", "user:{id}"),
            FnSpec::new("c", "m", "order:{id}"),
            // Methods of two types: their keys differ by the receiver's type at run time.
            FnSpec::new("d", "m", "m::{Self}::d:{id}").default_key(),
            FnSpec::new("d", "m", "m::{Self}::d:{id}").default_key(),
            // Associated functions of one name in one module: they would collide.
            FnSpec::new("e", "m", "m::e:{id}").default_key(),
            FnSpec::new("e", "m", "m::e:{id}").default_key(),
        ];
        let groups = duplicates_in(&SPECS);
        let names: Vec<Vec<_>> = groups
            .iter()
            .map(|g| g.iter().map(|s| s.name).collect())
            .collect();
        assert_eq!(names, [vec!["e", "e"], vec!["a", "b"]]);
    }
}
