//! Parsing of user-typed values (start times, durations, TOTP codes) and the formatting
//! primitives every view shares: times, humane durations, obligations in words, tables and
//! aligned key/value blocks. Kept apart from the area modules so that every verb prints
//! times and durations the same way.

use chrono::{DateTime, NaiveDateTime, Utc};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use jitgate_core::{ApproverSite, Obligations, Timestamp};

/// Parse a window start as typed on the command line.
///
/// Accepted: `2026-12-01T06:00Z`, `2026-12-01T06:00:00Z`, `2026-12-01T06:00+01:00`, and any
/// full RFC 3339 time (fractional seconds, offsets, a space instead of `T`). A time without
/// `Z` or an offset is refused: the request would otherwise depend on the machine's time zone.
pub fn parse_start(text: &str) -> Result<Timestamp, String> {
    let s = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let normalised = s.replacen(' ', "T", 1);
    if let Some(naive) = normalised
        .strip_suffix('Z')
        .or_else(|| normalised.strip_suffix('z'))
    {
        for format in [
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M:%S%.f",
        ] {
            if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
                return Ok(t.and_utc());
            }
        }
    }
    for format in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(t) = DateTime::parse_from_str(&normalised, format) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if NaiveDateTime::parse_from_str(&normalised, format).is_ok() {
            return Err(format!(
                "{s:?} has no time zone: add Z for UTC (e.g. {s}Z) or an offset such as +01:00"
            ));
        }
    }
    Err(format!(
        "{s:?} is not a time: use UTC like 2026-12-01T06:00Z, or RFC 3339 like \
         2026-12-01T06:00:00+01:00"
    ))
}

/// Check a `--for` duration and return the form sent to the server (`1h30m`, `45m`, `48h`).
///
/// The user may type anything humantime understands (`2h`, `1h 30m`, `90min`, `2hours`);
/// the server is sent the compact `h`/`m`/`s` form documented for `NewRequestBody.duration`,
/// so the two sides never disagree about spelling.
pub fn parse_duration_arg(text: &str) -> Result<String, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}): write it like 30m, 2h or 1h30m"))?;
    let secs = d.as_secs();
    if secs == 0 {
        return Err(format!(
            "{text:?} is too short: a grant lasts at least 1s, e.g. 30m"
        ));
    }
    Ok(compact_duration(secs))
}

/// `5400` → `1h30m`; days are written as hours so the server only needs `h`, `m` and `s`.
pub fn compact_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A TOTP code as typed: digits, optionally grouped with spaces (`123 456`).
pub fn parse_totp(text: &str) -> Result<String, String> {
    let code: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if (6..=8).contains(&code.len()) && code.chars().all(|c| c.is_ascii_digit()) {
        Ok(code)
    } else {
        Err("a TOTP code is the 6 digits your authenticator app shows, e.g. 123456".into())
    }
}

