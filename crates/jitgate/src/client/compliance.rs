//! `evidence compliance-report` (server) and `evidence verify-report` (offline): the signed
//! compliance report of a period and a site, and its check by an auditor with nothing but
//! the file and the evidence public key file.

use super::http::CliError;
use super::Ctx;
use crate::output::outln;
use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use jitgate_core::Timestamp;
use jitgate_evidence::compliance::signed::is_html;
use jitgate_evidence::compliance::{verify_report, verify_report_html, SignedReport};
use jitgate_evidence::EvidencePublicKey;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ComplianceArgs {
    /// Period start, inclusive: a UTC date (`2026-11-01`) or time (`2026-11-01T06:00Z`).
    #[arg(
        long,
        value_name = "DATE|TIME",
        conflicts_with = "month",
        requires = "to"
    )]
    pub from: Option<String>,
    /// Period end, exclusive (same forms); the period must be over.
    #[arg(long, value_name = "DATE|TIME", requires = "from")]
    pub to: Option<String>,
    /// A calendar month in UTC, e.g. `2026-11`: from its first day to the next month's.
    #[arg(long, value_name = "YYYY-MM")]
    pub month: Option<String>,
    /// Only grants naming an asset of this site (inventory site id).
    #[arg(long)]
    pub site: Option<String>,
    /// Write the printable page (HTML, with charts) instead of the JSON report. Both are
    /// signed and verify offline with `evidence verify-report`.
    #[arg(long)]
    pub html: bool,
    /// Where to write the report.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// A date (UTC midnight) or a time, as typed.
fn parse_bound(flag: &str, text: &str) -> Result<Timestamp, CliError> {
    if let Ok(d) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    super::text::parse_start(text).map_err(|e| CliError::Usage(format!("--{flag}: {e}")))
}

/// The period `--month`, or `--from`/`--to`, names.
pub fn period(args: &ComplianceArgs) -> Result<(Timestamp, Timestamp), CliError> {
    if let Some(m) = &args.month {
        let first =
            NaiveDate::parse_from_str(&format!("{}-01", m.trim()), "%Y-%m-%d").map_err(|_| {
                CliError::Usage(format!(
                    "--month {m:?}: write the month as YYYY-MM, e.g. 2026-11"
                ))
            })?;
        let next = if first.month() == 12 {
            NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
        }
        .ok_or_else(|| CliError::Usage(format!("--month {m:?} is out of range")))?;
        let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        return Ok((midnight(first), midnight(next)));
    }
    match (&args.from, &args.to) {
        (Some(f), Some(t)) => Ok((parse_bound("from", f)?, parse_bound("to", t)?)),
        _ => Err(CliError::Usage(
            "name the period: --month 2026-11, or --from 2026-11-01 --to 2026-12-01".into(),
        )),
    }
}

fn summary(s: &SignedReport) -> String {
    let r = &s.report;
    format!(
        "{} from {} to {}: {} grants issued ({} break-glass), {:.1} h of access open, teardowns \
         {} verified / {} partial / {} failed, {} operations denied; computed from {} events \
         under a checkpoint signed by key {}",
        r.site
            .as_deref()
            .map_or("all sites".to_string(), |s| format!("site {s}")),
        r.from,
        r.to,
        r.grants.issued,
        r.break_glass.grants,
        r.grants.exposure_secs as f64 / 3600.0,
        r.teardowns.verified,
        r.teardowns.partial,
        r.teardowns.failed,
        r.operations.operations_denied,
        r.checkpoint.checkpoint.tree_size,
        s.key_id
    )
}

/// Verify a report file or page with the given keys.
fn check(
    text: &str,
    keys: &[EvidencePublicKey],
) -> Result<SignedReport, jitgate_evidence::compliance::ReportError> {
    if is_html(text) {
        verify_report_html(text, keys)
    } else {
        verify_report(text, keys)
    }
}

