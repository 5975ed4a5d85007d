//! The audit report: one self-contained HTML page (inline CSS, no scripts, no external
//! assets) rendered from a *verified* bundle, readable on screen and on paper.
//!
//! Every piece of text from the bundle goes through [`esc`]: event data is written by
//! requesters, approvers and gateways, and must not be able to inject markup into the page an
//! auditor opens.

use crate::bundle::{determining_policies, VerifiedBundle, VerifiedEvent};
use crate::timeline::summary;
use jitgate_core::server_payload::{GatewayReport, OperationOutcome};
use jitgate_core::EventKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// HTML-escape text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) const CSS: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111;
  background: #fff; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.15rem; border-bottom: 2px solid #333; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #999; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #e8e8e8; }
td.num { text-align: right; white-space: nowrap; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #f4f4f4; border: 1px solid #bbb; padding: .6rem; white-space: pre-wrap; word-break: break-word; }
.ok { color: #0a5d0a; font-weight: 600; }
.warn { color: #8a4b00; font-weight: 600; }
.muted { color: #555; }
ol.chain > li { margin: .35rem 0; }
.kv th { width: 14rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; }
  tr, pre { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

fn data_str(e: &VerifiedEvent, path: &[&str]) -> Option<String> {
    let mut v = &e.event.data;
    for p in path {
        v = v.get(p)?;
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn seqs(events: &[&VerifiedEvent]) -> String {
    if events.is_empty() {
        return String::new();
    }
    let list: Vec<String> = events.iter().map(|e| format!("#{}", e.seq)).collect();
    if list.len() > 8 {
        format!(
            "{} … {} ({} events)",
            list[..4].join(", "),
            list[list.len() - 2..].join(", "),
            list.len()
        )
    } else {
        list.join(", ")
    }
}

/// Allowed (`Some(true)`), denied (`Some(false)`) or unknown, from an operation's details.
fn op_allowed(e: &VerifiedEvent) -> Option<bool> {
    GatewayReport::of(&e.event).and_then(|r| detail_allowed(&r.detail))
}

/// Allowed or denied, from a gateway's operation detail: the `allowed` every protocol
/// writes ([`OperationOutcome`]), else a verdict word of a gateway that words it.
pub(crate) fn detail_allowed(d: &Value) -> Option<bool> {
    if let Ok(o) = serde_json::from_value::<OperationOutcome>(d.clone()) {
        return Some(o.allowed);
    }
    for key in ["verdict", "decision", "outcome", "result"] {
        match d.get(key).and_then(Value::as_str) {
            Some("allowed" | "allow" | "permit" | "permitted" | "forwarded") => return Some(true),
            Some("denied" | "deny" | "refused" | "blocked") => return Some(false),
            _ => {}
        }
    }
    None
}

#[derive(Default)]
struct Session<'a> {
    started: Option<&'a VerifiedEvent>,
    ended: Option<&'a VerifiedEvent>,
    ops: u64,
    allowed: u64,
    denied: u64,
}

/// The one-page audit report of a verified bundle.
pub fn report_html(b: &VerifiedBundle) -> String {
    let by_kind = |k: EventKind| -> Vec<&VerifiedEvent> { b.of_kind(k).collect() };
    let by_prefix = |p: &str| -> Vec<&VerifiedEvent> {
        b.events
            .iter()
            .filter(|e| e.event.kind.as_str().starts_with(p))
            .collect()
    };
    let submitted = by_kind(EventKind::RequestSubmitted);
    let decided = by_kind(EventKind::RequestDecided);
    let approvals = by_kind(EventKind::ApprovalRecorded);
    let approved = by_kind(EventKind::RequestApproved);
    let issued = by_kind(EventKind::GrantIssued);
    let ended = by_kind(EventKind::GrantEnded);
    let credentials = by_prefix("credential.");
    let session_events = by_prefix("session.");
    let operations = by_prefix("operation");
    let teardown = by_prefix("teardown.");
    let refused = by_prefix("session.refused");

    let req = submitted.first().copied();
    let requester = req
        .and_then(|e| data_str(e, &["requester"]))
        .unwrap_or_default();
    let subject = req
        .and_then(|e| data_str(e, &["subject"]))
        .unwrap_or_default();
    // The subject is a workload the requester is responsible for whenever it is not the
    // requester (humans request for themselves); gateway data may also say so explicitly.
    let workload = (!subject.is_empty() && subject != requester)
        || req.and_then(|e| data_str(e, &["subject_kind"])).as_deref() == Some("workload");

    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    for e in session_events.iter().chain(operations.iter()) {
        let Some(id) = data_str(e, &["session_id"]) else {
            continue;
        };
        let s = sessions.entry(id).or_default();
        match e.event.kind.as_str() {
            "session.started" => s.started = Some(e),
            "session.ended" => s.ended = Some(e),
            k if k.starts_with("operation") => {
                s.ops += 1;
                match op_allowed(e) {
                    Some(true) => s.allowed += 1,
                    Some(false) => s.denied += 1,
                    None => {}
                }
            }
            _ => {}
        }
    }

    let mut h = String::with_capacity(16 * 1024 + b.events.len() * 256);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>jitgate evidence report — grant {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&b.grant_id)
    );
    let _ = write!(
        h,
        "<h1>Evidence report — grant <span class=\"mono\">{}</span></h1>\n\
         <p class=\"ok\">Verified offline: every one of the {} events below is included in the \
         log checkpoint signed by evidence key <span class=\"mono\">{}</span>, and the bundle \
         as exported is signed by key <span class=\"mono\">{}</span>.</p>\n",
        esc(&b.grant_id),
        b.events.len(),
        esc(&b.checkpoint.key_id),
        esc(&b.attested_by),
    );
    h.push_str("<table class=\"kv\">\n");
    let mut kv = |k: &str, v: &str| {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), v);
    };
    kv(
        "Request",
        &format!("<span class=\"mono\">{}</span>", esc(&b.request_id)),
    );
    kv("Requester", &esc(&requester));
    kv(
        "Subject",
        &format!(
            "{}{}",
            esc(&subject),
            if workload {
                " (workload, non-human identity)"
            } else {
                ""
            }
        ),
    );
    if let Some(e) = req {
        kv(
            "Scope",
            &format!(
                "<code>{}</code>",
                esc(&data_str(e, &["scope"]).unwrap_or_default())
            ),
        );
        kv(
            "Scope digest",
            &format!(
                "<span class=\"mono\">{}</span>",
                esc(&data_str(e, &["scope_digest"]).unwrap_or_default())
            ),
        );
        kv("Path", &esc(&data_str(e, &["path"]).unwrap_or_default()));
        kv(
            "Reason",
            &esc(&data_str(e, &["reason"]).unwrap_or_default()),
        );
        kv(
            "Reference",
            &esc(&data_str(e, &["reference"]).unwrap_or_default()),
        );
    }
    if let Some(e) = decided.first() {
        kv(
            "Policy set",
            &format!(
                "<span class=\"mono\">{}</span>",
                esc(&data_str(e, &["policy_set_hash"]).unwrap_or_default())
            ),
        );
    }
    kv(
        "Log",
        &format!("<span class=\"mono\">{}</span>", esc(&b.log_id)),
    );
    kv(
        "Checkpoint",
        &format!(
            "tree size {}, root <span class=\"mono\">{}</span>, signed {} by key <span class=\"mono\">{}</span>",
            b.checkpoint.tree_size,
            esc(&b.checkpoint.root_hash),
            esc(&b.checkpoint.time),
            esc(&b.checkpoint.key_id)
        ),
    );
    h.push_str("</table>\n");

    // The chain from approval to the last operation.
    h.push_str("<h2>Evidence chain: request → decision → approvals → grant → sessions → operations → end</h2>\n<ol class=\"chain\">\n");
    for e in &submitted {
        let _ = writeln!(
            h,
            "<li><b>Request</b> #{}: {}</li>",
            e.seq,
            esc(&summary(&e.event))
        );
    }
    for e in &decided {
        let _ = writeln!(
            h,
            "<li><b>Decision</b> #{}: {}</li>",
            e.seq,
            esc(&summary(&e.event))
        );
    }
    if approvals.is_empty() {
        h.push_str("<li><b>Approvals</b>: none recorded (none required, or break-glass)</li>\n");
    }
    for e in &approvals {
        let _ = writeln!(
            h,
            "<li><b>Approval</b> #{} by {}: {}</li>",
            e.seq,
            esc(&e.event.actor.0),
            esc(&summary(&e.event))
        );
    }
    for e in &approved {
        let _ = writeln!(h, "<li><b>Approved</b> #{}</li>", e.seq);
    }
    for e in &issued {
        let _ = writeln!(
            h,
            "<li><b>Grant</b> #{}: {}</li>",
            e.seq,
            esc(&summary(&e.event))
        );
    }
    for e in &credentials {
        let _ = writeln!(
            h,
            "<li><b>Credential</b> #{}: fingerprint <span class=\"mono\">{}</span>, asset {}, gateway {}, expires {}</li>",
            e.seq,
            esc(&data_str(e, &["token_fingerprint"]).unwrap_or_default()),
            esc(&data_str(e, &["asset"]).unwrap_or_default()),
            esc(&data_str(e, &["gateway"]).unwrap_or_default()),
            esc(&data_str(e, &["expires_at"]).unwrap_or_default()),
        );
    }
    if sessions.is_empty() {
        h.push_str("<li><b>Sessions</b>: none recorded (the grant was not used)</li>\n");
    }
    for (id, s) in &sessions {
        let _ = writeln!(
            h,
            "<li><b>Session</b> <span class=\"mono\">{}</span>: started {}, ended {}; {} operations ({} allowed, {} denied)</li>",
            esc(id),
            s.started.map_or("(not recorded)".to_string(), |e| format!("#{} at {}", e.seq, crate::rfc3339(e.event.at))),
            s.ended.map_or("(not recorded)".to_string(), |e| format!("#{} at {}", e.seq, crate::rfc3339(e.event.at))),
            s.ops,
            s.allowed,
            s.denied
        );
    }
    for e in &ended {
        let _ = writeln!(
            h,
            "<li><b>End</b> #{}: {}</li>",
            e.seq,
            esc(&summary(&e.event))
        );
    }
    h.push_str("</ol>\n");

    // Teardown checks: what the bundle shows about the end of access.
    h.push_str("<h2>Teardown checks</h2>\n<table>\n<tr><th>check</th><th>result</th><th>evidence</th></tr>\n");
    let row = |h: &mut String, check: &str, ok: Option<bool>, text: &str, ev: &str| {
        let (class, word) = match ok {
            Some(true) => ("ok", "shown"),
            Some(false) => ("warn", "not shown"),
            None => ("muted", "n/a"),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{} {}</td></tr>",
            esc(check),
            esc(text),
            esc(ev)
        );
    };
    row(
        &mut h,
        "grant ended",
        Some(!ended.is_empty()),
        &ended
            .first()
            .map(|e| summary(&e.event))
            .unwrap_or_else(|| "no grant.ended event: the grant may still be active".into()),
        &seqs(&ended),
    );
    let open: Vec<&String> = sessions
        .iter()
        .filter(|(_, s)| s.ended.is_none())
        .map(|(id, _)| id)
        .collect();
    row(
        &mut h,
        "every session closed",
        if sessions.is_empty() {
            None
        } else {
            Some(open.is_empty())
        },
        &if sessions.is_empty() {
            "no sessions".to_string()
        } else if open.is_empty() {
            format!("{} session(s), each with session.ended", sessions.len())
        } else {
            format!(
                "no session.ended for: {}",
                open.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        &seqs(&by_prefix("session.ended")),
    );
    if teardown.is_empty() {
        row(
            &mut h,
            "teardown verification (credential refused, downstream authorization ended)",
            Some(false),
            "no teardown.* events in this bundle",
            "",
        );
    }
    for e in &teardown {
        row(
            &mut h,
            e.event.kind.as_str(),
            Some(true),
            &summary(&e.event),
            &format!("#{}", e.seq),
        );
    }
    if !refused.is_empty() {
        row(
            &mut h,
            "refused session attempts",
            Some(true),
            &format!("{} refused", refused.len()),
            &seqs(&refused),
        );
    }
    h.push_str("</table>\n");

    // Timeline.
    h.push_str("<h2>Timeline</h2>\n<table>\n<tr><th>time (UTC)</th><th>seq</th><th>kind</th><th>actor</th><th>summary</th></tr>\n");
    for t in b.timeline() {
        let _ = writeln!(
            h,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&crate::rfc3339(t.at)),
            t.seq,
            esc(&t.kind),
            esc(&t.actor),
            esc(&t.summary)
        );
    }
    h.push_str("</table>\n");

    // Policies.
    h.push_str("<h2>Determining policies</h2>\n");
    let named = determining_policies(&b.events);
    if named.is_empty() && b.policies.is_empty() {
        h.push_str("<p class=\"muted\">The decision names no determining policy.</p>\n");
    }
    for id in &named {
        match b.policies.get(id) {
            Some(text) => {
                let _ = writeln!(
                    h,
                    "<h3 class=\"mono\">{}</h3>\n<pre>{}</pre>",
                    esc(id),
                    esc(text)
                );
            }
            None => {
                let _ = writeln!(h, "<h3 class=\"mono\">{}</h3>\n<p class=\"warn\">Text not included in the bundle.</p>", esc(id));
            }
        }
    }
    for (id, text) in b.policies.iter().filter(|(id, _)| !named.contains(id)) {
        let _ = writeln!(h, "<h3 class=\"mono\">{} <span class=\"muted\">(included, not named by the decision)</span></h3>\n<pre>{}</pre>", esc(id), esc(text));
    }

    // Controls.
    h.push_str("<h2>Controls this evidence supports</h2>\n<p class=\"muted\">Each row names the events of this bundle that support the control. \
        The mapping states what the evidence shows; whether the control is met is the assessor's judgement.</p>\n");
    h.push_str("<table>\n<tr><th>framework</th><th>control</th><th>what this bundle shows</th><th>events</th></tr>\n");
    let step_up: Vec<&VerifiedEvent> = approvals
        .iter()
        .copied()
        .filter(|e| {
            e.event
                .payload::<jitgate_core::payload::ApprovalRecorded>()
                .is_some_and(|a| a.step_up)
        })
        .collect();
    let denied_ops: Vec<&VerifiedEvent> = operations
        .iter()
        .copied()
        .filter(|e| op_allowed(e) == Some(false))
        .collect();
    fn cat<'a>(a: &[&'a VerifiedEvent], b: &[&'a VerifiedEvent]) -> Vec<&'a VerifiedEvent> {
        let mut v: Vec<&VerifiedEvent> = a.iter().chain(b.iter()).copied().collect();
        v.sort_by_key(|e| e.seq);
        v.dedup_by_key(|e| e.seq);
        v
    }
    let all: Vec<&VerifiedEvent> = b.events.iter().collect();
    let control = |h: &mut String, fw: &str, id: &str, text: &str, ev: &[&VerifiedEvent]| {
        let evidence = if ev.is_empty() {
            "<span class=\"warn\">no supporting event in this bundle</span>".to_string()
        } else {
            esc(&seqs(ev))
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(fw),
            esc(id),
            esc(text),
            evidence
        );
    };
    let csf = "NIST CSF 2.0";
    control(&mut h, csf, "PR.AA-01 identities and credentials managed", "named requester and subject; a credential issued for this grant only, with its fingerprint and expiry", &cat(&submitted, &cat(&issued, &credentials)));
    control(&mut h, csf, "PR.AA-03 users, services and hardware authenticated", "approvals by authenticated named approvers (with step-up where marked); sessions admitted by the gateway after token and proof-of-possession checks", &cat(&step_up, &cat(&approvals, &session_events)));
    control(&mut h, csf, "PR.AA-05 access permissions defined in policy, enforced, reviewed; least privilege, separation of duties", "policy decision with determining policies; approvals bound to the scope digest by approvers other than the requester; a grant limited to that scope and window; operations enforced against it; access ended", &cat(&cat(&decided, &approvals), &cat(&issued, &cat(&denied_ops, &ended))));
    let zt = "NIST SP 800-207";
    control(
        &mut h,
        zt,
        "Tenet 3: access granted per session",
        "a grant for one request's scope and window; each session admitted individually",
        &cat(&issued, &session_events),
    );
    control(
        &mut h,
        zt,
        "Tenet 4: access determined by dynamic policy (PDP)",
        "the policy decision and the policy-set hash in force",
        &decided,
    );
    control(&mut h, zt, "Tenet 6 / PEP: authorization enforced before and during access", "sessions started or refused by the gateway; every operation checked against the grant's scope", &cat(&session_events, &operations));
    let iec = "IEC 62443-3-3";
    control(
        &mut h,
        iec,
        "SR 1.1 human user identification and authentication",
        "requester and approvers identified by name on every event they caused",
        &cat(&submitted, &approvals),
    );
    control(
        &mut h,
        iec,
        "SR 1.2 software process and device identification and authentication",
        "gateway-reported events carry the gateway's identity; workload subjects are named",
        &cat(&session_events, &credentials),
    );
    control(
        &mut h,
        iec,
        "SR 2.1 authorization enforcement",
        "decision, approvals and grant scope; operations allowed or denied at protocol level",
        &cat(&cat(&decided, &issued), &operations),
    );
    control(
        &mut h,
        iec,
        "SR 2.8 auditable events",
        "every access-control event of this grant, hash-chained and in a signed Merkle checkpoint",
        &all,
    );
    control(
        &mut h,
        iec,
        "SR 2.11 timestamps",
        "every event is timestamped (UTC, ms); the checkpoint is signed with its time",
        &all,
    );
    control(&mut h, iec, "SR 2.12 non-repudiation", "approvals recorded against named approvers and the scope digest, committed to a log checkpoint signed with the evidence key", &cat(&approvals, &issued));
    let nhi = "OWASP NHI Top 10 (2025)";
    if workload {
        control(
            &mut h,
            nhi,
            "NHI1 Improper Offboarding",
            "the workload's access ended and its sessions closed",
            &cat(&ended, &cat(&by_prefix("session.ended"), &teardown)),
        );
        control(
            &mut h,
            nhi,
            "NHI5 Overprivileged NHI",
            "the workload's access limited to the approved scope; out-of-scope operations denied",
            &cat(&issued, &denied_ops),
        );
        control(
            &mut h,
            nhi,
            "NHI7 Long-Lived Secrets",
            "a credential valid only for the grant window (expiry recorded)",
            &cat(&issued, &credentials),
        );
        control(
            &mut h,
            nhi,
            "NHI9 NHI Reuse",
            "a credential issued for this grant and bound to one client key",
            &credentials,
        );
        control(&mut h, nhi, "NHI10 Human Use of NHI", "the human responsible (requester) recorded apart from the workload subject; sessions attributed", &cat(&submitted, &session_events));
    } else {
        let _ = writeln!(h, "<tr><td>{}</td><td>—</td><td class=\"muted\">not applicable: the subject is the requester, a human identity</td><td></td></tr>", esc(nhi));
    }
    h.push_str("</table>\n");

    if !b.notes.is_empty() {
        h.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &b.notes {
            let _ = writeln!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str(
        "<h2>How to check this yourself</h2>\n<p>Run <code>jitgate evidence verify-bundle bundle.json \
         --key evidence-keys.txt</code> with the evidence public key file obtained from the operator \
         through a channel you trust. It checks, without the server: the checkpoint's signature, \
         every event's inclusion proof against the checkpoint root (RFC 9162), each event's canonical \
         form, the order of the lifecycle, and the exporter's signature over the bundle. See \
         <code>docs/evidence.md</code>.</p>\n</body>\n</html>\n",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escaping_covers_markup_and_attributes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
