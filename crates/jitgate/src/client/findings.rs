//! Findings and the standing-privilege inventory of a period: `findings` (shared accounts,
//! rubber-stamping, JIT that became standing) and `standing` (everything that grants access
//! outside a just-in-time grant, with its exposure). Security staff and auditors only.

use super::http::decode;
use super::text;
use super::{Ctx, PageArgs};
use crate::output::outln;
use clap::Args;
use jitgate_core::findings::{Finding, StandingItem};
use jitgate_core::Timestamp;

/// `--from` / `--to`: a day (`2026-11-01`, midnight UTC) or a time as `request --at` takes it.
fn parse_when(text: &str) -> Result<Timestamp, String> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        if let Some(t) = day.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    text::parse_start(text)
        .map_err(|e| format!("{e}; a day such as 2026-11-01 (midnight UTC) is accepted too"))
}

#[derive(Debug, Args)]
pub struct PeriodArgs {
    /// Start of the period: a day (`2026-11-01`, midnight UTC) or a time
    /// (`2026-11-01T06:00Z`). Default: 30 days before --to.
    #[arg(long, value_parser = parse_when)]
    pub from: Option<Timestamp>,
    /// End of the period, excluded. Default: now.
    #[arg(long, value_parser = parse_when)]
    pub to: Option<Timestamp>,
    #[command(flatten)]
    pub page: PageArgs,
}

impl PeriodArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(f) = self.from {
            q.push(("from", jitgate_core::event::rfc3339(f)));
        }
        if let Some(t) = self.to {
            q.push(("to", jitgate_core::event::rfc3339(t)));
        }
        q
    }
}

fn evidence_words(seqs: &[i64], more: u64) -> String {
    let mut s = seqs
        .iter()
        .map(|n| format!("#{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    if more > 0 {
        s.push_str(&format!(" +{more}"));
    }
    s
}

pub async fn findings(ctx: &Ctx, args: PeriodArgs) -> anyhow::Result<()> {
    let raw = ctx.list(&["findings"], &args.query(), &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<Finding> = decode(raw)?;
    if views.is_empty() {
        outln!("no findings in the period");
        return Ok(());
    }
    let mut t = text::table(&[
        "severity",
        "kind",
        "subjects",
        "asset",
        "seen",
        "summary",
        "evidence (jitgate events --after N-1 --limit 1)",
    ]);
    for f in &views {
        t.add_row(vec![
            format!("{:?}", f.severity).to_lowercase(),
            f.kind.as_str().to_string(),
            f.subjects.join(", "),
            f.asset.clone().unwrap_or_else(|| "-".into()),
            format!("{} – {}", text::time(f.from), text::time(f.to)),
            text::truncate(&f.summary, 80),
            evidence_words(&f.evidence.seqs, f.evidence.more),
        ]);
    }
    outln!("{t}");
    Ok(())
}

pub async fn standing(ctx: &Ctx, args: PeriodArgs) -> anyhow::Result<()> {
    let raw = ctx.list(&["standing"], &args.query(), &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<StandingItem> = decode(raw)?;
    if views.is_empty() {
        outln!("nothing stands outside just-in-time grants in the period");
        return Ok(());
    }
    let mut t = text::table(&[
        "kind",
        "subject",
        "asset",
        "hours",
        "since",
        "last used",
        "detail",
        "evidence",
    ]);
    for s in &views {
        t.add_row(vec![
            s.kind.as_str().to_string(),
            s.subject.clone().unwrap_or_else(|| "-".into()),
            s.asset.clone().unwrap_or_else(|| "-".into()),
            format!("{:.1}", s.exposure_hours),
            s.since.map_or_else(|| "-".into(), text::time),
            s.last_used.map_or_else(|| "never".into(), text::time),
            text::truncate(&s.detail, 80),
            evidence_words(&s.evidence.seqs, s.evidence.more),
        ]);
    }
    outln!("{t}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_or_a_time_is_accepted_and_nonsense_teaches() {
        assert_eq!(
            parse_when("2026-11-01").map(jitgate_core::event::rfc3339),
            Ok("2026-11-01T00:00:00.000Z".to_string())
        );
        assert_eq!(
            parse_when("2026-11-01T06:30Z").map(jitgate_core::event::rfc3339),
            Ok("2026-11-01T06:30:00.000Z".to_string())
        );
        let e = parse_when("last week").err().unwrap_or_default();
        assert!(e.contains("2026-11-01"), "{e}");
    }
}
