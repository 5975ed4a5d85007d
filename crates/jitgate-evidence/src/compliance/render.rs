//! The compliance report as one printable HTML page: inline CSS, inline SVG charts (exposure
//! trend, access timeline per asset), no scripts and no external assets. The page is a pure
//! function of the signed report, which it carries in a JSON data block, so a verifier
//! re-renders it and compares bytes.
//!
//! Every string from the report goes through [`esc`]: subjects, assets and grant ids come
//! from requesters and the inventory and must not inject markup.

use super::signed::SignedReport;
use super::{Cited, ComplianceReport, PathCount};
use crate::report::{esc, CSS};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// Marks the data block that carries the signed report inside the page.
pub const DATA_BLOCK_OPEN: &str = "<script type=\"application/json\" id=\"jitgate-signed-report\">";
pub const DATA_BLOCK_CLOSE: &str = "</script>";

const EXTRA_CSS: &str = r#"
svg { display: block; margin: .5rem 0; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #222; }
.figures td.num { width: 9rem; }
.legend span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; vertical-align: middle; }
@media print { svg { break-inside: avoid; } }
"#;

const CHART_W: f64 = 880.0;
const LABEL_W: f64 = 130.0;

fn hours(secs: i64) -> String {
    format!("{:.1}", secs as f64 / 3600.0)
}

