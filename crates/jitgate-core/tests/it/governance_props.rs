//! Governance under random sequences: whatever happens to the context between filing and
//! use — owners of the workload change, identities are disabled and re-enabled, the vendor
//! org is suspended, the asset is locked out, the policy set starts to deny — no conflicted
//! approver ever counts, and no grant becomes or stays active (after a reconsideration) whose
//! subject is disabled, whose org is suspended, whose asset is locked out, or that the
//! current policy set denies.

use super::*;
use jitgate_core::governance::{self, FiledWithKey, Parties, Standing};
use jitgate_core::lifecycle::{self, ApprovalInput, Outcome};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// people[i] approves (conflicted or not: the core must refuse the conflicted ones).
    Approve(usize),
    /// The workload's only owner becomes people[i].
    SetOwner(usize),
    ToggleSubjectDisabled,
    ToggleRequesterDisabled,
    ToggleOrgSuspended,
    ToggleLockout,
    TogglePolicyDenies,
    ToggleKeyRevoked,
    Activate,
    Reconsider,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4usize).prop_map(Op::Approve),
        1 => (0..4usize).prop_map(Op::SetOwner),
        1 => Just(Op::ToggleSubjectDisabled),
        1 => Just(Op::ToggleRequesterDisabled),
        1 => Just(Op::ToggleOrgSuspended),
        1 => Just(Op::ToggleLockout),
        1 => Just(Op::TogglePolicyDenies),
        1 => Just(Op::ToggleKeyRevoked),
        2 => Just(Op::Activate),
        2 => Just(Op::Reconsider),
    ]
}

/// The world now: the parties as the inventory has them, and everything a request's standing
/// depends on.
struct World {
    people: Vec<Identity>,
    /// The workload that files the request for itself, with an API key minted by `bob`.
    workload: Identity,
    org: Org,
    asset: Asset,
    policy_denies: bool,
    key_revoked: bool,
    request: Request,
    grant: Option<Grant>,
    approvals: Vec<Approval>,
}

impl World {
    fn decision(&self) -> Decision {
        let mut d = self.request.decision.clone();
        if self.policy_denies {
            d.allowed = false;
            d.reasons = vec!["forbid-test".into()];
        }
        d
    }

