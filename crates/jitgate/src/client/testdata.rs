//! Sample API values built from the core types, for the rendering tests.

use chrono::TimeZone;
use jitgate_core::decision::{ApproverSite, Decision, Obligations};
use jitgate_core::scope::{ModbusOp, ModbusTable, Scope, ScopeItem};
use jitgate_core::{
    AccessPath, Actor, Approval, ApprovalVerdict, Event, EventKind, Grant, GrantState, Identity,
    IdentityKind, IdentityStatus, Request, RequestState, Timestamp,
};
use jitgate_server::api::types::{EventView, GrantView, RequestView};

pub fn at(h: u32, m: u32) -> Timestamp {
    match chrono::Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0) {
        chrono::LocalResult::Single(t) => t,
        _ => unreachable!("valid test time"),
    }
}

pub fn identity(id: &str) -> Identity {
    Identity {
        id: id.into(),
        kind: IdentityKind::Human,
        name: String::new(),
        org: None,
        roles: vec!["engineer".into()],
        groups: vec![],
        sites: vec!["north".into()],
        owners: vec![],
        status: IdentityStatus::Active,
    }
}

pub fn scope() -> Scope {
    let items = vec![
        ScopeItem::Modbus {
            asset: "plc-7".into(),
            unit: 1,
            op: ModbusOp::Read,
            table: Some(ModbusTable::Holding),
            start: 0,
            end: 99,
        },
        ScopeItem::Modbus {
            asset: "plc-7".into(),
            unit: 1,
            op: ModbusOp::Write,
            table: Some(ModbusTable::Coil),
            start: 10,
            end: 20,
        },
    ];
    match Scope::new(items) {
        Ok(s) => s,
        Err(e) => unreachable!("sample scope is valid: {e}"),
    }
}

pub fn obligations() -> Obligations {
    Obligations {
        approvals: 2,
        approver_roles: vec!["engineer".into()],
        approver_groups: vec![],
        approver_site: Some(ApproverSite::Asset),
        max_duration_secs: 7200,
        step_up: true,
        step_up_passkey: false,
        review: false,
        attestation: false,
    }
}

pub fn request_view(state: RequestState) -> RequestView {
    let scope = scope();
    let digest = scope.digest();
    let description = scope.describe();
    let allowed = state != RequestState::Denied;
    let request = Request {
        id: "req-1".into(),
        requester: "alice".into(),
        subject: "alice".into(),
        scope,
        scope_digest: digest.clone(),
        window_start: at(6, 0),
        duration_secs: 7200,
        reason: "replace valve positioner".into(),
        reference: "WO-1234".into(),
        path: AccessPath::Planned,
        state,
        decision: Decision {
            allowed,
            determining_policies: if allowed {
                vec!["humans-planned".into()]
            } else {
                vec!["guardrail-safety-writes".into()]
            },
            policy_set_hash: "sha256:abcdef0123456789".into(),
            obligations: obligations(),
            reasons: if allowed {
                vec![]
            } else {
                vec!["writes to safety assets need the emergency path".into()]
            },
        },
        grant_id: None,
        state_reason: None,
        filed_with_key: None,
        created_at: at(5, 0),
        updated_at: at(5, 30),
    };
    let approvals = vec![Approval {
        id: "ap-1".into(),
        request_id: "req-1".into(),
        approver: "bob".into(),
        verdict: ApprovalVerdict::Approve,
        scope_digest: digest,
        comment: "checked the work order".into(),
        step_up: true,
        at: at(5, 30),
    }];
    RequestView {
        request,
        description,
        approvals,
        approved_by: vec!["bob".into()],
        obligations: obligations(),
        grant: None,
    }
}

pub fn grant() -> Grant {
    let scope = scope();
    Grant {
        id: "gr-1".into(),
        request_id: "req-1".into(),
        subject: "alice".into(),
        scope_digest: scope.digest(),
        scope,
        not_before: at(6, 0),
        expires_at: at(8, 0),
        state: GrantState::Active,
        emergency: false,
        review_required: true,
        ended_at: None,
        end_reason: None,
        created_at: at(6, 0),
    }
}

pub fn grant_view() -> GrantView {
    GrantView {
        grant: grant(),
        requester: "alice".into(),
        reason: "replace valve positioner".into(),
        reference: "WO-1234".into(),
        description: scope().describe(),
        remaining_secs: 4320,
    }
}

pub fn event_view() -> EventView {
    EventView {
        seq: 7,
        hash: "sha256:77".into(),
        prev_hash: "sha256:66".into(),
        event: Event::new(
            EventKind::RequestApproved,
            Actor::identity("bob"),
            at(5, 30),
        )
        .request("req-1")
        .states(Some("pending"), "approved"),
    }
}
