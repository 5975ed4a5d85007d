use super::*;
use chrono::Duration;
use jitgate_core::lifecycle::{self, ApprovalInput, Outcome};

fn approve_as(
    out: &Outcome,
    who: &Identity,
    approvals: &[Approval],
    at: Timestamp,
    step_up: bool,
) -> Result<Outcome, CoreError> {
    decide(
        out.request.clone(),
        who,
        ApprovalInput {
            approval_id: format!("appr-{}", who.id),
            verdict: ApprovalVerdict::Approve,
            scope_digest: out.request.scope_digest.clone(),
            comment: String::new(),
            step_up: step_up.then_some(jitgate_core::passkey::StepUpMethod::Totp),
        },
        approvals,
        &["north".to_string()],
        at,
    )
}

#[test]
fn two_of_n_approvals_then_grant_within_policy_maximum() {
    let vera = person("vera", IdentityKind::Vendor, &[], &[]);
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let bob = person("bob", IdentityKind::Human, &["engineer"], &["north"]);
    let out = submit(
        new_request(&vera, 7200, AccessPath::Planned),
        decision(2, 7200, false),
        "g-1",
        t0(),
    )
    .unwrap();
    assert_eq!(out.request.state, RequestState::Pending);
    assert_eq!(out.events.len(), 2, "submitted + decided");

    let a1 = approve_as(&out, &alice, &[], t0(), false).unwrap();
    assert_eq!(a1.request.state, RequestState::Pending);
    let first = a1.approval.clone().unwrap();
    assert_eq!(first.scope_digest, out.request.scope_digest);

    // The same approver again does not count twice.
    let again = approve_as(&a1, &alice, std::slice::from_ref(&first), t0(), false).unwrap_err();
    assert_eq!(again.code(), "already_approved");

    let a2 = approve_as(&a1, &bob, std::slice::from_ref(&first), t0(), false).unwrap();
    assert_eq!(a2.request.state, RequestState::Approved);
    assert!(a2
        .events
        .iter()
        .any(|e| e.kind == EventKind::RequestApproved));

    let at = t0() + Duration::minutes(5);
    let approvals = [first.clone(), a2.approval.clone().unwrap()];
    let g = activate_with(a2.request, &approvals, "g-1", at).unwrap();
    let grant = g.grant.unwrap();
    assert_eq!(grant.not_before, at);
    // The window is start+2h; activated 5 minutes late it still closes at start+2h.
    assert_eq!(grant.expires_at, t0() + Duration::hours(2));
    assert_eq!(grant.scope_digest, out.request.scope_digest);
}

#[test]
fn separation_of_duties() {
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let out = submit(
        new_request(&alice, 3600, AccessPath::Planned),
        decision(1, 7200, false),
        "g",
        t0(),
    )
    .unwrap();
    let err = approve_as(&out, &alice, &[], t0(), false).unwrap_err();
    assert_eq!(err.code(), "separation_of_duties");

    // A workload's owner requests for it; the workload cannot approve, nor can the owner.
    let mut svc = person("svc", IdentityKind::Workload, &["engineer"], &["north"]);
    svc.owners = vec!["alice".into()];
    let mut req = new_request(&alice, 3600, AccessPath::Planned);
    req.subject = svc.clone();
    let out = submit(req, decision(1, 7200, false), "g", t0()).unwrap();
    assert_eq!(
        approve_as(&out, &svc, &[], t0(), false).unwrap_err().code(),
        "not_eligible_approver"
    );
    assert_eq!(
        approve_as(&out, &alice, &[], t0(), false)
            .unwrap_err()
            .code(),
        "separation_of_duties"
    );
}

