//! The rules of post-session attestation and review campaigns (`attestation`, `campaign`):
//! who may attest and when, once; when one is missing; who may decide a campaign item
//! (never a party, also through owned workloads); what "end" does per kind; closing only
//! when every item is decided.

use super::*;
use chrono::Duration;
use jitgate_core::attestation::{self, AttestationInput, AttestedAs};
use jitgate_core::campaign::{
    self, CampaignState, DecisionEffect, ItemDecision, ItemKind, ItemParties, Refusal,
};
use jitgate_core::governance::Conflict;
use jitgate_core::teardown::TeardownVerdict;

/// An active grant of `subject`'s request filed by `requester` (no approval needed).
fn active(requester: &Identity, subject: &Identity) -> (Request, Grant) {
    let mut new = new_request(requester, 3600, AccessPath::Planned);
    new.subject = subject.clone();
    let out = submit(new, decision(0, 3600, false), "g-1", t0()).unwrap();
    let out = match out.grant {
        Some(_) => out,
        None => activate_with(out.request, &[], "g-1", t0()).unwrap(),
    };
    let g = out
        .grant
        .clone()
        .expect("no approval needed: active once its window opens");
    assert_eq!(g.state, GrantState::Active);
    (out.request, g)
}

fn ended(r: Request, g: Grant, at: Timestamp) -> (Request, Grant) {
    let out = lifecycle::end_grant(
        r,
        g,
        EndReason::Completed { by: "x".into() },
        Actor::system(),
        at,
    )
    .unwrap();
    (out.request, out.grant.unwrap())
}

fn workload(id: &str, owners: &[&str]) -> Identity {
    let mut w = person(id, IdentityKind::Workload, &[], &["north"]);
    w.owners = owners.iter().map(|s| s.to_string()).collect();
    remember(&w);
    w
}

#[test]
fn only_the_subject_or_a_workloads_owner_attests_after_the_session_once() {
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let bob = person(
        "bob",
        IdentityKind::Human,
        &["engineer", "security"],
        &["north"],
    );
    let (r, g) = active(&alice, &alice);
    let e = attestation::may_attest(&alice, &g, Some(&alice), false).unwrap_err();
    assert_eq!(e.code(), "wrong_state", "not while the grant is active");
    let (_, g) = ended(r, g, t0() + Duration::minutes(10));
    assert_eq!(
        attestation::may_attest(&alice, &g, Some(&alice), false).unwrap(),
        AttestedAs::Subject
    );
    // Security staff and admins do not attest for someone else.
    let e = attestation::may_attest(&bob, &g, Some(&alice), false).unwrap_err();
    assert_eq!(e.code(), "forbidden");
    // Once.
    let e = attestation::may_attest(&alice, &g, Some(&alice), true).unwrap_err();
    assert_eq!(e.code(), "already_attested");

    // A workload's grant: its owner attests; the workload itself may too (its key); no one
    // else, not even the owner of another workload.
    let svc = workload("svc-historian", &["alice"]);
    let (r, g) = active(&alice, &svc);
    let (_, g) = ended(r, g, t0() + Duration::minutes(10));
    assert_eq!(
        attestation::may_attest(&alice, &g, Some(&svc), false).unwrap(),
        AttestedAs::OwnerOfWorkload
    );
    assert_eq!(
        attestation::may_attest(&svc, &g, Some(&svc), false).unwrap(),
        AttestedAs::Subject
    );
    assert_eq!(
        attestation::may_attest(&bob, &g, Some(&svc), false)
            .unwrap_err()
            .code(),
        "forbidden"
    );
    // A subject gone from the inventory: no owner is known, so only the id itself.
    assert_eq!(
        attestation::may_attest(&alice, &g, None, false)
            .unwrap_err()
            .code(),
        "forbidden"
    );
}

#[test]
fn attestation_input_is_checked() {
    let ok = AttestationInput {
        task_done: true,
        changes: vec!["  HR 40: 80 -> 75 ".into()],
        note: " done ".into(),
    }
    .checked()
    .unwrap();
    assert_eq!(ok.changes, ["HR 40: 80 -> 75"]);
    assert_eq!(ok.note, "done");
    for bad in [
        AttestationInput {
            task_done: true,
            changes: vec!["".into()],
            note: String::new(),
        },
        AttestationInput {
            task_done: true,
            changes: vec!["a\nb".into()],
            note: String::new(),
        },
        AttestationInput {
            task_done: false,
            changes: vec!["x".into(); attestation::MAX_CHANGES + 1],
            note: String::new(),
        },
        AttestationInput {
            task_done: false,
            changes: vec![],
            note: "\u{202e}hidden".into(),
        },
    ] {
        assert!(bad.clone().checked().is_err(), "{bad:?}");
    }
}

