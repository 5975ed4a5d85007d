//! Humane durations (`30m`, `2h`, `1h30m`, `1d`) as written in `@max_duration` and in
//! scenario files. Kept strict — units in decreasing order, each at most once — so that a
//! typo such as `2hh` or `30m2h` is an error instead of a surprising maximum.

/// Longest duration accepted anywhere in policies: far beyond any sane grant, and small
/// enough that arithmetic on it cannot overflow.
const MAX_SECS: i64 = 366 * 86_400;

/// Parse `1d`, `8h`, `1h30m`, `90m`, `45s` into seconds (> 0).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. \"30m\", \"2h\", \"1h30m\" or \"1d\"".into());
    }
    let units = [('d', 86_400_i64), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut total: i64 = 0;
    let mut next_unit = 0usize;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some(pos) = units.iter().position(|(u, _)| *u == c) else {
            return Err(format!(
                "{text:?}: unexpected {c:?}; use a number followed by d, h, m or s, e.g. \"1h30m\""
            ));
        };
        if digits.is_empty() {
            return Err(format!("{text:?}: {c:?} needs a number before it"));
        }
        if pos < next_unit {
            return Err(format!(
                "{text:?}: write units once each, largest first (d, h, m, s)"
            ));
        }
        next_unit = pos + 1;
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: number {digits} is too large"))?;
        total = n
            .checked_mul(units[pos].1)
            .and_then(|v| v.checked_add(total))
            .filter(|v| *v <= MAX_SECS)
            .ok_or_else(|| format!("{text:?}: longer than the limit of 366 days"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "{text:?}: {digits} needs a unit (d, h, m or s), e.g. \"{digits}m\""
        ));
    }
    if total == 0 {
        return Err(format!("{text:?}: a duration must be longer than zero"));
    }
    Ok(total)
}

/// The shortest humane spelling of a number of seconds: `7200` → `2h`, `5400` → `1h30m`.
pub fn format_duration(secs: i64) -> String {
    if secs <= 0 {
        return "0s".into();
    }
    let mut rest = secs;
    let mut out = String::new();
    for (unit, size) in [('d', 86_400_i64), ('h', 3_600), ('m', 60), ('s', 1)] {
        let n = rest / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push(unit);
            rest -= n * size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humane_durations_parse() {
        for (text, secs) in [
            ("30m", 1800),
            ("2h", 7200),
            ("1h30m", 5400),
            ("1d", 86_400),
            (" 45s ", 45),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
            assert_eq!(parse_duration(&format_duration(secs)), Ok(secs));
        }
        assert_eq!(format_duration(5400), "1h30m");
    }

    #[test]
    fn bad_durations_say_why() {
        for (text, needle) in [
            ("", "empty"),
            ("2", "needs a unit"),
            ("h", "needs a number"),
            ("2x", "unexpected"),
            ("30m2h", "largest first"),
            ("2hh", "needs a number"),
            ("0m", "longer than zero"),
            ("999d", "366 days"),
            ("99999999999999999999h", "too large"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
