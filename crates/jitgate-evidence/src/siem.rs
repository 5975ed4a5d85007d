//! Encodings of evidence events for SIEMs: OCSF-style JSON and RFC 5424 syslog lines. Pure
//! functions — delivery (TCP/TLS, cursor, retries) belongs to the server.
//!
//! The OCSF class of each kind is a best fit, not a certified mapping: access-lifecycle events
//! are User Access Management, sessions are Authentication (logon/logoff), protocol
//! operations are API Activity. Everything jitgate knows is kept under `unmapped.jitgate`, so
//! nothing is lost to the mapping.

use crate::timeline::summary;
use jitgate_core::lifecycle::{AccessPath, ApprovalVerdict};
use jitgate_core::payload::{ApprovalRecorded, GrantIssued, RequestDecided, RequestSubmitted};
use jitgate_core::server_payload::GatewayReport;
use jitgate_core::{Event, EventKind};
use serde_json::{json, Value};

/// OCSF schema version the fields follow.
pub const OCSF_VERSION: &str = "1.3.0";
/// The structured-data id of our syslog parameters (`name@enterprise-number`).
pub const SYSLOG_SD_ID: &str = "jitgate@32473";
/// Syslog facility 13, "log audit".
const FACILITY: u8 = 13;

/// Did the event record something refused or denied?
fn is_denial(e: &Event) -> bool {
    match e.kind {
        EventKind::RequestDenied | EventKind::SessionRefused => true,
        EventKind::RequestDecided => e.payload::<RequestDecided>().is_some_and(|d| !d.allowed),
        EventKind::ApprovalRecorded => e
            .payload::<ApprovalRecorded>()
            .is_some_and(|a| a.verdict == ApprovalVerdict::Deny),
        EventKind::Operation => GatewayReport::of(e)
            .is_some_and(|r| crate::report::detail_allowed(&r.detail) == Some(false)),
        _ => e.kind.as_str().ends_with(".failed"),
    }
}

fn is_emergency(e: &Event) -> bool {
    match e.kind {
        EventKind::GrantIssued => e.payload::<GrantIssued>().is_some_and(|g| g.emergency),
        EventKind::RequestSubmitted => e
            .payload::<RequestSubmitted>()
            .is_some_and(|r| r.path == AccessPath::Emergency),
        _ => false,
    }
}

/// (class_uid, class_name, activity_id, activity_name)
fn ocsf_class(e: &Event) -> (u32, &'static str, u32, &'static str) {
    const UAM: (u32, &str) = (3005, "User Access Management");
    const AUTHN: (u32, &str) = (3002, "Authentication");
    const API: (u32, &str) = (6003, "API Activity");
    const LIFECYCLE: (u32, &str) = (6002, "Application Lifecycle");
    let kind = e.kind.as_str();
    let (c, a, an) = match kind {
        "grant.issued" => (UAM, 1, "Assign Privileges"),
        "grant.ended" => (UAM, 2, "Revoke Privileges"),
        "session.started" | "session.refused" => (AUTHN, 1, "Logon"),
        "session.ended" => (AUTHN, 2, "Logoff"),
        "credential.issued" => (AUTHN, 3, "Authentication Ticket"),
        "operation" => {
            let report = GatewayReport::of(e);
            let d = report.as_ref().map_or(&e.data, |r| &r.detail);
            let op = ["operation", "function", "access"]
                .iter()
                .find_map(|k| d.get(*k).and_then(Value::as_str))
                .unwrap_or("")
                .to_ascii_lowercase();
            if op.contains("read") {
                (API, 2, "Read")
            } else if op.contains("write") || op.contains("operate") {
                (API, 3, "Update")
            } else {
                (API, 99, "Other")
            }
        }
        "policy.loaded" | "inventory.changed" | "key.rotated" => (LIFECYCLE, 8, "Update"),
        _ => (UAM, 99, "Other"),
    };
    (c.0, c.1, a, an)
}