/// `evidence compliance-report`: fetch, check against the server's key file, write.
pub async fn fetch(ctx: &Ctx, args: ComplianceArgs) -> anyhow::Result<()> {
    let (from, to) = period(&args)?;
    let mut query = vec![
        ("from", jitgate_core::event::rfc3339(from)),
        ("to", jitgate_core::event::rfc3339(to)),
        (
            "format",
            if args.html { "html" } else { "json" }.to_string(),
        ),
    ];
    if let Some(site) = &args.site {
        query.push(("site", site.clone()));
    }
    let text = ctx
        .http
        .get_text(&["reports", "compliance"], &query)
        .await?;
    let keys: jitgate_server::api::evidence::EvidenceKeysView =
        super::http::decode(ctx.http.get(&["evidence", "keys"], &[]).await?)?;
    let keys = EvidencePublicKey::parse_file(&keys.key_file)
        .map_err(|e| CliError::BadResponse(format!("the server's evidence key file: {e}")))?;
    let signed = check(&text, &keys).map_err(|e| {
        CliError::BadResponse(format!("the report the server sent does not verify: {e}"))
    })?;
    std::fs::write(&args.output, text.as_bytes())
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    if ctx.json {
        outln!(
            "{}",
            json!({"file": args.output.display().to_string(), "site": signed.report.site,
                   "from": signed.report.from, "to": signed.report.to,
                   "tree_size": signed.report.checkpoint.checkpoint.tree_size, "key_id": signed.key_id})
        );
    } else {
        outln!(
            "wrote {}: {}\nverify offline: jitgate evidence verify-report {} --key <evidence public key file>",
            args.output.display(),
            summary(&signed),
            args.output.display()
        );
    }
    Ok(())
}

/// `evidence verify-report`: offline.
pub fn verify_file(file: &Path, key: &Path, json: bool) -> anyhow::Result<()> {
    let key_text = std::fs::read_to_string(key)
        .map_err(|e| CliError::Usage(format!("cannot read key file {}: {e}", key.display())))?;
    let keys = EvidencePublicKey::parse_file(&key_text)
        .map_err(|e| CliError::Usage(format!("key file {}: {e}", key.display())))?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    match check(&text, &keys) {
        Ok(signed) => {
            if json {
                crate::output::json(&json!({"ok": true, "site": signed.report.site,
                    "from": signed.report.from, "to": signed.report.to,
                    "tree_size": signed.report.checkpoint.checkpoint.tree_size,
                    "key_id": signed.key_id, "report": signed.report}));
            } else {
                outln!("compliance report verified: {}", summary(&signed));
            }
            Ok(())
        }
        Err(e) => {
            if json {
                crate::output::json(&json!({"ok": false, "error": e.to_string()}));
            } else {
                eprintln!("compliance report {} does NOT verify: {e}", file.display());
            }
            Err(CliError::Reported.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from: Option<&str>, to: Option<&str>, month: Option<&str>) -> ComplianceArgs {
        ComplianceArgs {
            from: from.map(String::from),
            to: to.map(String::from),
            month: month.map(String::from),
            site: None,
            html: false,
            output: PathBuf::from("r.json"),
        }
    }

    #[test]
    fn periods_from_months_dates_and_times() {
        let (f, t) = period(&args(None, None, Some("2026-12"))).unwrap();
        assert_eq!(jitgate_core::event::rfc3339(f), "2026-12-01T00:00:00.000Z");
        assert_eq!(jitgate_core::event::rfc3339(t), "2027-01-01T00:00:00.000Z");
        let (f, t) = period(&args(Some("2026-11-01"), Some("2026-11-02T06:00Z"), None)).unwrap();
        assert_eq!(jitgate_core::event::rfc3339(f), "2026-11-01T00:00:00.000Z");
        assert_eq!(jitgate_core::event::rfc3339(t), "2026-11-02T06:00:00.000Z");
        assert!(period(&args(None, None, Some("November")))
            .unwrap_err()
            .to_string()
            .contains("YYYY-MM"));
        assert!(
            period(&args(Some("2026-11-01T06:00"), Some("2026-11-02"), None))
                .unwrap_err()
                .to_string()
                .contains("time zone")
        );
        assert!(period(&args(None, None, None))
            .unwrap_err()
            .to_string()
            .contains("--month"));
    }
}
