//! Typed payloads of the lifecycle's evidence events: what each transition writes into
//! [`Event::data`], as a struct with the event kind it belongs to ([`Payload::KIND`]).
//! Writers use [`Event::with_payload`]; readers (the bundle verifier, the audit report and
//! timeline, the SIEM encoder) use [`Event::payload`] instead of reading JSON by string key,
//! so a renamed field is a compile error, not a silently empty report.
//!
//! The JSON of each payload is exactly what earlier versions wrote with `json!` (same keys,
//! times as RFC 3339 with milliseconds), so logs written before keep verifying and reading.

use crate::decision::Obligations;
use crate::event::{millis, Event, EventKind};
use crate::governance::Hold;
use crate::lifecycle::{AccessPath, ApprovalVerdict, EndReason};
use crate::teardown::TeardownVerdict;
use crate::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A typed event payload and the kind of event that carries it.
pub trait Payload: Serialize + DeserializeOwned {
    const KIND: EventKind;
}

impl Event {
    /// An event of the payload's kind carrying it.
    pub fn with_payload<P: Payload>(
        actor: crate::event::Actor,
        at: Timestamp,
        payload: &P,
    ) -> Result<Event, crate::CoreError> {
        let data = serde_json::to_value(payload).map_err(|e| {
            crate::CoreError::InvalidRequest(format!("event payload {}: {e}", P::KIND.as_str()))
        })?;
        Ok(Event::new(P::KIND, actor, at).data(data))
    }

    /// This event's payload as `P`, if the event is of `P`'s kind and its data has `P`'s
    /// shape. Extra keys (added by later versions) are ignored.
    pub fn payload<P: Payload>(&self) -> Option<P> {
        if self.kind != P::KIND {
            return None;
        }
        self.payload_as()
    }

    /// This event's data read as `P` whatever the event's kind (for payloads more than one
    /// kind carries, e.g. [`RequestVoided`] in a `request.decided` denial).
    pub fn payload_as<P: DeserializeOwned>(&self) -> Option<P> {
        serde_json::from_value(self.data.clone()).ok()
    }
}

/// `request.submitted`: what was asked, as filed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSubmitted {
    pub requester: String,
    pub subject: String,
    pub scope_digest: String,
    /// The scope's canonical text (what the digest covers).
    pub scope: String,
    #[serde(with = "millis")]
    pub window_start: Timestamp,
    pub duration_secs: i64,
    pub reason: String,
    pub reference: String,
    pub path: AccessPath,
}
impl Payload for RequestSubmitted {
    const KIND: EventKind = EventKind::RequestSubmitted;
}

/// `request.decided`: the policy decision taken at filing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDecided {
    pub allowed: bool,
    pub determining_policies: Vec<String>,
    pub policy_set_hash: String,
    pub obligations: Obligations,
    #[serde(default)]
    pub reasons: Vec<String>,
}
impl Payload for RequestDecided {
    const KIND: EventKind = EventKind::RequestDecided;
}

/// `approval.recorded`: one approver's yes or no, bound to the scope digest they saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecorded {
    pub verdict: ApprovalVerdict,
    pub scope_digest: String,
    #[serde(default)]
    pub comment: String,
    pub step_up: bool,
    /// Distinct approvals that count after this one.
    pub approvals: u32,
    pub required: u32,
}
impl Payload for ApprovalRecorded {
    const KIND: EventKind = EventKind::ApprovalRecorded;
}

/// `approval.withdrawn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalWithdrawn {
    pub approval_id: String,
    #[serde(with = "millis")]
    pub approved_at: Timestamp,
    pub scope_digest: String,
    pub reason: String,
}
impl Payload for ApprovalWithdrawn {
    const KIND: EventKind = EventKind::ApprovalWithdrawn;
}

/// `grant.issued`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantIssued {
    pub subject: String,
    pub scope_digest: String,
    #[serde(with = "millis")]
    pub not_before: Timestamp,
    #[serde(with = "millis")]
    pub expires_at: Timestamp,
    pub emergency: bool,
    pub review_required: bool,
}
impl Payload for GrantIssued {
    const KIND: EventKind = EventKind::GrantIssued;
}

/// `grant.ended`: why, and when access ended (an expiry noticed late is dated at expiry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantEnded {
    pub end_reason: EndReason,
    #[serde(with = "millis")]
    pub ended_at: Timestamp,
    #[serde(with = "millis")]
    pub expires_at: Timestamp,
}
impl Payload for GrantEnded {
    const KIND: EventKind = EventKind::GrantEnded;
}

/// `request.lapsed` written when a request no longer stands (its `hold`); a lapse at the end
/// of the window carries no data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestVoided {
    pub hold: Hold,
    pub reason: String,
}
impl Payload for RequestVoided {
    const KIND: EventKind = EventKind::RequestLapsed;
}

/// `teardown.verdict`, final or not. The server adds the attempt's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeardownVerdictData {
    pub verdict: TeardownVerdict,
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Sequence numbers of the `session.ended` events of every session under the grant, all
    /// in the log before this verdict (absent in logs written before this was recorded).
    #[serde(default)]
    pub session_ended_events: Vec<i64>,
}
impl Payload for TeardownVerdictData {
    const KIND: EventKind = EventKind::TeardownVerdict;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Actor;
    use chrono::TimeZone;

    #[test]
    fn payloads_keep_the_json_earlier_versions_wrote() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
        let ended = GrantEnded {
            end_reason: EndReason::Revoked {
                by: "sam".into(),
                reason: "incident".into(),
            },
            ended_at: t,
            expires_at: t,
        };
        let e = Event::with_payload(Actor::system(), t, &ended).unwrap();
        assert_eq!(e.kind, EventKind::GrantEnded);
        assert_eq!(
            e.data,
            serde_json::json!({
                "end_reason": {"kind": "revoked", "by": "sam", "reason": "incident"},
                "ended_at": "2026-11-01T08:00:00.000Z",
                "expires_at": "2026-11-01T08:00:00.000Z",
            })
        );
        assert_eq!(e.payload::<GrantEnded>(), Some(ended));
        assert_eq!(e.payload::<GrantIssued>(), None, "another kind");
        // An old verdict event without session_ended_events still reads.
        let old = Event::new(EventKind::TeardownVerdict, Actor::scheduler(), t)
            .data(serde_json::json!({"verdict": "partial", "final": true, "attempt": 1}));
        let v = old.payload::<TeardownVerdictData>().unwrap();
        assert_eq!(v.verdict, TeardownVerdict::Partial);
        assert!(v.is_final && v.session_ended_events.is_empty());
    }
}