/// One event as an OCSF-style JSON object.
pub fn to_ocsf_json(seq: i64, event: &Event) -> Value {
    let (class_uid, class_name, activity_id, activity_name) = ocsf_class(event);
    let category_uid = class_uid / 1000;
    let category_name = match category_uid {
        3 => "Identity & Access Management",
        6 => "Application Activity",
        _ => "Other",
    };
    let denied = is_denial(event);
    let (severity_id, severity) = if denied {
        (3, "Medium")
    } else if is_emergency(event) {
        (4, "High")
    } else {
        (1, "Informational")
    };
    let actor = &event.actor.0;
    let actor_json = if actor.starts_with("system") {
        json!({ "app_name": "jitgate", "process": { "name": actor } })
    } else {
        json!({ "user": { "uid": actor, "name": actor } })
    };
    json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": u64::from(class_uid) * 100 + u64::from(activity_id),
        "time": event.at.timestamp_millis(),
        "time_dt": crate::rfc3339(event.at),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": if denied { 2 } else { 1 },
        "status": if denied { "Failure" } else { "Success" },
        "message": summary(event),
        "actor": actor_json,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "jitgate",
                "vendor_name": "jitgate",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "sequence": seq,
            "uid": format!("jitgate-event-{seq}"),
            "log_name": "jitgate evidence",
            "event_code": event.kind.as_str(),
        },
        "unmapped": {
            "jitgate": {
                "seq": seq,
                "kind": event.kind.as_str(),
                "request_id": event.request_id,
                "approval_id": event.approval_id,
                "grant_id": event.grant_id,
                "state_before": event.state_before,
                "state_after": event.state_after,
                "data": event.data,
            }
        }
    })
}

/// RFC 5424 §6.3.3: inside a PARAM-VALUE, `"`, `\` and `]` are escaped with a backslash.
fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field: printable US-ASCII (33–126) of at most `max` characters, or `-` (NILVALUE).
fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// One event as an RFC 5424 syslog message (no trailing newline; framing is the transport's):
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [jitgate@32473 seq=… request=… grant=…] BOM MSG`
/// where MSGID is the event kind and MSG the canonical event JSON, byte for byte what the log
/// hashed (so a SIEM copy can be checked against the log).
pub fn to_syslog_5424(seq: i64, event: &Event, hostname: &str, app: &str) -> String {
    let severity: u8 = if is_denial(event) {
        4 // warning
    } else if matches!(event.kind, EventKind::GrantIssued | EventKind::GrantEnded)
        || is_emergency(event)
    {
        5 // notice
    } else {
        6 // informational
    };
    let pri = u16::from(FACILITY) * 8 + u16::from(severity);
    let mut sd = format!(
        "[{SYSLOG_SD_ID} seq=\"{seq}\" kind=\"{}\"",
        sd_escape(event.kind.as_str())
    );
    let params = [
        ("request", &event.request_id),
        ("approval", &event.approval_id),
        ("grant", &event.grant_id),
    ];
    for (name, value) in params {
        if let Some(v) = value {
            sd.push_str(&format!(" {name}=\"{}\"", sd_escape(v)));
        }
    }
    sd.push_str(&format!(" actor=\"{}\"]", sd_escape(&event.actor.0)));
    let msg = String::from_utf8_lossy(&event.canonical_bytes()).into_owned();
    format!(
        "<{pri}>1 {} {} {} - {} {sd} \u{FEFF}{msg}",
        crate::rfc3339(event.at),
        header_field(hostname, 255),
        header_field(app, 48),
        header_field(event.kind.as_str(), 32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_core::Actor;

    fn at() -> crate::Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-05-04T10:00:00.250Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn syslog_escapes_structured_data_and_keeps_the_canonical_event() {
        let e = Event::new(EventKind::GrantIssued, Actor::identity(r#"eve"]\x"#), at())
            .request("r-1")
            .grant("g-1");
        let line = to_syslog_5424(42, &e, "plant host", "jitgate");
        assert!(
            line.starts_with("<109>1 2026-05-04T10:00:00.250Z planthost jitgate - grant.issued [jitgate@32473 seq=\"42\" kind=\"grant.issued\" request=\"r-1\" grant=\"g-1\" actor=\"eve\\\"\\]\\\\x\"] \u{FEFF}{"),
            "{line}"
        );
        let msg = line.split('\u{FEFF}').nth(1).unwrap();
        assert_eq!(msg.as_bytes(), e.canonical_bytes());
        assert!(!line.contains('\n'));
    }

    #[test]
    fn ocsf_has_the_class_time_and_every_jitgate_field() {
        let e = Event::new(EventKind::GrantEnded, Actor::scheduler(), at())
            .request("r-1")
            .grant("g-1")
            .data(json!({"end_reason": "expired"}));
        let v = to_ocsf_json(7, &e);
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["activity_id"], 2);
        assert_eq!(v["type_uid"], 300502);
        assert_eq!(v["category_uid"], 3);
        assert_eq!(v["time"], at().timestamp_millis());
        assert_eq!(v["metadata"]["product"]["name"], "jitgate");
        assert_eq!(v["unmapped"]["jitgate"]["grant_id"], "g-1");
        assert_eq!(v["unmapped"]["jitgate"]["data"]["end_reason"], "expired");
        assert_eq!(v["actor"]["process"]["name"], "system:scheduler");
        let denied = Event::new(EventKind::RequestDenied, Actor::identity("ann"), at());
        assert_eq!(to_ocsf_json(8, &denied)["status"], "Failure");
    }
}
