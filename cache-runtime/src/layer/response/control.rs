//! `Cache-Control` (RFC 9111 §5.2), as far as a shared cache in front of one service reads it.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, PRAGMA};

/// The directives of every `Cache-Control` line of a message, names compared without case.
///
/// A directive whose argument does not parse as seconds counts as zero (RFC 9111 §4.2.1: an
/// invalid freshness lifetime is stale); qualified forms (`private="x"`, `no-cache="x"`) count
/// as their unqualified form, which is the cautious reading for a shared cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Directives {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub max_age: Option<Duration>,
    pub s_maxage: Option<Duration>,
    pub stale_while_revalidate: Option<Duration>,
}

impl Directives {
    /// The directives of `headers`; a request without `Cache-Control` but with
    /// `Pragma: no-cache` (HTTP/1.0) reads as `no-cache`.
    pub fn of(headers: &HeaderMap) -> Directives {
        let mut d = Directives::default();
        let mut any = false;
        for line in headers.get_all(CACHE_CONTROL) {
            any = true;
            // A line that is not visible ASCII is read as what it most cautiously could say.
            let Ok(line) = line.to_str() else {
                d.no_store = true;
                continue;
            };
            for item in split_directives(line) {
                d.read(item);
            }
        }
        if !any {
            d.no_cache = headers
                .get_all(PRAGMA)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| {
                    v.split(',')
                        .any(|p| p.trim().eq_ignore_ascii_case("no-cache"))
                });
        }
        d
    }

    fn read(&mut self, item: &str) {
        let (name, arg) = match item.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (item.trim(), None),
        };
        let seconds = || {
            Some(Duration::from_secs(
                arg.and_then(|a| a.parse::<u64>().ok()).unwrap_or(0),
            ))
        };
        if name.eq_ignore_ascii_case("no-store") {
            self.no_store = true;
        } else if name.eq_ignore_ascii_case("no-cache") {
            self.no_cache = true;
        } else if name.eq_ignore_ascii_case("private") {
            self.private = true;
        } else if name.eq_ignore_ascii_case("max-age") {
            self.max_age = min(self.max_age, seconds());
        } else if name.eq_ignore_ascii_case("s-maxage") {
            self.s_maxage = min(self.s_maxage, seconds());
        } else if name.eq_ignore_ascii_case("stale-while-revalidate") {
            self.stale_while_revalidate = min(self.stale_while_revalidate, seconds());
        }
    }

    /// How long a shared cache may call the response fresh, when the response says:
    /// `s-maxage`, else `max-age`.
    pub fn shared_max_age(&self) -> Option<Duration> {
        self.s_maxage.or(self.max_age)
    }
}

/// A directive given twice counts with its smaller value.
fn min(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The comma-separated items of a line; commas inside quoted arguments do not split.
fn split_directives(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let mut quoted = false;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let item = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or("");
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn of(lines: &[&str]) -> Directives {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(CACHE_CONTROL, HeaderValue::from_str(l).unwrap());
        }
        Directives::of(&h)
    }

    #[test]
    fn directives_are_read_without_case_and_across_lines() {
        let d = of(&["Public, MAX-AGE=60", "stale-while-revalidate=30"]);
        assert_eq!(d.max_age, Some(Duration::from_secs(60)));
        assert_eq!(d.stale_while_revalidate, Some(Duration::from_secs(30)));
        assert!(!d.no_store && !d.private && !d.no_cache);
        let d = of(&["max-age=60, s-maxage=10"]);
        assert_eq!(d.shared_max_age(), Some(Duration::from_secs(10)));
        assert!(of(&["no-store"]).no_store);
        assert!(of(&["private=\"set-cookie, x\", max-age=5"]).private);
        assert_eq!(
            of(&["private=\"a,b\", max-age=5"]).max_age,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn bad_or_repeated_lifetimes_read_cautiously() {
        assert_eq!(of(&["max-age=soon"]).max_age, Some(Duration::ZERO));
        assert_eq!(of(&["max-age"]).max_age, Some(Duration::ZERO));
        assert_eq!(
            of(&["max-age=60", "max-age=5"]).max_age,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn pragma_counts_only_without_cache_control() {
        let mut h = HeaderMap::new();
        h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        assert!(Directives::of(&h).no_cache);
        h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        assert!(!Directives::of(&h).no_cache);
    }
}