fn duration(secs: Option<i64>) -> String {
    match secs {
        None => "—".into(),
        Some(s) if s < 3600 => format!("{} min", s / 60),
        Some(s) => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn cited(c: &Cited) -> String {
    if c.total == 0 {
        return "<span class=\"warn\">no events in the period</span>".into();
    }
    if c.events.is_empty() {
        return format!("{} events", c.total);
    }
    let list: Vec<String> = c.events.iter().map(|s| format!("#{s}")).collect();
    if c.total as usize > c.events.len() {
        format!("{} … ({} events)", list.join(", "), c.total)
    } else {
        list.join(", ")
    }
}

fn counts(list: &[PathCount]) -> String {
    if list.is_empty() {
        return "—".into();
    }
    list.iter()
        .map(|p| format!("{} {}", esc(&p.name), p.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn row(h: &mut String, k: &str, v: &str) {
    let _ = writeln!(h, "<tr><th>{}</th><td class=\"num\">{v}</td></tr>", esc(k));
}

fn trend_chart(h: &mut String, r: &ComplianceReport) {
    let points = &r.exposure_trend;
    if points.is_empty() {
        return;
    }
    let max = points
        .iter()
        .map(|p| p.exposure_secs)
        .max()
        .unwrap_or(0)
        .max(3600);
    let (height, top, bottom) = (180.0, 14.0, 24.0);
    let plot_h = height - top - bottom;
    let step = (CHART_W - LABEL_W) / points.len() as f64;
    let _ = writeln!(
        h,
        "<svg viewBox=\"0 0 {CHART_W} {height}\" role=\"img\" aria-label=\"Exposure per day\">"
    );
    let _ = writeln!(
        h,
        "<text x=\"0\" y=\"{top}\">{} h</text><text x=\"0\" y=\"{}\">0 h</text>",
        hours(max),
        height - bottom
    );
    for (i, p) in points.iter().enumerate() {
        let bar = plot_h * p.exposure_secs as f64 / max as f64;
        let x = LABEL_W + i as f64 * step;
        let _ = writeln!(
            h,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar:.1}\" fill=\"#3b6ea8\"><title>{}: {} h, {} grants issued</title></rect>",
            top + plot_h - bar,
            (step * 0.8).max(1.0),
            esc(&p.day),
            hours(p.exposure_secs),
            p.grants_issued
        );
        let label_every = (points.len() / 8).max(1);
        if i % label_every == 0 {
            let _ = writeln!(
                h,
                "<text x=\"{x:.1}\" y=\"{}\">{}</text>",
                height - 6.0,
                esc(p.day.get(5..).unwrap_or(&p.day))
            );
        }
    }
    h.push_str("</svg>\n");
}

fn timeline_chart(h: &mut String, r: &ComplianceReport) {
    let (Some(from), Some(to)) = (parse(&r.from), parse(&r.to)) else {
        return;
    };
    let span = (to - from).num_seconds().max(1) as f64;
    let lane = 22.0;
    let height = 20.0 + lane * r.timeline.len() as f64;
    let x_of = |t: &str| -> f64 {
        let t = parse(t).unwrap_or(from);
        LABEL_W + (CHART_W - LABEL_W) * ((t - from).num_seconds() as f64 / span).clamp(0.0, 1.0)
    };
    let _ = writeln!(
        h,
        "<svg viewBox=\"0 0 {CHART_W} {height}\" role=\"img\" aria-label=\"Access timeline per asset\">"
    );
    for (i, a) in r.timeline.iter().enumerate() {
        let y = 10.0 + lane * i as f64;
        let _ = writeln!(
            h,
            "<text x=\"0\" y=\"{:.1}\">{}</text><line x1=\"{LABEL_W}\" x2=\"{CHART_W}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            y + 13.0,
            esc(&a.asset),
            y + lane - 2.0,
            y + lane - 2.0
        );
        for g in &a.grants {
            let (x1, x2) = (x_of(&g.from), x_of(&g.to));
            let _ = writeln!(
                h,
                "<rect x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"{}\" opacity=\"0.75\"><title>{} — {} {} → {}</title></rect>",
                y + 3.0,
                (x2 - x1).max(1.5),
                if g.emergency { "#b42318" } else { "#3b6ea8" },
                esc(&g.grant_id),
                esc(&g.subject),
                esc(&g.from),
                esc(&g.to)
            );
        }
    }
    h.push_str("</svg>\n<p class=\"legend muted\"><span style=\"background:#3b6ea8\"></span>grant<span style=\"background:#b42318\"></span>break-glass grant");
    let more: u64 = r.timeline.iter().map(|a| a.more).sum();
    if more > 0 {
        let _ = write!(h, " — {more} further grants not drawn");
    }
    h.push_str("</p>\n");
}

/// The page: the report's figures, charts and framework mapping, and the signed report
/// itself in a data block.
pub fn render_html(signed: &SignedReport) -> String {
    let r = &signed.report;
    let mut h = String::with_capacity(32 * 1024);
    let site = r.site.as_deref().unwrap_or("all sites");
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>jitgate compliance report — {} — {} to {}</title>\n<style>{CSS}{EXTRA_CSS}</style>\n</head>\n<body>\n",
        esc(site),
        esc(&r.from),
        esc(&r.to)
    );
    let _ = write!(
        h,
        "<h1>Compliance report — {}</h1>\n<p>Period <span class=\"mono\">{}</span> to <span class=\"mono\">{}</span> \
         (end exclusive), generated <span class=\"mono\">{}</span>.</p>\n\
         <p class=\"muted\">Computed from the first {} events of log <span class=\"mono\">{}</span>, as committed to by \
         the checkpoint signed with evidence key <span class=\"mono\">{}</span>; the report is signed with evidence key \
         <span class=\"mono\">{}</span>. Verify offline: <span class=\"mono\">jitgate evidence verify-report THIS_FILE --key evidence-keys.pub</span>.</p>\n",
        esc(site),
        esc(&r.from),
        esc(&r.to),
        esc(&r.generated_at),
        r.checkpoint.checkpoint.tree_size,
        esc(&r.log_id),
        esc(&r.checkpoint.checkpoint.key_id),
        esc(&signed.key_id),
    );

    h.push_str("<h2>Summary</h2>\n<table class=\"kv figures\">\n");
    let g = &r.grants;
    row(
        &mut h,
        "Requests submitted",
        &g.requests_submitted.to_string(),
    );
    row(
        &mut h,
        "Requests denied by policy",
        &g.requests_denied.to_string(),
    );
    row(
        &mut h,
        "Grants issued",
        &format!("{} ({})", g.issued, counts(&g.issued_by_path)),
    );
    row(
        &mut h,
        "Grants ended",
        &format!("{} ({})", g.ended, counts(&g.ended_by_reason)),
    );
    row(&mut h, "Grants open at the end", &g.open_at_end.to_string());
    row(
        &mut h,
        "Median grant duration",
        &duration(g.median_duration_secs),
    );
    row(
        &mut h,
        "90th percentile duration",
        &duration(g.p90_duration_secs),
    );
    row(
        &mut h,
        "Exposure (access open)",
        &format!("{} h", hours(g.exposure_secs)),
    );
    let t = &r.teardowns;
    row(
        &mut h,
        "Teardowns verified / partial / failed",
        &format!("{} / {} / {}", t.verified, t.partial, t.failed),
    );
    let b = &r.break_glass;
    row(
        &mut h,
        "Break-glass grants; reviews done / open",
        &format!("{}; {} / {}", b.grants, b.reviews_completed, b.reviews_open),
    );
    let o = &r.operations;
    row(
        &mut h,
        "Sessions; operations allowed / denied",
        &format!(
            "{}; {} / {}",
            o.sessions, o.operations_allowed, o.operations_denied
        ),
    );
    h.push_str("</table>\n");

    h.push_str("<h2>Exposure trend</h2>\n<p class=\"muted\">Hours of access open per day, summed over grants.</p>\n");
    trend_chart(&mut h, r);
    h.push_str("<h2>Access timeline per asset</h2>\n<p class=\"muted\">Each bar is one grant, clipped to the period; the most exposed assets first.</p>\n");
    timeline_chart(&mut h, r);
    h.push_str("<h3>Exposure by asset</h3>\n<table>\n<tr><th>Asset</th><th>Grants</th><th>Exposure (h)</th></tr>\n");
    for a in &r.exposure_by_asset {
        let _ = writeln!(
            h,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&a.asset),
            a.grants,
            hours(a.exposure_secs)
        );
    }
    h.push_str("</table>\n");

    h.push_str("<h2>Teardowns not verified</h2>\n");
    if t.not_verified.is_empty() {
        h.push_str("<p class=\"ok\">Every teardown of the period was verified.</p>\n");
    } else {
        h.push_str("<table>\n<tr><th>Grant</th><th>Verdict</th><th>At</th><th>Event</th></tr>\n");
        for i in &t.not_verified {
            let _ = writeln!(
                h,
                "<tr><td class=\"mono\">{}</td><td class=\"warn\">{}</td><td class=\"mono\">{}</td><td class=\"num\">#{}</td></tr>",
                esc(&i.grant_id),
                i.verdict.as_str(),
                esc(&i.at),
                i.event
            );
        }
        h.push_str("</table>\n");
    }

    extra_sections(&mut h, r);

    h.push_str("<h2>Framework mapping</h2>\n<table>\n<tr><th>Framework</th><th>Control</th><th>Section</th><th>How</th><th>Evidence</th></tr>\n");
    for m in &r.mappings {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><strong>{}</strong><br><span class=\"muted\">{}</span></td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(m.framework.name()),
            esc(&m.control),
            esc(&m.title),
            esc(m.section.title()),
            esc(&m.how),
            cited(&m.cited)
        );
    }
    h.push_str("</table>\n");

    // The signed report itself. `<` is written as \u003c so no string can close the block.
    h.push_str(DATA_BLOCK_OPEN);
    h.push_str(&signed.to_json().replace('<', "\\u003c"));
    h.push_str(DATA_BLOCK_CLOSE);
    h.push_str("\n</body>\n</html>\n");
    h
}

fn extra_sections(h: &mut String, r: &ComplianceReport) {
    if let Some(e) = &r.exceptions {
        h.push_str("<h2>Standing exceptions</h2>\n<table class=\"kv figures\">\n");
        row(h, "Active at the end", &e.active.to_string());
        row(
            h,
            "Re-validated in the period",
            &e.revalidated_in_period.to_string(),
        );
        row(h, "Ended in the period", &e.ended_in_period.to_string());
        row(
            h,
            "Ended or overdue without re-validation",
            &e.overdue_or_ended_unrevalidated.to_string(),
        );
        h.push_str("</table>\n");
    }
    if let Some(f) = &r.findings {
        h.push_str("<h2>Findings</h2>\n<table class=\"kv figures\">\n");
        row(h, "Findings", &f.total.to_string());
        row(h, "By kind", &counts(&f.by_kind));
        h.push_str("</table>\n");
    }
    if let Some(a) = &r.attestations {
        h.push_str("<h2>Post-session attestations</h2>\n<table class=\"kv figures\">\n");
        row(h, "Recorded", &a.recorded.to_string());
        row(h, "Required but missing", &a.missing.to_string());
        h.push_str("</table>\n");
    }
}
