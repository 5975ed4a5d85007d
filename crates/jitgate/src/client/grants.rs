//! Grants: `grants` (list), `grant` (show), `revoke`, `complete`.

use super::http::decode;
use super::text::{self, humane_secs, Detail};
use super::{usage, Ctx};
use crate::output::{out, outln};
use clap::Args;
use jitgate_core::{EndReason, Grant, GrantState};
use jitgate_server::api::types::{GrantView, ReasonBody};

fn parse_state(s: &str) -> Result<String, String> {
    if s == "failed" || GrantState::parse(s).is_some() {
        Ok(s.to_string())
    } else {
        Err("use one of active, ending, closed, failed".into())
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only grants in this state: active, ending (teardown under way or failed), closed, or
    /// failed (teardown verification failed; retried until it succeeds).
    #[arg(long, value_parser = parse_state)]
    pub state: Option<String>,

    /// Only grants you are the subject of.
    #[arg(long)]
    pub mine: bool,
    #[command(flatten)]
    pub page: super::PageArgs,
}

pub async fn list(ctx: &Ctx, args: ListArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(state) = args.state {
        query.push(("state", state));
    }
    if args.mine {
        query.push(("mine", "true".to_string()));
    }
    let raw = ctx.list(&["grants"], &query, &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<GrantView> = decode(raw)?;
    if views.is_empty() {
        outln!("no grants match");
    } else {
        outln!("{}", grants_table(&views));
    }
    Ok(())
}

pub async fn show(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let raw = ctx.http.get(&["grants", id], &[]).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let view: GrantView = decode(raw)?;
    out!("{}", render_grant(&view));
    Ok(())
}

pub async fn revoke(ctx: &Ctx, id: &str, reason: String) -> anyhow::Result<()> {
    if reason.trim().is_empty() {
        return Err(usage("--reason is empty: say why the grant is revoked"));
    }
    let raw = ctx
        .http
        .post(&["grants", id, "revoke"], &ReasonBody { reason })
        .await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let view: GrantView = decode(raw)?;
    outln!(
        "revoked grant {}: now {}",
        view.grant.id,
        teardown_words(view.grant.state)
    );
    Ok(())
}

pub async fn complete(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let raw = ctx.http.post_empty(&["grants", id, "complete"]).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let view: GrantView = decode(raw)?;
    outln!(
        "completed grant {}: now {}",
        view.grant.id,
        teardown_words(view.grant.state)
    );
    Ok(())
}

fn teardown_words(state: GrantState) -> &'static str {
    match state {
        GrantState::Active => "still active",
        GrantState::Ending => "ending (sessions closing, credential refused; teardown under way)",
        GrantState::Closed => "closed",
    }
}

/// Why a grant ended, in words.
pub fn end_reason_words(reason: &EndReason) -> String {
    match reason {
        EndReason::Expired => "expired".into(),
        EndReason::Revoked { by, reason } => format!("revoked by {by}: {reason}"),
        EndReason::Completed { by } => format!("completed by {by}"),
        EndReason::ContextChanged { what } => format!("context changed: {what}"),
        EndReason::RevalidationOverdue => {
            "the standing exception was not re-validated in time".into()
        }
    }
}

/// `emergency, review` flags of a grant, or `-`.
fn flags(g: &Grant) -> String {
    let mut f = Vec::new();
    if g.emergency {
        f.push("emergency");
    }
    if g.review_required {
        f.push("review");
    }
    if f.is_empty() {
        "-".into()
    } else {
        f.join(", ")
    }
}

fn remaining_cell(g: &Grant, remaining_secs: i64) -> String {
    if g.state == GrantState::Active && remaining_secs > 0 {
        humane_secs(remaining_secs)
    } else {
        "-".into()
    }
}

/// The rows describing a grant, shared by `grant` and the grant part of `show`.
pub fn grant_rows(g: &Grant, remaining_secs: i64) -> Vec<(String, String)> {
    let mut rows = vec![
        ("grant".to_string(), g.id.clone()),
        ("request".into(), g.request_id.clone()),
        ("subject".into(), g.subject.clone()),
        ("state".into(), g.state.as_str().to_string()),
        ("not before".into(), text::time(g.not_before)),
        ("expires at".into(), text::time(g.expires_at)),
        ("remaining".into(), remaining_cell(g, remaining_secs)),
        ("flags".into(), flags(g)),
    ];
    if let Some(at) = g.ended_at {
        rows.push(("ended at".into(), text::time(at)));
    }
    if let Some(reason) = &g.end_reason {
        rows.push(("ended because".into(), end_reason_words(reason)));
    }
    rows.push(("scope digest".into(), g.scope_digest.clone()));
    rows
}

pub fn render_grant(v: &GrantView) -> String {
    let mut d = Detail::new();
    for (k, val) in grant_rows(&v.grant, v.remaining_secs) {
        d.row(&k, val);
    }
    d.lines("scope", &v.description)
        .row("requester", v.requester.clone())
        .row("reason", v.reason.clone());
    if !v.reference.is_empty() {
        d.row("reference", v.reference.clone());
    }
    d.render()
}

pub fn grants_table(views: &[GrantView]) -> comfy_table::Table {
    let mut t = text::table(&[
        "id",
        "subject",
        "assets",
        "state",
        "not before",
        "expires at",
        "remaining",
        "flags",
    ]);
    for v in views {
        let g = &v.grant;
        t.add_row(vec![
            g.id.clone(),
            g.subject.clone(),
            g.scope.assets().join(", "),
            g.state.as_str().to_string(),
            text::time(g.not_before),
            text::time(g.expires_at),
            remaining_cell(g, v.remaining_secs),
            flags(g),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testdata;

    #[test]
    fn grant_view_renders_remaining_and_flags() {
        let v = testdata::grant_view();
        let out = render_grant(&v);
        for needle in [
            "grant         gr-1",
            "expires at    2026-12-01 08:00 UTC",
            "remaining     1h 12m",
            "flags         review",
            "scope         Modbus read holding 0–99 on plc-7 (unit 1)",
            "reference     WO-1234",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
    }

    #[test]
    fn ended_grants_say_why_and_have_no_time_left() {
        let mut v = testdata::grant_view();
        v.grant.state = GrantState::Closed;
        v.grant.ended_at = Some(testdata::at(7, 0));
        v.grant.end_reason = Some(EndReason::Revoked {
            by: "carol".into(),
            reason: "work finished".into(),
        });
        v.remaining_secs = 0;
        let out = render_grant(&v);
        assert!(out.contains("remaining      -"), "{out}");
        assert!(out.contains("revoked by carol: work finished"), "{out}");
    }

    #[test]
    fn grants_table_columns() {
        let mut emergency = testdata::grant_view();
        emergency.grant.id = "gr-2".into();
        emergency.grant.emergency = true;
        let out = grants_table(&[testdata::grant_view(), emergency]).to_string();
        assert!(out.contains("remaining"), "{out}");
        assert!(out.contains("1h 12m"), "{out}");
        assert!(out.contains("emergency, review"), "{out}");
        assert!(out.contains("plc-7"), "{out}");
        assert!(out.contains("2026-12-01 06:00 UTC"), "{out}");
    }
}