#[test]
fn eligibility_roles_and_site() {
    let vera = person("vera", IdentityKind::Vendor, &[], &[]);
    let out = submit(
        new_request(&vera, 3600, AccessPath::Planned),
        decision(1, 7200, false),
        "g",
        t0(),
    )
    .unwrap();
    let operator = person("oscar", IdentityKind::Human, &["operator"], &["north"]);
    assert_eq!(
        approve_as(&out, &operator, &[], t0(), false)
            .unwrap_err()
            .code(),
        "not_eligible_approver"
    );
    let carol = person("carol", IdentityKind::Human, &["engineer"], &["south"]);
    let err = approve_as(&out, &carol, &[], t0(), false).unwrap_err();
    assert!(err.to_string().contains("site north"), "{err}");
    let other_vendor = person("val", IdentityKind::Vendor, &["engineer"], &["north"]);
    assert_eq!(
        approve_as(&out, &other_vendor, &[], t0(), false)
            .unwrap_err()
            .code(),
        "not_eligible_approver"
    );
}

/// `@step_up("passkey")`: a TOTP code does not do, a passkey bound to the request does.
#[test]
fn a_policy_can_require_a_passkey() {
    let vera = person("vera", IdentityKind::Vendor, &[], &[]);
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let mut d = decision(1, 3600, true);
    d.obligations.step_up_passkey = true;
    let out = submit(new_request(&vera, 3600, AccessPath::Planned), d, "g", t0()).unwrap();
    let with = |step_up| {
        decide(
            out.request.clone(),
            &alice,
            ApprovalInput {
                approval_id: "a".into(),
                verdict: ApprovalVerdict::Approve,
                scope_digest: out.request.scope_digest.clone(),
                comment: String::new(),
                step_up,
            },
            &[],
            &["north".into()],
            t0(),
        )
    };
    assert_eq!(with(None).unwrap_err().code(), "step_up_required");
    let totp = with(Some(jitgate_core::passkey::StepUpMethod::Totp));
    assert_eq!(totp.unwrap_err().code(), "passkey_required");
    let passkey = with(Some(jitgate_core::passkey::StepUpMethod::Passkey {
        credential_id: "cred-1".into(),
    }));
    assert!(passkey.is_ok(), "{:?}", passkey.err());
    // A denial needs no step-up at all.
    let deny = decide(
        out.request.clone(),
        &alice,
        ApprovalInput {
            approval_id: "b".into(),
            verdict: ApprovalVerdict::Deny,
            scope_digest: out.request.scope_digest.clone(),
            comment: "no".into(),
            step_up: None,
        },
        &[],
        &["north".into()],
        t0(),
    );
    assert!(deny.is_ok());
}

#[test]
fn step_up_digest_and_lapse() {
    let vera = person("vera", IdentityKind::Vendor, &[], &[]);
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let out = submit(
        new_request(&vera, 3600, AccessPath::Planned),
        decision(1, 7200, true),
        "g",
        t0(),
    )
    .unwrap();
    assert_eq!(
        approve_as(&out, &alice, &[], t0(), false)
            .unwrap_err()
            .code(),
        "step_up_required"
    );

    let wrong_digest = decide(
        out.request.clone(),
        &alice,
        ApprovalInput {
            approval_id: "a".into(),
            verdict: ApprovalVerdict::Approve,
            scope_digest: "sha256:other".into(),
            comment: String::new(),
            step_up: Some(jitgate_core::passkey::StepUpMethod::Totp),
        },
        &[],
        &["north".into()],
        t0(),
    )
    .unwrap_err();
    assert_eq!(wrong_digest.code(), "scope_digest_mismatch");

    let late = t0() + Duration::hours(2);
    assert_eq!(
        approve_as(&out, &alice, &[], late, true)
            .unwrap_err()
            .code(),
        "request_lapsed"
    );
    assert!(lifecycle::due_for_lapse(&out.request, late));
    let lapsed = lifecycle::lapse(out.request.clone(), late).unwrap();
    assert_eq!(lapsed.request.state, RequestState::Lapsed);
    assert_eq!(
        approve_as(&lapsed, &alice, &[], late, true)
            .unwrap_err()
            .code(),
        "request_lapsed"
    );
}