    fn parties(&self) -> Parties<'_> {
        Parties {
            requester: &self.workload,
            subject: &self.workload,
            exception_owner: None,
        }
    }

    /// Is everything that must hold for access to be active true right now?
    fn context_good(&self) -> bool {
        self.workload.is_active()
            && self.org.status == OrgStatus::Active
            && !self.asset.lockout
            && !self.policy_denies
            && !self.key_revoked
    }

    fn counting(&self) -> u32 {
        governance::counting_approvers(&self.request, &self.approvals, &self.parties()).len() as u32
    }

    fn apply(&mut self, out: Outcome) {
        self.request = out.request;
        if let Some(g) = out.grant {
            self.grant = Some(g);
        }
        if let Some(a) = out.approval {
            self.approvals.push(a);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn no_sequence_lets_a_conflict_count_or_a_bad_context_hold_access(
        ops in proptest::collection::vec(op(), 1..40),
        required in 1u32..3,
    ) {
        let people = vec![
            person("alice", IdentityKind::Human, &["engineer"], &["north"]),
            person("bob", IdentityKind::Human, &["engineer"], &["north"]),
            person("carol", IdentityKind::Human, &["engineer"], &["north"]),
            person("dave", IdentityKind::Human, &["engineer"], &["north"]),
        ];
        let mut workload = person("svc-export", IdentityKind::Workload, &[], &[]);
        workload.org = Some("acme".into());
        workload.owners = vec!["alice".into()];
        let mut new = new_request(&workload, 3600, AccessPath::Routine);
        new.filed_with_key = Some(FiledWithKey { key_id: "key-1".into(), minted_by: Some("bob".into()) });
        let out = submit(new, decision(required, 7200, false), "g-1", t0()).unwrap();
        prop_assert_eq!(out.request.state, RequestState::Pending);
        let mut w = World {
            people,
            workload,
            org: orgs().remove(0),
            asset: plc(),
            policy_denies: false,
            key_revoked: false,
            request: out.request,
            grant: None,
            approvals: vec![],
        };
        let sites = vec!["north".to_string()];
        let now = t0();
        for op in ops {
            let decision = w.decision();
            let orgs = vec![w.org.clone()];
            let assets = vec![w.asset.clone()];
            let standing = Standing {
                requester: Some(&w.workload),
                subject: Some(&w.workload),
                orgs: &orgs,
                assets: &assets,
                decision: &decision,
                approvals: &w.approvals,
                filing_key_usable: Some(!w.key_revoked),
                exception_owner: None,
            };
            let was_active = w.grant.as_ref().is_some_and(|g| g.state == GrantState::Active);
            let result = match op {
                Op::Approve(i) => {
                    let approver = w.people[i].clone();
                    let input = ApprovalInput {
                        approval_id: format!("a-{}", w.approvals.len()),
                        verdict: ApprovalVerdict::Approve,
                        scope_digest: w.request.scope_digest.clone(),
                        comment: String::new(),
                        step_up: None,
                    };
                    let conflicted = governance::conflict_of_interest(&approver.id, &w.request, &w.parties()).is_some();
                    let r = lifecycle::decide(w.request.clone(), &approver, input, &w.approvals, &sites, &standing, now);
                    if conflicted {
                        prop_assert!(r.is_err(), "{} is conflicted yet their approval was taken", approver.id);
                    }
                    r
                }
                Op::SetOwner(i) => { w.workload.owners = vec![w.people[i].id.clone()]; continue; }
                Op::ToggleSubjectDisabled | Op::ToggleRequesterDisabled => {
                    w.workload.status = if w.workload.is_active() { IdentityStatus::Disabled } else { IdentityStatus::Active };
                    continue;
                }
                Op::ToggleOrgSuspended => {
                    w.org.status = if w.org.status == OrgStatus::Active { OrgStatus::Suspended } else { OrgStatus::Active };
                    continue;
                }
                Op::ToggleLockout => { w.asset.lockout = !w.asset.lockout; continue; }
                Op::TogglePolicyDenies => { w.policy_denies = !w.policy_denies; continue; }
                Op::ToggleKeyRevoked => { w.key_revoked = !w.key_revoked; continue; }
                Op::Activate => lifecycle::activate(w.request.clone(), "g-1", &standing, now),
                Op::Reconsider => {
                    let out = lifecycle::reconsider(w.request.clone(), w.grant.clone(), &standing, jitgate_core::event::Actor::system(), now);
                    match out {
                        Ok(Some(out)) => Ok(out),
                        Ok(None) => {
                            // Nothing to do means the request or grant still stands.
                            if matches!(w.request.state, RequestState::Approved | RequestState::Active) {
                                prop_assert!(w.context_good(), "reconsider kept {:?} in a bad context", w.request.state);
                                prop_assert!(w.counting() >= required, "reconsider kept {:?} with conflicted approvals", w.request.state);
                            }
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Ok(out) = result {
                w.apply(out);
            }
            let active = w.grant.as_ref().is_some_and(|g| g.state == GrantState::Active);
            if active && !was_active {
                prop_assert!(w.context_good(), "a grant became active in a bad context");
                prop_assert!(w.counting() >= required, "a grant became active with {} counting approval(s) of {required}", w.counting());
            }
            // Approvals by identities that were conflicted when they approved never exist.
            for a in &w.approvals {
                prop_assert!(a.approver != "bob", "the key's minter approved");
            }
        }
    }
}

#[test]
fn owner_minter_requester_and_subject_are_all_conflicted() {
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let mut svc = person("svc-export", IdentityKind::Workload, &[], &[]);
    svc.owners = vec!["alice".into()];
    let mut new = new_request(&svc, 3600, AccessPath::Routine);
    new.filed_with_key = Some(FiledWithKey {
        key_id: "key-1".into(),
        minted_by: Some("bob".into()),
    });
    let out = submit(new, decision(1, 7200, false), "g-1", t0()).unwrap();
    let parties = Parties {
        requester: &svc,
        subject: &svc,
        exception_owner: None,
    };
    use governance::Conflict;
    let c = |who: &str| governance::conflict_of_interest(who, &out.request, &parties);
    assert_eq!(c("svc-export"), Some(Conflict::Subject));
    assert_eq!(c("alice"), Some(Conflict::OwnsRequester));
    assert_eq!(c("bob"), Some(Conflict::MintedFilingKey));
    assert_eq!(c("carol"), None);
    // Through the transition: the owner is refused with the separation-of-duties code.
    let err = decide(
        out.request.clone(),
        &alice,
        ApprovalInput {
            approval_id: "a-1".into(),
            verdict: ApprovalVerdict::Approve,
            scope_digest: out.request.scope_digest.clone(),
            comment: String::new(),
            step_up: None,
        },
        &[],
        &["north".to_string()],
        t0(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "separation_of_duties");
    assert!(err.to_string().contains("owns the workload"), "{err}");
}

#[test]
fn the_owner_of_a_standing_exception_never_grants_it_nor_counts_for_it() {
    let dana = person("dana-exc", IdentityKind::Human, &["engineer"], &["north"]);
    let sam = person("sam-exc", IdentityKind::Human, &["engineer"], &["north"]);
    let svc = person("svc-batch", IdentityKind::Workload, &[], &[]);
    let out = submit(
        new_request(&svc, 3600, AccessPath::Routine),
        decision(1, 7200, false),
        "g-1",
        t0(),
    )
    .unwrap();
    let parties = Parties {
        requester: &svc,
        subject: &svc,
        exception_owner: Some("dana-exc"),
    };
    use governance::Conflict;
    let c = |who: &str| governance::conflict_of_interest(who, &out.request, &parties);
    assert_eq!(c("dana-exc"), Some(Conflict::OwnsException));
    assert_eq!(c("sam-exc"), None);
    // An approval the owner recorded (before becoming the owner, or through a path that
    // skipped the check) does not count toward the approvals needed.
    let approval = |who: &str| Approval {
        id: format!("a-{who}"),
        request_id: out.request.id.clone(),
        approver: who.to_string(),
        verdict: ApprovalVerdict::Approve,
        scope_digest: out.request.scope_digest.clone(),
        comment: String::new(),
        at: t0(),
        step_up: false,
    };
    let recorded = [approval("dana-exc"), approval("sam-exc")];
    let counting = governance::counting_approvers(&out.request, &recorded, &parties);
    assert_eq!(counting.into_iter().collect::<Vec<_>>(), vec!["sam-exc"]);
    // Through the transition: the owner is refused with the separation-of-duties code.
    let (orgs, assets, d) = (orgs(), vec![plc()], out.request.decision.clone());
    let standing = Standing {
        requester: Some(&svc),
        subject: Some(&svc),
        orgs: &orgs,
        assets: &assets,
        decision: &d,
        approvals: &[],
        filing_key_usable: None,
        exception_owner: Some("dana-exc"),
    };
    let input = |who: &str| ApprovalInput {
        approval_id: format!("a-{who}"),
        verdict: ApprovalVerdict::Approve,
        scope_digest: out.request.scope_digest.clone(),
        comment: String::new(),
        step_up: None,
    };
    let err = lifecycle::decide(
        out.request.clone(),
        &dana,
        input("dana-exc"),
        &[],
        &["north".to_string()],
        &standing,
        t0(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "separation_of_duties");
    assert!(
        err.to_string().contains("owner of the standing exception"),
        "{err}"
    );
    let approved = lifecycle::decide(
        out.request.clone(),
        &sam,
        input("sam-exc"),
        &[],
        &["north".to_string()],
        &standing,
        t0(),
    )
    .unwrap();
    assert_eq!(
        approved.approval.map(|a| a.approver).as_deref(),
        Some("sam-exc")
    );
}

#[test]
fn gateways_never_request_nor_hold_access() {
    let mut gw = person("gw-north", IdentityKind::Workload, &["gateway"], &[]);
    gw.owners = vec!["alice".into()];
    let err = submit(
        new_request(&gw, 600, AccessPath::Routine),
        decision(0, 3600, false),
        "g-1",
        t0(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    assert!(err.to_string().contains("gateway"), "{err}");
}

#[test]
fn an_approval_of_a_request_that_no_longer_stands_lapses_it_with_the_reason() {
    let vera = person("vera", IdentityKind::Vendor, &[], &[]);
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let out = submit(
        new_request(&vera, 3600, AccessPath::Planned),
        decision(1, 7200, false),
        "g-1",
        t0(),
    )
    .unwrap();
    let mut locked = plc();
    locked.lockout = true;
    let (orgs, assets, decision) = (orgs(), vec![locked], out.request.decision.clone());
    let standing = Standing {
        requester: Some(&vera),
        subject: Some(&vera),
        orgs: &orgs,
        assets: &assets,
        decision: &decision,
        approvals: &[],
        filing_key_usable: None,
        exception_owner: None,
    };
    let input = ApprovalInput {
        approval_id: "a-1".into(),
        verdict: ApprovalVerdict::Approve,
        scope_digest: out.request.scope_digest.clone(),
        comment: String::new(),
        step_up: None,
    };
    let voided = lifecycle::decide(
        out.request,
        &alice,
        input,
        &[],
        &["north".into()],
        &standing,
        t0(),
    )
    .unwrap();
    assert_eq!(voided.request.state, RequestState::Lapsed);
    assert!(voided.approval.is_none(), "no approval is recorded");
    let refused = voided.refused.unwrap();
    assert_eq!(refused.code(), "no_longer_allowed");
    assert!(
        refused.to_string().contains("plc-7 locked out"),
        "{refused}"
    );
    assert_eq!(voided.events[0].kind, EventKind::RequestLapsed);
    assert_eq!(voided.events[0].data["hold"]["kind"], "asset_locked_out");
}

#[test]
fn the_last_administrator_stays() {
    let admin = person("root", IdentityKind::Human, &["admin"], &[]);
    let mut disabled = admin.clone();
    disabled.status = IdentityStatus::Disabled;
    let err =
        governance::keeps_an_admin(std::slice::from_ref(&admin), &[disabled.clone()]).unwrap_err();
    assert_eq!(err.code(), "last_administrator");
    let other = person("root2", IdentityKind::Human, &["admin"], &[]);
    assert!(
        governance::keeps_an_admin(&[admin.clone(), other.clone()], &[disabled, other]).is_ok()
    );
    // A fresh server with no administrator yet is not blocked by the rule.
    assert!(governance::keeps_an_admin(&[], &[]).is_ok());
}
