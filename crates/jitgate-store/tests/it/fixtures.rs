//! Domain values for the tests, with millisecond timestamps (the store's precision).

use jitgate_core::scope::{ModbusOp, ModbusTable};
use jitgate_core::{
    AccessPath, Actor, Approval, ApprovalVerdict, Decision, Event, EventKind, Grant, GrantState,
    Obligations, Request, RequestState, Scope, ScopeItem, Timestamp,
};
use serde_json::json;

/// 2023-11-14T22:13:20.123Z plus `offset_ms`.
pub fn t(offset_ms: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(1_700_000_000_123 + offset_ms).unwrap()
}

pub fn scope() -> Scope {
    Scope::new(vec![
        ScopeItem::Modbus {
            asset: "plc-7".into(),
            unit: 1,
            op: ModbusOp::Read,
            table: Some(ModbusTable::Holding),
            start: 0,
            end: 99,
        },
        ScopeItem::Ssh {
            asset: "jump-1".into(),
            command: Some("systemctl status".into()),
        },
    ])
    .unwrap()
}

pub fn decision() -> Decision {
    Decision {
        allowed: true,
        determining_policies: vec!["engineers-read".into()],
        policy_set_hash: "sha256:abc".into(),
        obligations: Obligations {
            approvals: 2,
            step_up: true,
            ..Obligations::default()
        },
        reasons: vec![],
    }
}

/// A pending request created at `t(created)`, window `t(start)` for `secs` seconds.
pub fn request(
    id: &str,
    requester: &str,
    subject: &str,
    created: i64,
    start: i64,
    secs: i64,
) -> Request {
    let scope = scope();
    Request {
        id: id.into(),
        requester: requester.into(),
        subject: subject.into(),
        scope_digest: scope.digest(),
        scope,
        window_start: t(start),
        duration_secs: secs,
        reason: "replace pump controller firmware".into(),
        reference: "WO-4711".into(),
        path: AccessPath::Planned,
        state: RequestState::Pending,
        decision: decision(),
        grant_id: None,
        state_reason: None,
        filed_with_key: None,
        created_at: t(created),
        updated_at: t(created),
    }
}

pub fn approval(id: &str, request_id: &str, approver: &str, at: i64) -> Approval {
    Approval {
        id: id.into(),
        request_id: request_id.into(),
        approver: approver.into(),
        verdict: ApprovalVerdict::Approve,
        scope_digest: scope().digest(),
        comment: "ok".into(),
        step_up: true,
        at: t(at),
    }
}

pub fn grant(id: &str, request_id: &str, subject: &str, created: i64, expires: i64) -> Grant {
    let scope = scope();
    Grant {
        id: id.into(),
        request_id: request_id.into(),
        subject: subject.into(),
        scope_digest: scope.digest(),
        scope,
        not_before: t(created),
        expires_at: t(expires),
        state: GrantState::Active,
        emergency: false,
        review_required: true,
        ended_at: None,
        end_reason: None,
        created_at: t(created),
    }
}

pub fn event(n: i64, request_id: &str) -> Event {
    Event::new(EventKind::RequestSubmitted, Actor::identity("alice"), t(n))
        .request(request_id)
        .states(None, "pending")
        .data(json!({ "n": n, "nested": { "z": 1, "a": [true, null, "x"] }, "text": "ünïcödé \"q\"" }))
}