#[test]
fn duration_above_policy_maximum_is_refused() {
    let vera = person("vera", IdentityKind::Vendor, &[], &[]);
    let err = submit(
        new_request(&vera, 4 * 3600, AccessPath::Planned),
        decision(2, 7200, false),
        "g",
        t0(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        CoreError::DurationAboveMaximum {
            requested_secs: 14400,
            max_secs: 7200
        }
    );
}

#[test]
fn denial_is_recorded_with_reasons() {
    let vera = person("vera", IdentityKind::Vendor, &[], &[]);
    let mut d = decision(2, 7200, false);
    d.allowed = false;
    d.reasons = vec!["denied by policy `no-vendors`: vendors may not".into()];
    let out = submit(new_request(&vera, 3600, AccessPath::Planned), d, "g", t0()).unwrap();
    assert_eq!(out.request.state, RequestState::Denied);
    assert!(out.request.state_reason.unwrap().contains("no-vendors"));
    assert!(out.grant.is_none());
}

#[test]
fn break_glass_is_active_at_once_and_reviewed() {
    let oscar = person("oscar", IdentityKind::Human, &["oncall"], &["north"]);
    let mut d = decision(0, 1800, false);
    d.obligations.review = true;
    let out = submit(
        new_request(&oscar, 1800, AccessPath::Emergency),
        d,
        "g-bg",
        t0(),
    )
    .unwrap();
    assert_eq!(out.request.state, RequestState::Active);
    let g = out.grant.unwrap();
    assert!(g.emergency && g.review_required);
    assert_eq!(g.expires_at, t0() + Duration::minutes(30));
    assert!(out.events.iter().any(|e| e.kind == EventKind::GrantIssued));
}

#[test]
fn expiry_is_recorded_at_expires_at_even_when_noticed_late() {
    let oscar = person("oscar", IdentityKind::Human, &["oncall"], &["north"]);
    let out = submit(
        new_request(&oscar, 1800, AccessPath::Emergency),
        decision(0, 1800, false),
        "g",
        t0(),
    )
    .unwrap();
    let grant = out.grant.unwrap();
    let much_later = t0() + Duration::hours(5);
    assert!(lifecycle::due_for_expiry(&grant, much_later));
    let ended = lifecycle::end_grant(
        out.request,
        grant.clone(),
        EndReason::Expired,
        Actor::scheduler(),
        much_later,
    )
    .unwrap();
    let g = ended.grant.unwrap();
    assert_eq!(g.state, GrantState::Ending);
    assert_eq!(g.ended_at, Some(grant.expires_at));
    assert_eq!(ended.request.state, RequestState::Ending);
}

#[test]
fn revocation_needs_a_reason_and_an_active_grant() {
    let oscar = person("oscar", IdentityKind::Human, &["oncall"], &["north"]);
    let out = submit(
        new_request(&oscar, 1800, AccessPath::Emergency),
        decision(0, 1800, false),
        "g",
        t0(),
    )
    .unwrap();
    let grant = out.grant.clone().unwrap();
    let no_reason = EndReason::Revoked {
        by: "sam".into(),
        reason: " ".into(),
    };
    assert_eq!(
        lifecycle::end_grant(
            out.request.clone(),
            grant.clone(),
            no_reason,
            Actor::identity("sam"),
            t0()
        )
        .unwrap_err()
        .code(),
        "invalid_request"
    );
    let reason = EndReason::Revoked {
        by: "sam".into(),
        reason: "done early".into(),
    };
    let ended = lifecycle::end_grant(
        out.request,
        grant,
        reason.clone(),
        Actor::identity("sam"),
        t0(),
    )
    .unwrap();
    let again = lifecycle::end_grant(
        ended.request,
        ended.grant.unwrap(),
        reason,
        Actor::identity("sam"),
        t0(),
    )
    .unwrap_err();
    assert_eq!(again.code(), "wrong_state");
}

#[test]
fn event_canonical_bytes_are_deterministic() {
    let e = Event::new(EventKind::GrantIssued, Actor::scheduler(), t0())
        .request("req-1")
        .grant("g-1")
        .data(serde_json::json!({"z": 1, "a": {"y": 2, "b": 3}}));
    let text = String::from_utf8(e.canonical_bytes()).unwrap();
    assert_eq!(
        text,
        r#"{"actor":"system:scheduler","at":"2026-11-01T08:00:00.000Z","data":{"a":{"b":3,"y":2},"z":1},"grant_id":"g-1","kind":"grant.issued","request_id":"req-1","v":2}"#
    );
    let back: Event = serde_json::from_slice(text.as_bytes()).unwrap();
    assert_eq!(back.canonical_bytes(), e.canonical_bytes());
}

#[test]
fn events_before_version_2_keep_their_canonical_form() {
    // A text written before JCS (no "v"): re-encoded under its own version, byte for byte.
    let v1 = r#"{"actor":"system:scheduler","at":"2026-11-01T08:00:00.000Z","data":{"a":{"b":3,"y":2},"z":1},"grant_id":"g-1","kind":"grant.issued","request_id":"req-1"}"#;
    let back: Event = serde_json::from_str(v1).unwrap();
    assert_eq!(back.canonical_version, None);
    assert_eq!(back.canonical_bytes(), v1.as_bytes());
    // An unknown version never has a canonical form (so it never verifies).
    let v9 = v1.replace("}", r#","v":9}"#);
    let v9 = v9.replacen(r#","v":9}"#, "}", v9.matches(r#","v":9}"#).count() - 1);
    let unknown: Event = serde_json::from_str(&v9).unwrap();
    assert_eq!(unknown.canonical_version, Some(9));
    assert!(unknown.canonical_bytes().is_empty());
}

#[test]
fn version_2_is_rfc_8785() {
    // RFC 8785 §3.2.3 sorts keys by UTF-16 code units: U+FB33 (one unit, 0xFB33) sorts after
    // U+1D11E (two units, 0xD834 0xDD1E), which UTF-8 byte order puts the other way round.
    let e =
        Event::new(EventKind::Operation, Actor::identity("gw-1"), t0()).data(serde_json::json!({
            "\u{FB33}": 1, "\u{1D11E}": 2, "n": 1e21, "f": 4.5, "neg0": -0.0, "s": "tab\t\u{7f}é"
        }));
    let text = String::from_utf8(e.canonical_bytes()).unwrap();
    let data = text
        .split(r#""data":"#)
        .nth(1)
        .unwrap()
        .split(r#","kind""#)
        .next()
        .unwrap();
    assert_eq!(
        data,
        "{\"f\":4.5,\"n\":1e+21,\"neg0\":0,\"s\":\"tab\\t\u{7f}é\",\"\u{1D11E}\":2,\"\u{FB33}\":1}"
    );
}

#[test]
fn withdrawing_an_approval_depends_on_the_request_state() {
    let carol = person("carol", IdentityKind::Human, &["engineer"], &["north"]);
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let bob = person("bob", IdentityKind::Human, &["engineer"], &["north"]);
    let out = submit(
        new_request(&carol, 3600, AccessPath::Planned),
        decision(2, 3600, false),
        "g-1",
        t0(),
    )
    .unwrap();
    let a1 = approve_as(&out, &alice, &[], t0(), false).unwrap();
    let first = a1.approval.clone().unwrap();
    // Only the approver, only with a reason.
    let err =
        lifecycle::withdraw_approval(a1.request.clone(), &first, "bob", "x", t0()).unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let err =
        lifecycle::withdraw_approval(a1.request.clone(), &first, "alice", " ", t0()).unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    // Pending: stays pending.
    let (r, effect, event) =
        lifecycle::withdraw_approval(a1.request.clone(), &first, "alice", "changed my mind", t0())
            .unwrap();
    assert_eq!(effect, lifecycle::WithdrawalEffect::StillPending);
    assert_eq!(r.state, RequestState::Pending);
    assert_eq!(event.kind, EventKind::ApprovalWithdrawn);
    assert_eq!(event.approval_id.as_deref(), Some(first.id.as_str()));
    // Approved (window not open yet): back to pending.
    let a2 = approve_as(&a1, &bob, std::slice::from_ref(&first), t0(), false).unwrap();
    assert_eq!(a2.request.state, RequestState::Approved);
    let (r, effect, event) =
        lifecycle::withdraw_approval(a2.request.clone(), &first, "alice", "work postponed", t0())
            .unwrap();
    assert_eq!(effect, lifecycle::WithdrawalEffect::BackToPending);
    assert_eq!(r.state, RequestState::Pending);
    assert_eq!(event.state_after.as_deref(), Some("pending"));
    // Active: the grant must end.
    let approvals = [first.clone(), a2.approval.clone().unwrap()];
    let g = activate_with(a2.request, &approvals, "g-1", t0()).unwrap();
    let (r, effect, _) =
        lifecycle::withdraw_approval(g.request.clone(), &first, "alice", "incident", t0()).unwrap();
    assert_eq!(effect, lifecycle::WithdrawalEffect::EndGrant);
    assert_eq!(r.state, RequestState::Active);
    // Ended: nothing to withdraw.
    let ended = lifecycle::end_grant(
        g.request,
        g.grant.unwrap(),
        EndReason::Expired,
        Actor::scheduler(),
        t0() + Duration::hours(2),
    )
    .unwrap();
    let err = lifecycle::withdraw_approval(ended.request.clone(), &first, "alice", "late", t0())
        .unwrap_err();
    assert_eq!(err.code(), "wrong_state");
    // Closing: only an ending grant, once its teardown verdict is final.
    use jitgate_core::teardown::TeardownVerdict;
    let failed = lifecycle::close_grant(
        ended.request.clone(),
        ended.grant.clone().unwrap(),
        TeardownVerdict::Failed,
        &[],
        false,
        t0(),
    );
    assert!(
        failed.is_err(),
        "a failed teardown does not close the grant"
    );
    let closed = lifecycle::close_grant(
        ended.request,
        ended.grant.unwrap(),
        TeardownVerdict::Verified,
        &[41, 42],
        true,
        t0() + Duration::hours(2),
    )
    .unwrap();
    assert_eq!(
        closed.events[0].data["session_ended_events"],
        serde_json::json!([41, 42])
    );
    assert_eq!(closed.request.state, RequestState::Closed);
    assert_eq!(closed.grant.as_ref().unwrap().state, GrantState::Closed);
    assert_eq!(closed.events[0].kind, EventKind::TeardownVerdict);
    assert_eq!(closed.events[0].data["verdict"], "verified");
    let err = lifecycle::close_grant(
        closed.request,
        closed.grant.unwrap(),
        TeardownVerdict::Verified,
        &[],
        false,
        t0(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "wrong_state");
}

#[test]
fn transitions_name_their_effects() {
    use lifecycle::{Effect, ReviewReason};
    let alice = person(
        "alice",
        IdentityKind::Human,
        &["engineer", "oncall"],
        &["north"],
    );
    let bob = person("bob", IdentityKind::Human, &["engineer"], &["north"]);
    let pending = submit(
        new_request(&alice, 3600, AccessPath::Planned),
        decision(1, 7200, false),
        "g-1",
        t0(),
    )
    .unwrap();
    assert_eq!(pending.effects, vec![Effect::AskApprovers]);
    let approved = approve_as(&pending, &bob, &[], t0(), false).unwrap();
    assert!(
        approved.effects.is_empty(),
        "approving alone announces nothing"
    );
    let issued = activate_with(
        approved.request.clone(),
        &[approved.approval.clone().unwrap()],
        "g-1",
        t0(),
    )
    .unwrap();
    assert_eq!(issued.effects, vec![Effect::AnnounceGrant]);
    let ended = lifecycle::end_grant(
        issued.request,
        issued.grant.unwrap(),
        EndReason::Expired,
        Actor::scheduler(),
        t0() + Duration::hours(2),
    )
    .unwrap();
    assert_eq!(ended.effects, vec![Effect::PushRevocation]);
    let mut new = new_request(&alice, 1800, AccessPath::Emergency);
    new.id = "req-2".into();
    let glass = submit(new, decision(0, 3600, false), "g-2", t0()).unwrap();
    assert_eq!(
        glass.effects,
        vec![
            Effect::AnnounceGrant,
            Effect::OpenReview(ReviewReason::BreakGlass)
        ]
    );
}
