//! A verified bundle as a human-readable timeline: one line per event with time, kind, actor
//! and a one-line summary of what the event says.

use crate::bundle::{VerifiedBundle, VerifiedEvent};
use crate::checkpoint::truncate;
use crate::Timestamp;
use jitgate_core::event::rfc3339;
use jitgate_core::payload;
use jitgate_core::{ApprovalVerdict, Event, EventKind};
use serde_json::Value;

/// Longest summary line; details beyond it are in the bundle.
const SUMMARY_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: String,
    pub actor: String,
    pub summary: String,
}

pub(crate) fn entry(e: &VerifiedEvent) -> TimelineEntry {
    TimelineEntry {
        seq: e.seq,
        at: e.event.at,
        kind: e.event.kind.as_str().to_string(),
        actor: e.event.actor.0.clone(),
        summary: summary(&e.event),
    }
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Render a JSON value compactly for a summary: strings bare, everything else as JSON.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `k=v` pairs of an object's scalar fields (nested objects shown as `k={…}`).
fn pairs(v: &Value) -> String {
    let Some(obj) = v.as_object() else {
        return if v.is_null() {
            String::new()
        } else {
            scalar(v)
        };
    };
    obj.iter()
        .map(|(k, v)| match v {
            Value::Object(_) => format!("{k}={{…}}"),
            Value::Array(a) if a.len() > 4 => format!("{k}=[{} items]", a.len()),
            other => format!("{k}={}", scalar(other)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the event says, in one line.
pub fn summary(e: &Event) -> String {
    let d = &e.data;
    let text = match e.kind {
        EventKind::RequestSubmitted => format!(
            "{} requests {} for {} ({} path, reason: {}, reference: {}, scope digest {})",
            s(d, "requester").unwrap_or("?"),
            s(d, "scope").unwrap_or("?"),
            s(d, "subject").unwrap_or("?"),
            s(d, "path").unwrap_or("?"),
            s(d, "reason").unwrap_or("-"),
            s(d, "reference").unwrap_or("-"),
            s(d, "scope_digest").unwrap_or("?"),
        ),
        EventKind::RequestDecided => match e.payload::<payload::RequestDecided>() {
            Some(p) => format!(
                "policy {} (determining: {}; policy set {}); approvals required: {}",
                if p.allowed { "allows" } else { "denies" },
                if p.determining_policies.is_empty() {
                    "none".into()
                } else {
                    p.determining_policies.join(", ")
                },
                p.policy_set_hash,
                p.obligations.approvals,
            ),
            None => format!("decision (unreadable data: {})", pairs(d)),
        },
        EventKind::RequestDenied => match e.payload_as::<payload::RequestVoided>() {
            // A request that no longer stood when approved or activated.
            Some(v) => format!("request denied on re-decision: {}", v.reason),
            None => format!("request denied by {}", e.actor.0),
        },
        EventKind::RequestLapsed => match e.payload::<payload::RequestVoided>() {
            Some(v) => format!("request lapsed: {}", v.reason),
            None => "request lapsed: its window closed before it became active".into(),
        },
        EventKind::ApprovalRecorded => match e.payload::<payload::ApprovalRecorded>() {
            Some(p) => format!(
                "{} {} scope digest {} (approval {}{}){}",
                e.actor.0,
                match p.verdict {
                    ApprovalVerdict::Approve => "approves",
                    ApprovalVerdict::Deny => "denies",
                },
                p.scope_digest,
                e.approval_id.as_deref().unwrap_or("?"),
                if p.step_up { ", with step-up" } else { "" },
                if p.comment.is_empty() {
                    String::new()
                } else {
                    format!(": {}", p.comment)
                }
            ),
            None => format!("{} answers (unreadable data: {})", e.actor.0, pairs(d)),
        },
        EventKind::GrantIssued => match e.payload::<payload::GrantIssued>() {
            Some(p) => format!(
                "grant {} issued to {} valid {} – {}{}",
                e.grant_id.as_deref().unwrap_or("?"),
                p.subject,
                rfc3339(p.not_before),
                rfc3339(p.expires_at),
                if p.emergency { " (break-glass)" } else { "" }
            ),
            None => format!("grant issued (unreadable data: {})", pairs(d)),
        },
        EventKind::GrantEnded => match e.payload::<payload::GrantEnded>() {
            Some(p) => format!(
                "grant ended ({}) at {}",
                scalar(&serde_json::to_value(&p.end_reason).unwrap_or_default()),
                rfc3339(p.ended_at)
            ),
            None => format!("grant ended (unreadable data: {})", pairs(d)),
        },
        EventKind::RecordingChunk => {
            let report = jitgate_core::server_payload::GatewayReport::of(e);
            let chunk = report
                .as_ref()
                .and_then(|r| r.detail_as::<jitgate_core::server_payload::RecordingChunkDetail>());
            match (report, chunk) {
                (Some(r), Some(c)) => format!(
                    "session {} recording chunk {}{} ({} bytes at {}, hash {})",
                    r.session_id.as_deref().unwrap_or("?"),
                    c.index,
                    if c.last { " (last)" } else { "" },
                    c.length,
                    c.offset,
                    c.hash.get(..16).unwrap_or(&c.hash)
                ),
                _ => format!("recording chunk (unreadable data: {})", pairs(d)),
            }
        }
        _ => {
            // Gateway events wrap their details in `detail`; show the session first.
            let mut parts = Vec::new();
            if let Some(sid) = s(d, "session_id") {
                parts.push(format!("session {sid}"));
            }
            let detail = d.get("detail").unwrap_or(d);
            let rest = if std::ptr::eq(detail, d) {
                let mut copy = d.clone();
                if let Some(o) = copy.as_object_mut() {
                    o.remove("session_id");
                    o.remove("gseq");
                }
                pairs(&copy)
            } else {
                pairs(detail)
            };
            if !rest.is_empty() {
                parts.push(rest);
            }
            if let (Some(b), Some(a)) = (&e.state_before, &e.state_after) {
                parts.push(format!("{b} → {a}"));
            }
            parts.join(": ")
        }
    };
    truncate(&text.replace(['\n', '\r'], " "), SUMMARY_MAX)
}

/// Aligned text: a header naming the checkpoint, then one line per event.
pub(crate) fn render_text(b: &VerifiedBundle) -> String {
    let entries = b.timeline();
    let kind_w = entries
        .iter()
        .map(|e| e.kind.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let actor_w = entries
        .iter()
        .map(|e| e.actor.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 32);
    let seq_w = entries.last().map_or(3, |e| e.seq.to_string().len()).max(3);
    let mut out = format!(
        "grant {} (request {}), log {}: {} events, checkpoint at tree size {} signed {} by key {}\n\n",
        b.grant_id,
        b.request_id,
        b.log_id,
        entries.len(),
        b.checkpoint.tree_size,
        b.checkpoint.time,
        b.checkpoint.key_id
    );
    out.push_str(&format!(
        "{:<24}  {:>seq_w$}  {:<kind_w$}  {:<actor_w$}  summary\n",
        "time", "seq", "kind", "actor"
    ));
    for e in &entries {
        out.push_str(&format!(
            "{:<24}  {:>seq_w$}  {:<kind_w$}  {:<actor_w$}  {}\n",
            crate::rfc3339(e.at),
            e.seq,
            e.kind,
            truncate(&e.actor, actor_w),
            e.summary
        ));
    }
    for n in &b.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}
