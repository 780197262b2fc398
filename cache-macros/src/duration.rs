//! Durations as written in attributes: an integer of seconds, or `"500ms"`, `"30s"`, `"5m"`,
//! `"1h30m"`, `"2d"`.

/// The units, largest first (the order [`render`] writes them in).
const UNITS: &[(&str, u64)] = &[
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses `s` into milliseconds. An error says what is wrong and, where it can, the string to
/// write instead.
pub(crate) fn parse_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the duration is empty; write a number and a unit, as in \"5m\"".into());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return secs
            .checked_mul(1000)
            .ok_or_else(|| "the duration is too long to count in milliseconds".into());
    }
    let bytes = s.as_bytes();
    let mut total: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "expected a number at `{}`; write a number followed by a unit, as in \"5m\"",
                &s[start..]
            ));
        }
        let n: u64 = s[start..i]
            .parse()
            .map_err(|_| format!("the number {} is too large", &s[start..i]))?;
        if i < bytes.len() && bytes[i] == b'.' {
            return Err(fraction(s, start));
        }
        // A space between the number and the unit is an error, but a helpful one.
        let spaced = i < bytes.len() && bytes[i] == b' ';
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[unit_start..i];
        let unit_ms = match UNITS.iter().find(|(u, _)| *u == unit) {
            Some((_, ms)) if !spaced => *ms,
            found => {
                let short = found.map(|(u, _)| *u).or_else(|| long_unit(unit));
                let whole = start == 0 && i == bytes.len();
                return Err(match (unit, short) {
                    ("", _) => format!(
                        "the number {n} has no unit; add one of ms, s, m, h, d, as in \"{n}s\""
                    ),
                    (_, Some(short)) if whole => format!(
                        "write \"{n}{short}\": units are written short, right after the number"
                    ),
                    (_, Some(short)) => format!(
                        "`{unit}` is written `{short}`, right after its number, as in \"{n}{short}\""
                    ),
                    (_, None) => format!(
                        "unknown unit `{unit}`; the units are ms, s, m, h and d, as in \"30s\" \
                         or \"1h30m\""
                    ),
                });
            }
        };
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "the duration is too long to count in milliseconds".to_owned())?;
    }
    Ok(total)
}

/// The short unit for a spelled-out one (`minutes` → `m`).
fn long_unit(unit: &str) -> Option<&'static str> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "millis" | "msec" | "msecs" | "millisecond" | "milliseconds" => "ms",
        "sec" | "secs" | "second" | "seconds" => "s",
        "min" | "mins" | "minute" | "minutes" => "m",
        "hr" | "hrs" | "hour" | "hours" => "h",
        "day" | "days" => "d",
        _ => return None,
    })
}

/// The error for a fractional number such as `1.5h` (starting at `start`), with the whole
/// units to write instead when they are exact.
fn fraction(s: &str, start: usize) -> String {
    let rest = &s[start..];
    let number_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = rest.split_at(number_len);
    let exact = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .and_then(|(_, unit_ms)| {
            let (whole, frac) = number.split_once('.')?;
            let scale = 10u64.checked_pow(u32::try_from(frac.len()).ok()?)?;
            let digits: u64 = format!("{whole}{frac}").parse().ok()?;
            let scaled = digits.checked_mul(*unit_ms)?;
            (scaled % scale == 0).then(|| scaled / scale)
        });
    match exact {
        // Only when the fraction is the whole duration: "1.5h", not "1h0.5m".
        Some(ms) if start == 0 => format!("fractions are not supported; write \"{}\"", render(ms)),
        _ => "fractions are not supported; combine whole units instead, as in \"1h30m\"".into(),
    }
}

/// `ms` in whole units, largest first: 5_400_000 → `1h30m`.
fn render(mut ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, unit_ms) in UNITS {
        if ms >= *unit_ms {
            out.push_str(&format!("{}{unit}", ms / unit_ms));
            ms %= unit_ms;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn parses() {
        assert_eq!(parse_ms("300"), Ok(300_000));
        assert_eq!(parse_ms("500ms"), Ok(500));
        assert_eq!(parse_ms("5m"), Ok(300_000));
        assert_eq!(parse_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_ms("2d"), Ok(172_800_000));
        assert_eq!(parse_ms("1m500ms"), Ok(60_500));
        assert_eq!(parse_ms("0"), Ok(0));
    }

    #[test]
    fn rejects() {
        for bad in ["", "5 minutes", "5x", "m5", "1.5h", "-1s", "5 m"] {
            assert!(parse_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn suggests_the_fix() {
        let err = |s| parse_ms(s).unwrap_err();
        assert!(err("1.5h").contains("\"1h30m\""), "{}", err("1.5h"));
        assert!(err("0.5s").contains("\"500ms\""), "{}", err("0.5s"));
        assert!(
            err("1.0001ms").contains("whole units"),
            "{}",
            err("1.0001ms")
        );
        assert!(err("5 minutes").contains("\"5m\""), "{}", err("5 minutes"));
        assert!(err("5 m").contains("\"5m\""), "{}", err("5 m"));
        assert!(err("5x").contains("unknown unit `x`"), "{}", err("5x"));
        assert!(err("1h5").contains("no unit"), "{}", err("1h5"));
    }
}
