//! Random operation sequences against the lifecycle never reach an invalid state, never let
//! a grant outlive expires-at once the scheduler has run, and never count an approver twice.

use super::*;
use chrono::Duration;
use jitgate_core::lifecycle::{self, ApprovalInput, Outcome};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Approve(usize, bool),
    Deny(usize),
    Withdraw(usize),
    Advance(i64),
    Tick,
    Revoke(usize),
    Complete(usize),
    Activate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..5usize, any::<bool>()).prop_map(|(i, s)| Op::Approve(i, s)),
        (0..5usize).prop_map(Op::Deny),
        (0..5usize).prop_map(Op::Withdraw),
        (1..4000i64).prop_map(Op::Advance),
        Just(Op::Tick),
        (0..5usize).prop_map(Op::Revoke),
        (0..5usize).prop_map(Op::Complete),
        Just(Op::Activate),
    ]
}

fn cast() -> Vec<Identity> {
    vec![
        person("vera", IdentityKind::Vendor, &[], &[]),
        person("alice", IdentityKind::Human, &["engineer"], &["north"]),
        person("bob", IdentityKind::Human, &["engineer"], &["north"]),
        person("carol", IdentityKind::Human, &["engineer"], &["south"]),
        person("dave", IdentityKind::Human, &["engineer"], &["north"]),
    ]
}

struct World {
    request: Request,
    grant: Option<Grant>,
    approvals: Vec<Approval>,
    now: Timestamp,
    max_secs: i64,
}

impl World {
    fn apply(&mut self, out: Outcome) {
        let before = self.request.state;
        let after = out.request.state;
        assert!(
            allowed_transition(before, after),
            "illegal transition {before:?} -> {after:?}"
        );
        self.request = out.request;
        if let Some(g) = out.grant {
            self.grant = Some(g);
        }
        if let Some(a) = out.approval {
            self.approvals.push(a);
        }
    }
}

fn allowed_transition(from: RequestState, to: RequestState) -> bool {
    use RequestState::*;
    from == to
        || matches!(
            (from, to),
            (Pending, Approved | Denied | Withdrawn | Lapsed)
                | (Approved, Active | Withdrawn | Lapsed)
                | (Active, Ending)
                | (Ending, Closed)
        )
}

fn check_invariants(w: &World) {
    let approvers: Vec<&str> = w.approvals.iter().map(|a| a.approver.as_str()).collect();
    let mut dedup = approvers.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(
        dedup.len(),
        approvers.len(),
        "an approver counted twice: {approvers:?}"
    );
    assert!(
        !approvers.contains(&w.request.requester.as_str()),
        "requester approved own request"
    );
    for a in &w.approvals {
        assert_eq!(
            a.scope_digest, w.request.scope_digest,
            "approval bound to another scope"
        );
    }
    match (&w.grant, w.request.state) {
        (Some(g), s) => {
            assert!(
                g.expires_at <= g.not_before + Duration::seconds(w.max_secs),
                "grant beyond policy maximum"
            );
            assert!(
                g.expires_at <= w.request.window_end(),
                "grant beyond its window"
            );
            assert_eq!(g.scope_digest, w.request.scope_digest);
            assert_eq!(
                g.state == GrantState::Active,
                s == RequestState::Active,
                "grant/request states disagree"
            );
            if let Some(end) = g.ended_at {
                assert!(end <= g.expires_at, "ended after expiry");
            }
            let yes = w
                .approvals
                .iter()
                .filter(|a| a.verdict == ApprovalVerdict::Approve)
                .count() as u32;
            assert!(
                yes >= w.request.decision.obligations.approvals,
                "granted with too few approvals"
            );
        }
        (None, s) => assert!(
            !matches!(
                s,
                RequestState::Active | RequestState::Ending | RequestState::Closed
            ),
            "state {s:?} without a grant"
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn random_sequences_keep_the_lifecycle_sound(ops in proptest::collection::vec(op(), 1..40), approvals in 1u32..4, max_hours in 1i64..4) {
        let people = cast();
        let max_secs = max_hours * 3600;
        let d = decision(approvals, max_secs, false);
        let out = submit(new_request(&people[0], 3600, AccessPath::Planned), d, "g-1", t0()).unwrap();
        let mut w = World { request: out.request, grant: None, approvals: vec![], now: t0(), max_secs };
        let sites = vec!["north".to_string()];
        for op in ops {
            let result = match op {
                Op::Approve(i, step) => {
                    decide(w.request.clone(), &people[i], ApprovalInput {
                        approval_id: format!("a-{}", w.approvals.len()),
                        verdict: ApprovalVerdict::Approve,
                        scope_digest: w.request.scope_digest.clone(),
                        comment: String::new(),
                        step_up: step.then_some(jitgate_core::passkey::StepUpMethod::Totp),
                    }, &w.approvals, &sites, w.now)
                }
                Op::Deny(i) => decide(w.request.clone(), &people[i], ApprovalInput {
                    approval_id: format!("a-{}", w.approvals.len()),
                    verdict: ApprovalVerdict::Deny,
                    scope_digest: w.request.scope_digest.clone(),
                    comment: "no".into(),
                    step_up: None,
                }, &w.approvals, &sites, w.now),
                Op::Withdraw(i) => lifecycle::withdraw(w.request.clone(), &people[i].id, w.now),
                Op::Advance(secs) => { w.now += Duration::seconds(secs); continue; }
                Op::Activate => activate_with(w.request.clone(), &w.approvals, "g-1", w.now),
                Op::Revoke(i) | Op::Complete(i) => match w.grant.clone() {
                    Some(g) => {
                        let reason = if matches!(op, Op::Revoke(_)) {
                            EndReason::Revoked { by: people[i].id.clone(), reason: "test".into() }
                        } else {
                            EndReason::Completed { by: people[i].id.clone() }
                        };
                        lifecycle::end_grant(w.request.clone(), g, reason, Actor::identity(&people[i].id), w.now)
                    }
                    None => continue,
                },
                Op::Tick => {
                    // What the scheduler does, in its order.
                    if let Some(g) = w.grant.clone().filter(|g| lifecycle::due_for_expiry(g, w.now)) {
                        let out = lifecycle::end_grant(w.request.clone(), g, EndReason::Expired, Actor::scheduler(), w.now).unwrap();
                        w.apply(out);
                    }
                    if lifecycle::due_for_lapse(&w.request, w.now) {
                        let out = lifecycle::lapse(w.request.clone(), w.now).unwrap();
                        w.apply(out);
                    } else if lifecycle::due_for_activation(&w.request, w.now) {
                        let out = activate_with(w.request.clone(), &w.approvals, "g-1", w.now).unwrap();
                        w.apply(out);
                    }
                    if let Some(g) = &w.grant {
                        prop_assert!(!(g.state == GrantState::Active && w.now >= g.expires_at), "grant outlived expires-at after a scheduler pass");
                    }
                    check_invariants(&w);
                    continue;
                }
            };
            // A refused transition changes nothing (values are only replaced on success).
            if let Ok(out) = result {
                w.apply(out);
            }
            check_invariants(&w);
        }
    }
}