#[test]
fn a_required_attestation_is_missing_only_after_the_grace_period() {
    let alice = person("alice", IdentityKind::Human, &["engineer"], &["north"]);
    let (r, g) = active(&alice, &alice);
    let grace = 600;
    let later = t0() + Duration::hours(5);
    assert!(
        !attestation::is_missing(true, &g, false, grace, later),
        "still active"
    );
    let end = t0() + Duration::minutes(30);
    let (_, g) = ended(r, g, end);
    assert!(!attestation::is_missing(
        true,
        &g,
        false,
        grace,
        end + Duration::seconds(599)
    ));
    assert!(attestation::is_missing(
        true,
        &g,
        false,
        grace,
        end + Duration::seconds(600)
    ));
    assert!(
        !attestation::is_missing(true, &g, true, grace, later),
        "given"
    );
    assert!(
        !attestation::is_missing(false, &g, false, grace, later),
        "not required"
    );
}

#[test]
fn reviewers_are_never_a_party_nor_related_by_ownership() {
    let alice = person(
        "alice",
        IdentityKind::Human,
        &["engineer", "security"],
        &["north"],
    );
    let sam = person(
        "sam",
        IdentityKind::Human,
        &["security", "admin"],
        &["north"],
    );
    let carol = person("carol", IdentityKind::Human, &["engineer"], &["south"]);
    let svc = workload("svc-historian", &["alice"]);
    // alice files for her workload: she owns the subject and is the requester.
    let (r, _) = active(&alice, &svc);
    let parties = ItemParties::Grant {
        request: &r,
        requester: Some(&alice),
        subject: Some(&svc),
        exception_owner: None,
    };
    assert_eq!(
        campaign::may_decide(&alice, &parties),
        Err(Refusal::Conflicted(Conflict::Requester))
    );
    assert_eq!(campaign::may_decide(&sam, &parties), Ok(()));
    assert_eq!(
        campaign::may_decide(&carol, &parties),
        Err(Refusal::NotAReviewer),
        "engineers approve, they do not run campaigns"
    );
    // Another owner of the workload who did not file: related to the subject by ownership.
    let dora = person("dora", IdentityKind::Human, &["security"], &["north"]);
    let svc2 = workload("svc-2", &["alice", "dora"]);
    let (r2, _) = active(&alice, &svc2);
    let p2 = ItemParties::Grant {
        request: &r2,
        requester: Some(&alice),
        subject: Some(&svc2),
        exception_owner: None,
    };
    assert_eq!(
        campaign::may_decide(&dora, &p2),
        Err(Refusal::Conflicted(Conflict::OwnsSubject))
    );
    // The subject's own workload (with a security role on its key) does not decide either.
    let mut proxy = workload("svc-proxy", &["sam"]);
    proxy.roles = vec!["security".into()];
    let (r3, _) = active(&sam, &sam);
    let p3 = ItemParties::Grant {
        request: &r3,
        requester: Some(&sam),
        subject: Some(&sam),
        exception_owner: None,
    };
    assert_eq!(
        campaign::may_decide(&sam, &p3),
        Err(Refusal::Conflicted(Conflict::Subject))
    );
    assert_eq!(
        campaign::may_decide(&proxy, &p3),
        Err(Refusal::Conflicted(Conflict::Subject))
    );
    // Parties gone from the inventory: the ids still exclude.
    let gone = ItemParties::Grant {
        request: &r3,
        requester: None,
        subject: None,
        exception_owner: None,
    };
    assert_eq!(
        campaign::may_decide(&sam, &gone),
        Err(Refusal::Conflicted(Conflict::Subject))
    );
    // Items without a request (exceptions, findings): the holder and the holder's owners.
    let holder = ItemParties::Subject {
        id: "svc-2",
        identity: Some(&svc2),
    };
    assert_eq!(
        campaign::may_decide(&dora, &holder),
        Err(Refusal::Conflicted(Conflict::OwnsSubject))
    );
    assert_eq!(campaign::may_decide(&sam, &holder), Ok(()));
    let person_holder = ItemParties::Subject {
        id: "sam",
        identity: Some(&sam),
    };
    assert_eq!(
        campaign::may_decide(&sam, &person_holder),
        Err(Refusal::Conflicted(Conflict::Subject))
    );
    let e = Refusal::Conflicted(Conflict::Subject).into_error("sam", "exception:e-1");
    assert_eq!(e.code(), "separation_of_duties");
    assert_eq!(
        Refusal::NotAReviewer.into_error("carol", "x").code(),
        "forbidden"
    );
}

