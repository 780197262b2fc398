//! Redis glob patterns (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`): checking them before any
//! store sees them, and matching them in the in-process store exactly as Redis does.

/// Why `pattern` is not a well-formed glob, if it is not: a class (`[`) with no closing `]`,
/// or a trailing escape (`\`) with nothing to escape. Redis reads both leniently (to the end
/// of the pattern); a cache refuses them, because what they match is rarely what was meant.
pub(crate) fn check(pattern: &str) -> Result<(), &'static str> {
    let p = pattern.as_bytes();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 == p.len() => return Err("a trailing `\\` escapes nothing"),
            b'\\' => i += 2,
            b'[' => {
                i += 1;
                if p.get(i) == Some(&b'^') {
                    i += 1;
                }
                // Read as Redis reads a class: an escape, the closing `]`, a range `x-y` (whose
                // end may be `]`: `[a-]` is not closed), or one byte.
                loop {
                    match p.get(i) {
                        None => return Err("a `[` class has no closing `]`"),
                        Some(b'\\') if i + 1 < p.len() => i += 2,
                        Some(b']') => break,
                        Some(_) if i + 2 < p.len() && p[i + 1] == b'-' => i += 3,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Whether `key` matches the Redis glob `pattern` (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`).
pub(crate) fn glob_match(pattern: &[u8], key: &[u8]) -> bool {
    // Redis' matcher never matches an empty key with a non-empty pattern, not even `**`; only
    // `*` alone reaches it, because SCAN and KEYS skip matching for that one pattern.
    if key.is_empty() {
        return pattern.is_empty() || pattern == b"*";
    }
    let (mut p, mut k) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, key index it matched to).
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, k));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class_match(pattern, p, key[k]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == key[k]).then_some(p + 2),
            Some(&c) => (c == key[k]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                k += 1;
            }
            (None, Some((sp, sk))) => {
                p = sp;
                k = sk + 1;
                star = Some((sp, sk + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[at] == b'['`; the index after it on a match.
fn class_match(pattern: &[u8], at: usize, c: u8) -> Option<usize> {
    let mut i = at + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            matched |= pattern[i + 1] == c;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
            let (lo, hi) = (
                pattern[i].min(pattern[i + 2]),
                pattern[i].max(pattern[i + 2]),
            );
            matched |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            matched |= pattern[i] == c;
            i += 1;
        }
    }
    // An unterminated class matches nothing (`check` refuses it before any store sees it).
    if i >= pattern.len() {
        return None;
    }
    (matched != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::{check, glob_match};

    #[test]
    fn globs_match_like_redis() {
        let m = |p: &str, k: &str| glob_match(p.as_bytes(), k.as_bytes());
        assert!(m("user:*", "user:12"));
        assert!(m("user:12:*", "user:12:posts"));
        assert!(!m("user:12:*", "user:123:posts"));
        assert!(m("*", "") && !m("**", "") && !m("?*", ""), "as in Redis");
        assert!(m("", ""));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[^ab]x", "bx"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*:posts", "user:1:posts"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn malformed_patterns_are_refused_and_never_panic() {
        for bad in ["a[b", "[", "a[^", "a\\", "[a\\", "x[a-"] {
            assert!(check(bad).is_err(), "{bad}");
            for key in ["", "a", "ab", "a[b", "x"] {
                // The matcher is total even on what `check` refuses.
                let _ = glob_match(bad.as_bytes(), key.as_bytes());
            }
        }
        for bad in ["[a-]", "?[-[-]"] {
            assert!(
                check(bad).is_err(),
                "a range ending in `]` leaves {bad} open, as in Redis"
            );
        }
        for good in [
            "a*", "a[b]c", "[^a]", "\\[", "a\\*b", "[]]", "[a\\]]", "[a-]]", "*", "",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }
}
