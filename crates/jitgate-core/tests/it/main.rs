//! Lifecycle tests: hand-written cases for each rule, and a property test that random
//! operation sequences never reach an invalid state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod campaign_rules;
mod canonical_jcs;
mod exception_rules;
mod governance_props;
mod lifecycle_props;
mod lifecycle_rules;

use chrono::TimeZone;
use jitgate_core::inventory::*;
use jitgate_core::lifecycle::{self, NewRequest};
use jitgate_core::scope::{parse_rule, Protocol};
use jitgate_core::*;

pub fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()
}

thread_local! {
    /// Every identity a test made with [`person`] (or [`remember`]), by id: the wrappers
    /// below load a request's parties from it, as the server loads them from the store.
    static KNOWN: std::cell::RefCell<std::collections::HashMap<String, Identity>> =
        Default::default();
}

/// Record (or replace) an identity as "the inventory now".
pub fn remember(i: &Identity) {
    KNOWN.with(|k| k.borrow_mut().insert(i.id.clone(), i.clone()));
}

pub fn known(id: &str) -> Option<Identity> {
    KNOWN.with(|k| k.borrow().get(id).cloned())
}

pub fn orgs() -> Vec<Org> {
    vec![Org {
        id: "acme".into(),
        name: String::new(),
        vendor: true,
        status: OrgStatus::Active,
    }]
}

/// [`lifecycle::submit`] against the sample context (org acme active, plc-7 not locked out).
pub fn submit(
    new: NewRequest,
    decision: Decision,
    grant_id: &str,
    at: Timestamp,
) -> Result<lifecycle::Outcome, CoreError> {
    remember(&new.requester);
    remember(&new.subject);
    let (orgs, assets) = (orgs(), vec![plc()]);
    let ctx = lifecycle::SubmitContext {
        orgs: &orgs,
        assets: &assets,
        filing_key_usable: None,
    };
    lifecycle::submit(new, decision, &ctx, grant_id, at)
}

/// Call `f` with the request's context as the known identities have it, plc-7 as it is in
/// [`plc`], and the request's own decision as the current policy's.
fn with_standing<T>(
    request: &Request,
    approvals: &[Approval],
    f: impl FnOnce(&governance::Standing<'_>) -> T,
) -> T {
    let (requester, subject) = (known(&request.requester), known(&request.subject));
    let (orgs, assets, decision) = (orgs(), vec![plc()], request.decision.clone());
    f(&governance::Standing {
        requester: requester.as_ref(),
        subject: subject.as_ref(),
        orgs: &orgs,
        assets: &assets,
        decision: &decision,
        approvals,
        filing_key_usable: None,
        exception_owner: None,
    })
}

/// [`lifecycle::decide`] in the context of [`with_standing`].
pub fn decide(
    request: Request,
    approver: &Identity,
    input: lifecycle::ApprovalInput,
    existing: &[Approval],
    sites: &[String],
    at: Timestamp,
) -> Result<lifecycle::Outcome, CoreError> {
    with_standing(&request.clone(), existing, |standing| {
        lifecycle::decide(request, approver, input, existing, sites, standing, at)
    })
}

/// [`lifecycle::activate`] in the same context, with these approvals recorded.
pub fn activate_with(
    request: Request,
    approvals: &[Approval],
    grant_id: &str,
    at: Timestamp,
) -> Result<lifecycle::Outcome, CoreError> {
    with_standing(&request.clone(), approvals, |standing| {
        lifecycle::activate(request, grant_id, standing, at)
    })
}

pub fn person(id: &str, kind: IdentityKind, roles: &[&str], sites: &[&str]) -> Identity {
    let i = person_unregistered(id, kind, roles, sites);
    remember(&i);
    i
}

fn person_unregistered(id: &str, kind: IdentityKind, roles: &[&str], sites: &[&str]) -> Identity {
    Identity {
        id: id.into(),
        kind,
        name: String::new(),
        org: (kind == IdentityKind::Vendor).then(|| "acme".to_string()),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        groups: vec![],
        sites: sites.iter().map(|s| s.to_string()).collect(),
        owners: vec![],
        status: IdentityStatus::Active,
    }
}

pub fn plc() -> Asset {
    Asset {
        id: "plc-7".into(),
        name: String::new(),
        kind: AssetKind::Plc,
        site: "north".into(),
        zone: None,
        criticality: Criticality::Safety,
        enforcement: Enforcement::Brokered,
        endpoints: Endpoints {
            modbus: Some(ModbusEndpoint {
                address: "127.0.0.1:502".into(),
                unit_ids: vec![1],
            }),
            dnp3: None,
            ssh: None,
        },
        limitation: None,
        compensating_controls: vec![],
        lockout: false,
        gateway: None,
    }
}

pub fn write_scope() -> Scope {
    let a = plc();
    let mut items = parse_rule(&a, Protocol::Modbus, "read holding 0-99 unit 1").unwrap();
    items.extend(parse_rule(&a, Protocol::Modbus, "write coil 10-20 unit 1").unwrap());
    Scope::new(items).unwrap()
}

pub fn decision(approvals: u32, max_secs: i64, step_up: bool) -> Decision {
    Decision {
        allowed: true,
        determining_policies: vec!["test-permit".into()],
        policy_set_hash: "sha256:test".into(),
        obligations: Obligations {
            approvals,
            approver_roles: vec!["engineer".into()],
            approver_groups: vec![],
            approver_site: Some(ApproverSite::Asset),
            max_duration_secs: max_secs,
            step_up,
            step_up_passkey: false,
            review: false,
            attestation: false,
        },
        reasons: vec![],
    }
}

pub fn new_request(requester: &Identity, duration_secs: i64, path: AccessPath) -> NewRequest {
    NewRequest {
        id: "req-1".into(),
        requester: requester.clone(),
        subject: requester.clone(),
        scope: write_scope(),
        window_start: None,
        duration_secs,
        reason: "replace valve positioner".into(),
        reference: "WO-1234".into(),
        path,
        filed_with_key: None,
    }
}
