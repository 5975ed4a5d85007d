//! Post-session reviews and outgoing notifications: `review` (complete one), `reviews`
//! (list), `notifications` (the webhook outbox, for security staff and admins).

use super::http::decode;
use super::text::{self, Detail};
use super::{usage, Ctx};
use crate::output::{out, outln};
use clap::{ArgGroup, Args, ValueEnum};
use jitgate_server::api::reviews::{NotificationView, ReviewBody};
use jitgate_server::reviews::{ReviewOutcome, ReviewReason, ReviewView};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutcomeArg {
    /// Nothing to follow up.
    Ok,
    /// Something needs follow-up; say what in --note.
    Finding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReasonArg {
    /// The break-glass review.
    BreakGlass,
    /// The legacy-asset (partial teardown) review.
    LegacyAsset,
    /// The review the grant's policy asks for (e.g. vendor sessions).
    Policy,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Grant id.
    pub grant: String,

    /// What you concluded.
    #[arg(long, value_enum)]
    pub outcome: OutcomeArg,

    /// What you checked, or what was found and who follows it up (required for a finding).
    #[arg(long, default_value = "")]
    pub note: String,

    /// Which review of the grant, when it has several (default: every open one).
    #[arg(long, value_enum)]
    pub reason: Option<ReasonArg>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").args(["open", "overdue", "done"])))]
pub struct ReviewsArgs {
    /// Only reviews not completed yet (overdue ones included).
    #[arg(long)]
    pub open: bool,

    /// Only open reviews past their due time.
    #[arg(long)]
    pub overdue: bool,

    /// Only completed reviews.
    #[arg(long)]
    pub done: bool,

    /// Only the reviews of this grant, shown in full.
    #[arg(long, value_name = "ID")]
    pub grant: Option<String>,
    #[command(flatten)]
    pub page: super::PageArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").args(["pending", "delivered"])))]
pub struct NotificationsArgs {
    /// Only notifications not delivered yet.
    #[arg(long)]
    pub pending: bool,

    /// Only delivered notifications.
    #[arg(long)]
    pub delivered: bool,

    /// Only those for this webhook (its name in the server configuration).
    #[arg(long, value_name = "NAME")]
    pub webhook: Option<String>,

    #[command(flatten)]
    pub page: super::PageArgs,
}

pub async fn review(ctx: &Ctx, args: ReviewArgs) -> anyhow::Result<()> {
    let outcome = match args.outcome {
        OutcomeArg::Ok => ReviewOutcome::Ok,
        OutcomeArg::Finding => ReviewOutcome::Finding,
    };
    if outcome == ReviewOutcome::Finding && args.note.trim().is_empty() {
        return Err(usage(
            "--outcome finding needs --note saying what was found and who follows it up",
        ));
    }
    let body = ReviewBody {
        outcome,
        note: args.note,
        reason: args.reason.map(|r| match r {
            ReasonArg::BreakGlass => ReviewReason::BreakGlass,
            ReasonArg::LegacyAsset => ReviewReason::LegacyAsset,
            ReasonArg::Policy => ReviewReason::Policy,
        }),
    };
    let raw = ctx
        .http
        .post(&["grants", &args.grant, "review"], &body)
        .await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let done: Vec<ReviewView> = decode(raw)?;
    for r in &done {
        outln!(
            "completed the {} review of grant {}: {}",
            reason_words(r.reason),
            r.grant_id,
            r.outcome.map_or("?", ReviewOutcome::as_str)
        );
    }
    Ok(())
}

pub async fn list(ctx: &Ctx, args: ReviewsArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    let state = if args.open {
        Some("open")
    } else if args.overdue {
        Some("overdue")
    } else if args.done {
        Some("done")
    } else {
        None
    };
    if let Some(s) = state {
        query.push(("state", s.to_string()));
    }
    if let Some(g) = &args.grant {
        query.push(("grant", g.clone()));
    }
    let raw = ctx.list(&["reviews"], &query, &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<ReviewView> = decode(raw)?;
    if views.is_empty() {
        outln!("no reviews match");
    } else if args.grant.is_some() {
        // One grant's reviews: in full, notes and all.
        let blocks: Vec<String> = views.iter().map(render_review).collect();
        out!("{}", blocks.join("\n"));
    } else {
        outln!("{}", reviews_table(&views));
    }
    Ok(())
}

pub async fn notifications(ctx: &Ctx, args: NotificationsArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if args.pending {
        query.push(("state", "pending".to_string()));
    } else if args.delivered {
        query.push(("state", "delivered".to_string()));
    }
    if let Some(w) = &args.webhook {
        query.push(("webhook", w.clone()));
    }
    let raw = ctx.list(&["notifications"], &query, &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<NotificationView> = decode(raw)?;
    if views.is_empty() {
        outln!("no notifications match");
    } else {
        outln!("{}", notifications_table(&views));
    }
    Ok(())
}

fn reason_words(r: ReviewReason) -> &'static str {
    match r {
        ReviewReason::BreakGlass => "break-glass",
        ReviewReason::LegacyAsset => "legacy-asset",
        ReviewReason::Policy => "policy",
    }
}

pub fn reviews_table(views: &[ReviewView]) -> comfy_table::Table {
    let mut t = text::table(&[
        "grant", "subject", "reason", "state", "due", "reviewer", "outcome", "note",
    ]);
    for r in views {
        t.add_row(vec![
            r.grant_id.clone(),
            r.subject.clone(),
            reason_words(r.reason).to_string(),
            r.state.clone(),
            text::time(r.due_at),
            r.reviewer.clone().unwrap_or_else(|| "-".into()),
            r.outcome
                .map_or_else(|| "-".to_string(), |o| o.as_str().to_string()),
            r.note
                .as_deref()
                .filter(|n| !n.is_empty())
                .map_or_else(|| "-".to_string(), |n| text::truncate(n, 40)),
        ]);
    }
    t
}

pub fn notifications_table(views: &[NotificationView]) -> comfy_table::Table {
    let mut t = text::table(&[
        "delivery",
        "webhook",
        "kind",
        "state",
        "attempts",
        "created",
        "next / delivered",
        "last error",
    ]);
    for n in views {
        let when = match (n.delivered_at, n.next_attempt_at) {
            (Some(d), _) => text::time_secs(d),
            (None, Some(next)) => format!("next {}", text::time_secs(next)),
            (None, None) => "-".into(),
        };
        t.add_row(vec![
            n.id.clone(),
            n.webhook.clone(),
            n.kind.clone(),
            n.state.clone(),
            n.attempts.to_string(),
            text::time_secs(n.created_at),
            when,
            n.last_error
                .as_deref()
                .map_or_else(|| "-".to_string(), |e| text::truncate(e, 50)),
        ]);
    }
    t
}

/// One review in full.
pub fn render_review(r: &ReviewView) -> String {
    let mut d = Detail::new();
    d.row("grant", r.grant_id.clone())
        .row("request", r.request_id.clone())
        .row("subject", r.subject.clone())
        .row("reason", reason_words(r.reason))
        .row("state", r.state.clone())
        .row("opened at", text::time(r.opened_at))
        .row("due at", text::time(r.due_at));
    if let Some(obj) = r.detail.as_object().filter(|o| !o.is_empty()) {
        let lines: Vec<String> = obj
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => format!("{k}: {s}"),
                None => format!("{k}: {v}"),
            })
            .collect();
        d.lines("opened because", &lines);
    }
    if let Some(who) = &r.reviewer {
        d.row("reviewer", who.clone());
    }
    if let Some(o) = r.outcome {
        d.row("outcome", o.as_str());
    }
    if let Some(n) = r.note.as_deref().filter(|n| !n.is_empty()) {
        d.row("note", n);
    }
    if let Some(at) = r.completed_at {
        d.row("completed at", text::time(at));
    }
    d.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testdata;

    fn review_view() -> ReviewView {
        ReviewView {
            grant_id: "grant-1".into(),
            request_id: "req-1".into(),
            subject: "oscar".into(),
            reason: ReviewReason::BreakGlass,
            detail: serde_json::json!({}),
            opened_at: testdata::at(6, 0),
            due_at: testdata::at(8, 0),
            state: "done".into(),
            reviewer: Some("sam".into()),
            outcome: Some(ReviewOutcome::Finding),
            note: Some("valve forced without a work order; follow-up CH-9".into()),
            completed_at: Some(testdata::at(9, 30)),
        }
    }

    #[test]
    fn reviews_render_as_table_and_detail() {
        let v = review_view();
        let table = reviews_table(std::slice::from_ref(&v)).to_string();
        for needle in ["grant-1", "oscar", "break-glass", "done", "sam", "finding"] {
            assert!(table.contains(needle), "missing {needle:?} in\n{table}");
        }
        let detail = render_review(&v);
        assert!(detail.contains("reviewer      sam"), "{detail}");
        assert!(
            detail.contains("completed at  2026-12-01 09:30 UTC"),
            "{detail}"
        );
    }

    #[test]
    fn notifications_table_shows_next_attempt_and_error() {
        let v = NotificationView {
            id: "ntf-1".into(),
            webhook: "soc".into(),
            kind: "grant.active".into(),
            state: "pending".into(),
            attempts: 2,
            created_at: testdata::at(6, 0),
            next_attempt_at: Some(testdata::at(6, 1)),
            delivered_at: None,
            last_error: Some("HTTP 500 Internal Server Error: down".into()),
            title: "Access active".into(),
            payload: serde_json::json!({}),
        };
        let out = notifications_table(&[v]).to_string();
        assert!(out.contains("next 2026-12-01 06:01:00"), "{out}");
        assert!(out.contains("HTTP 500"), "{out}");
    }
}
