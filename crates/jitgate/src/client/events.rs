//! `events`: the evidence log, filtered by request or grant, paged by sequence number.

use super::http::decode;
use super::text;
use super::Ctx;
use crate::output::outln;
use clap::Args;
use jitgate_server::api::types::EventView;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of this request.
    #[arg(long, value_name = "ID")]
    pub request: Option<String>,

    /// Only events of this grant.
    #[arg(long, value_name = "ID")]
    pub grant: Option<String>,

    /// Only events after this sequence number (to follow the log from a known point).
    #[arg(long, value_name = "SEQ")]
    pub after: Option<i64>,
    #[command(flatten)]
    pub page: super::PageArgs,
}

impl EventsArgs {
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(r) = &self.request {
            q.push(("request", r.clone()));
        }
        if let Some(g) = &self.grant {
            q.push(("grant", g.clone()));
        }
        if let Some(a) = self.after {
            q.push(("after", a.to_string()));
        }
        q
    }
}

pub async fn list(ctx: &Ctx, args: EventsArgs) -> anyhow::Result<()> {
    let raw = ctx.list(&["events"], &args.query(), &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let events: Vec<EventView> = decode(raw)?;
    if events.is_empty() {
        outln!("no events match");
    } else {
        outln!("{}", events_table(&events));
    }
    Ok(())
}

/// `pending→approved`, `→pending` for a first state, empty when the event changes none.
fn transition(before: Option<&str>, after: Option<&str>) -> String {
    match (before, after) {
        (None, None) => String::new(),
        (b, a) => format!("{}→{}", b.unwrap_or(""), a.unwrap_or("")),
    }
}

pub fn events_table(events: &[EventView]) -> comfy_table::Table {
    let mut t = text::table(&[
        "seq",
        "at",
        "kind",
        "actor",
        "request",
        "grant",
        "before→after",
    ]);
    for e in events {
        let ev = &e.event;
        t.add_row(vec![
            e.seq.to_string(),
            text::time_secs(ev.at),
            ev.kind.as_str().to_string(),
            ev.actor.0.clone(),
            ev.request_id.clone().unwrap_or_else(|| "-".into()),
            ev.grant_id.clone().unwrap_or_else(|| "-".into()),
            transition(ev.state_before.as_deref(), ev.state_after.as_deref()),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testdata;

    #[test]
    fn events_table_shows_transition() {
        let out = events_table(&[testdata::event_view()]).to_string();
        for needle in [
            "request.approved",
            "bob",
            "req-1",
            "pending→approved",
            "2026-12-01 05:30:00 UTC",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
    }

    #[test]
    fn transitions() {
        assert_eq!(transition(None, Some("pending")), "→pending");
        assert_eq!(transition(Some("active"), Some("ending")), "active→ending");
        assert_eq!(transition(None, None), "");
    }

    #[test]
    fn query_only_has_given_filters() {
        let a = EventsArgs {
            request: Some("req-1".into()),
            grant: None,
            after: Some(5),
            page: Default::default(),
        };
        assert_eq!(
            a.query(),
            vec![("request", "req-1".to_string()), ("after", "5".to_string())]
        );
    }
}