#[test]
fn what_each_decision_does_per_kind() {
    let g = "grant-1".to_string();
    let kinds = [
        ItemKind::BreakGlass {
            grant_id: g.clone(),
        },
        ItemKind::Teardown {
            grant_id: g.clone(),
            verdict: TeardownVerdict::Partial,
        },
        ItemKind::MissingAttestation {
            grant_id: g.clone(),
        },
    ];
    for k in &kinds {
        assert_eq!(
            campaign::effect_of(k, ItemDecision::End, Some(GrantState::Active)).unwrap(),
            DecisionEffect::RevokeGrant {
                grant_id: g.clone()
            },
            "{k:?}"
        );
        for s in [GrantState::Ending, GrantState::Closed] {
            assert_eq!(
                campaign::effect_of(k, ItemDecision::End, Some(s)).unwrap(),
                DecisionEffect::GrantAlreadyEnded {
                    grant_id: g.clone()
                }
            );
        }
        for d in [ItemDecision::Keep, ItemDecision::Narrow] {
            assert_eq!(
                campaign::effect_of(k, d, Some(GrantState::Active)).unwrap(),
                DecisionEffect::RecordOnly,
                "keeping or narrowing never ends access"
            );
        }
        assert!(campaign::effect_of(k, ItemDecision::End, None).is_err());
    }
    let ex = ItemKind::Exception { id: "exc-1".into() };
    assert_eq!(
        campaign::effect_of(&ex, ItemDecision::End, None).unwrap(),
        DecisionEffect::EndException { id: "exc-1".into() }
    );
    assert_eq!(
        campaign::effect_of(&ex, ItemDecision::Narrow, None).unwrap(),
        DecisionEffect::NarrowException { id: "exc-1".into() }
    );
    let f = ItemKind::Finding {
        id: "f-1".into(),
        finding: "shared_account".into(),
    };
    assert_eq!(
        campaign::effect_of(&f, ItemDecision::End, None).unwrap(),
        DecisionEffect::EndFinding { id: "f-1".into() }
    );
    assert_eq!(
        campaign::effect_of(&f, ItemDecision::Keep, None).unwrap(),
        DecisionEffect::RecordOnly
    );
    // Keys are distinct per kind, so one grant can be two items (break-glass and partial).
    let keys: std::collections::BTreeSet<String> = kinds.iter().map(ItemKind::key).collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(
        serde_json::to_value(&kinds[1]).unwrap(),
        serde_json::json!({"kind": "teardown", "grant_id": "grant-1", "verdict": "partial"})
    );
}

#[test]
fn decisions_need_a_note_and_happen_once_in_an_open_campaign() {
    assert_eq!(
        campaign::check_note("  ").unwrap_err().code(),
        "invalid_request"
    );
    assert_eq!(
        campaign::check_note("ok\u{1b}[2J").unwrap_err().code(),
        "control_character"
    );
    assert!(campaign::check_note("checked the shift log").is_ok());
    assert!(campaign::may_record("c", CampaignState::Open, "k", None).is_ok());
    assert_eq!(
        campaign::may_record("c", CampaignState::Open, "k", Some(ItemDecision::Keep))
            .unwrap_err()
            .code(),
        "already_decided"
    );
    assert_eq!(
        campaign::may_record("c", CampaignState::Closed, "k", None)
            .unwrap_err()
            .code(),
        "wrong_state"
    );
}

#[test]
fn a_campaign_closes_only_when_every_item_is_decided() {
    let e = campaign::may_close("c-1", CampaignState::Open, 3, 2).unwrap_err();
    assert_eq!(e.code(), "campaign_incomplete");
    assert!(e.to_string().contains("1 undecided"), "{e}");
    assert!(campaign::may_close("c-1", CampaignState::Open, 3, 3).is_ok());
    assert!(campaign::may_close("c-1", CampaignState::Open, 0, 0).is_ok());
    assert_eq!(
        campaign::may_close("c-1", CampaignState::Closed, 3, 3)
            .unwrap_err()
            .code(),
        "wrong_state"
    );
}

#[test]
fn a_campaign_period_is_real_past_and_bounded() {
    let now = t0();
    assert!(campaign::check_period(now - Duration::days(30), now, now).is_ok());
    assert!(campaign::check_period(now, now - Duration::days(1), now).is_err());
    assert!(campaign::check_period(now + Duration::days(1), now + Duration::days(2), now).is_err());
    assert!(campaign::check_period(now - Duration::days(400), now, now).is_err());
}