/// `2026-12-01 06:00 UTC`: the same on every machine, whatever its time zone.
pub fn time(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `2026-12-01 06:00:07 UTC`, for evidence events where order within a minute matters.
pub fn time_secs(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Humane duration with the two largest units: `1h 12m`, `2h`, `3d 4h`, `45s`.
pub fn humane_secs(secs: i64) -> String {
    if secs <= 0 {
        return "0s".into();
    }
    let units = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)];
    let mut rest = secs;
    let mut parts = Vec::new();
    for (name, size) in units {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            parts.push(format!("{n}{name}"));
        } else if !parts.is_empty() {
            // A zero in the middle ends the display: `2h` rather than `2h 0m`.
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

/// Obligations in words: `needs 2 approvals from role engineer at the asset's site,
/// step-up, max 2h`.
pub fn obligations_words(o: &Obligations) -> String {
    let mut out = match o.approvals {
        0 => "no approval needed".to_string(),
        1 => "needs 1 approval".to_string(),
        n => format!("needs {n} approvals"),
    };
    if o.approvals > 0 {
        match o.approver_roles.as_slice() {
            [] => {}
            [role] => out.push_str(&format!(" from role {role}")),
            roles => out.push_str(&format!(" from roles {}", and_list(roles))),
        }
        match o.approver_groups.as_slice() {
            [] => {}
            [group] => out.push_str(&format!(" in group {group}")),
            groups => out.push_str(&format!(" in one of groups {}", groups.join(", "))),
        }
        match &o.approver_site {
            None => {}
            Some(ApproverSite::Asset) => out.push_str(" at the asset's site"),
            Some(ApproverSite::Named(site)) => out.push_str(&format!(" at site {site}")),
        }
    }
    if o.step_up_passkey {
        out.push_str(", passkey step-up");
    } else if o.step_up {
        out.push_str(", step-up");
    }
    out.push_str(&format!(", max {}", humane_secs(o.max_duration_secs)));
    if o.review {
        out.push_str(", post-session review");
    }
    if o.attestation {
        out.push_str(", attestation by the subject");
    }
    out
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A table in the house style: UTF-8 borders, columns fitted to the terminal width.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

/// Shorten free text for a table cell; the full text is in `show`.
pub fn truncate(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // Escaped before cutting, so the cut never leaves half an escape's effect behind.
    let one_line = crate::output::escape_controls(&one_line, false).into_owned();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `a, b` or `-` for an empty list.
pub fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

/// An aligned `key  value` block for detail views; multi-line values are indented.
#[derive(Debug, Default)]
pub struct Detail {
    rows: Vec<(String, String)>,
}

impl Detail {
    pub fn new() -> Self {
        Self::default()
    }

    /// One single-line row. The value is often free text from another person (a reason, a
    /// comment): every control character in it, newlines included, is shown escaped, so it
    /// cannot draw a line of its own that looks like one of ours (a fake `scope` row).
    pub fn row(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        let value = crate::output::escape_controls(&value, false).into_owned();
        self.rows.push((key.to_string(), value));
        self
    }

    /// One row whose value is several lines (e.g. a scope description); each line is
    /// escaped as in [`Detail::row`].
    pub fn lines(&mut self, key: &str, lines: &[String]) -> &mut Self {
        let value = if lines.is_empty() {
            "-".to_string()
        } else {
            lines
                .iter()
                .map(|l| crate::output::escape_controls(l, false))
                .collect::<Vec<_>>()
                .join("\n")
        };
        self.rows.push((key.to_string(), value));
        self
    }

    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &self.rows {
            let mut lines = value.lines();
            let first = lines.next().unwrap_or("");
            out.push_str(&format!("{key:<width$}  {first}\n"));
            for more in lines {
                out.push_str(&format!("{:<width$}  {more}\n", ""));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Timestamp {
        match Utc.with_ymd_and_hms(y, mo, d, h, mi, s) {
            chrono::LocalResult::Single(t) => t,
            _ => unreachable!("valid test time"),
        }
    }

    #[test]
    fn start_accepts_short_utc_forms() {
        let want = utc(2026, 12, 1, 6, 0, 0);
        assert_eq!(parse_start("2026-12-01T06:00Z"), Ok(want));
        assert_eq!(parse_start("2026-12-01T06:00:00Z"), Ok(want));
        assert_eq!(parse_start(" 2026-12-01T06:00z "), Ok(want));
        assert_eq!(parse_start("2026-12-01 06:00Z"), Ok(want));
    }

    #[test]
    fn start_accepts_rfc3339_with_offsets_and_fractions() {
        assert_eq!(
            parse_start("2026-12-01T07:00:00+01:00"),
            Ok(utc(2026, 12, 1, 6, 0, 0))
        );
        assert_eq!(
            parse_start("2026-12-01T07:30+01:30"),
            Ok(utc(2026, 12, 1, 6, 0, 0))
        );
        assert_eq!(
            parse_start("2026-12-01T01:00-05:00"),
            Ok(utc(2026, 12, 1, 6, 0, 0))
        );
        let t = parse_start("2026-12-01T06:00:00.250Z");
        assert_eq!(t.map(|t| t.timestamp_millis() % 1000), Ok(250));
    }

    #[test]
    fn start_without_zone_is_refused_with_a_hint() {
        let err = parse_start("2026-12-01T06:00").err().unwrap_or_default();
        assert!(err.contains("no time zone"), "{err}");
        assert!(err.contains("2026-12-01T06:00Z"), "{err}");
    }

    #[test]
    fn start_garbage_is_refused() {
        for bad in [
            "tomorrow",
            "",
            "2026-13-01T06:00Z",
            "2026-12-01T25:00Z",
            "06:00Z",
        ] {
            assert!(parse_start(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn durations_are_validated_and_compacted() {
        assert_eq!(parse_duration_arg("2h").as_deref(), Ok("2h"));
        assert_eq!(parse_duration_arg("1h 30m").as_deref(), Ok("1h30m"));
        assert_eq!(parse_duration_arg("1h30m").as_deref(), Ok("1h30m"));
        assert_eq!(parse_duration_arg("90min").as_deref(), Ok("1h30m"));
        assert_eq!(parse_duration_arg("2days").as_deref(), Ok("48h"));
        assert_eq!(parse_duration_arg("45s").as_deref(), Ok("45s"));
        assert_eq!(parse_duration_arg("1h0m5s").as_deref(), Ok("1h5s"));
    }

    #[test]
    fn bad_durations_say_how_to_write_one() {
        let err = parse_duration_arg("two hours").err().unwrap_or_default();
        assert!(err.contains("30m, 2h or 1h30m"), "{err}");
        assert!(parse_duration_arg("0m").is_err());
        assert!(
            parse_duration_arg("2").is_err(),
            "a bare number has no unit"
        );
        assert!(parse_duration_arg("-2h").is_err());
    }

    #[test]
    fn totp_codes() {
        assert_eq!(parse_totp("123456").as_deref(), Ok("123456"));
        assert_eq!(parse_totp("123 456").as_deref(), Ok("123456"));
        assert!(parse_totp("12345").is_err());
        assert!(parse_totp("12345a").is_err());
    }

    #[test]
    fn times_are_utc_and_zone_free() {
        assert_eq!(time(utc(2026, 12, 1, 6, 5, 9)), "2026-12-01 06:05 UTC");
        assert_eq!(
            time_secs(utc(2026, 12, 1, 6, 5, 9)),
            "2026-12-01 06:05:09 UTC"
        );
    }

    #[test]
    fn humane_durations() {
        assert_eq!(humane_secs(4320), "1h 12m");
        assert_eq!(humane_secs(7200), "2h");
        assert_eq!(humane_secs(7205), "2h");
        assert_eq!(humane_secs(45), "45s");
        assert_eq!(humane_secs(61), "1m 1s");
        assert_eq!(humane_secs(86_400 * 3 + 3600 * 4 + 60), "3d 4h");
        assert_eq!(humane_secs(0), "0s");
        assert_eq!(humane_secs(-5), "0s");
    }

    #[test]
    fn obligations_read_like_a_sentence() {
        let o = Obligations {
            approvals: 2,
            approver_roles: vec!["engineer".into()],
            approver_groups: vec![],
            approver_site: Some(ApproverSite::Asset),
            max_duration_secs: 7200,
            step_up: true,
            step_up_passkey: false,
            review: false,
            attestation: false,
        };
        assert_eq!(
            obligations_words(&o),
            "needs 2 approvals from role engineer at the asset's site, step-up, max 2h"
        );
        let o = Obligations {
            approvals: 0,
            approver_roles: vec!["engineer".into()],
            max_duration_secs: 1800,
            review: true,
            ..Obligations::default()
        };
        assert_eq!(
            obligations_words(&o),
            "no approval needed, max 30m, post-session review"
        );
        let o = Obligations {
            approver_roles: vec!["engineer".into(), "security".into()],
            approver_groups: vec!["ops".into(), "ot-sec".into()],
            approver_site: Some(ApproverSite::Named("north".into())),
            ..Obligations::default()
        };
        assert_eq!(
            obligations_words(&o),
            "needs 1 approval from roles engineer and security in one of groups ops, ot-sec \
             at site north, max 1h"
        );
    }

    #[test]
    fn detail_aligns_keys_and_indents_continuations() {
        let mut d = Detail::new();
        d.row("id", "r-1").lines("scope", &["a".into(), "b".into()]);
        assert_eq!(d.render(), "id     r-1\nscope  a\n       b\n");
    }

    #[test]
    fn detail_rows_show_control_characters_escaped() {
        let mut d = Detail::new();
        d.row("reason", "fix\x1b[2J\rscope  write holding 0-65535\n")
            .lines("reasons", &["ok\u{202e}".into()]);
        assert_eq!(
            d.render(),
            "reason   fix\\x1b[2J\\rscope  write holding 0-65535\\n\nreasons  ok\\u{202e}\n"
        );
        assert_eq!(truncate("a\x1bb", 20), "a\\x1bb");
    }

    #[test]
    fn truncate_keeps_short_text_and_marks_cuts() {
        assert_eq!(truncate("replace\nvalve", 20), "replace valve");
        assert_eq!(truncate("abcdefghij", 5), "abcd…");
    }
}
