//! Standing exceptions (`jitgate_core::exception`): one test per rule, and the whole life of
//! one exception through the lifecycle (request → approvals → grant → re-validation →
//! overdue end).

use super::*;
use chrono::Duration;
use jitgate_core::exception::{self, Exception, ExceptionState, Terms};
use jitgate_core::lifecycle::{ApprovalInput, Outcome};

const DAY: i64 = 86_400;

fn terms(owner: &str) -> Terms {
    Terms {
        owner: owner.into(),
        controls: vec!["sessions recorded and reviewed weekly".into()],
        revalidate_every_secs: 30 * DAY,
    }
}

/// A workload `svc-batch` owned by `bob`.
fn batch_job() -> Identity {
    let mut w = person("svc-batch", IdentityKind::Workload, &[], &["north"]);
    w.owners = vec!["bob".into()];
    remember(&w);
    w
}

fn standing_request(requester: &Identity, subject: &Identity, days: i64) -> NewRequest {
    NewRequest {
        subject: subject.clone(),
        ..new_request(requester, days * DAY, AccessPath::Standing)
    }
}

fn approve(
    out: &Outcome,
    who: &Identity,
    existing: &[Approval],
    at: Timestamp,
) -> Result<Outcome, CoreError> {
    decide(
        out.request.clone(),
        who,
        ApprovalInput {
            approval_id: format!("appr-{}", who.id),
            verdict: ApprovalVerdict::Approve,
            scope_digest: out.request.scope_digest.clone(),
            comment: String::new(),
            step_up: None,
        },
        existing,
        &["north".to_string()],
        at,
    )
}

#[test]
fn the_owner_is_a_person_independent_of_the_subject() {
    let bob = person("bob", IdentityKind::Human, &["engineer"], &["north"]);
    let svc = batch_job();
    let olga = person("olga", IdentityKind::Human, &["engineer"], &["north"]);
    let ok = exception::check_terms(&terms("olga"), &bob, &svc, Some(&olga), 180 * DAY);
    assert_eq!(ok, Ok(()));

    // The subject itself.
    let e = exception::check_terms(&terms("bob"), &bob, &bob, Some(&bob), 180 * DAY).unwrap_err();
    assert_eq!(e.code(), "separation_of_duties");
    // The owner of the workload subject (here also its requester).
    let e = exception::check_terms(&terms("bob"), &bob, &svc, Some(&bob), 180 * DAY).unwrap_err();
    assert_eq!(e.code(), "separation_of_duties");
    // An owner of the workload subject who did not file it.
    let mut svc2 = svc.clone();
    svc2.owners.push("olga".into());
    let e =
        exception::check_terms(&terms("olga"), &bob, &svc2, Some(&olga), 180 * DAY).unwrap_err();
    assert_eq!(e.code(), "separation_of_duties");
    // A workload owned by the subject cannot own the exception (and is not a person).
    let mut helper = person("svc-helper", IdentityKind::Workload, &[], &[]);
    helper.owners = vec!["bob".into()];
    let e = exception::check_terms(&terms("svc-helper"), &bob, &bob, Some(&helper), 180 * DAY)
        .unwrap_err();
    assert_eq!(e.code(), "invalid_exception");
    // Unknown and disabled owners.
    let e = exception::check_terms(&terms("ghost"), &bob, &svc, None, 180 * DAY).unwrap_err();
    assert_eq!(e.code(), "invalid_exception");
    let mut gone = olga.clone();
    gone.status = IdentityStatus::Disabled;
    let e = exception::check_terms(&terms("olga"), &bob, &svc, Some(&gone), 180 * DAY).unwrap_err();
    assert_eq!(e.code(), "identity_disabled");
}

#[test]
fn controls_expiry_and_interval_are_bounded() {
    let bob = person("bob", IdentityKind::Human, &["engineer"], &["north"]);
    let svc = batch_job();
    let olga = person("olga", IdentityKind::Human, &[], &[]);
    let check = |t: &Terms, secs: i64| exception::check_terms(t, &bob, &svc, Some(&olga), secs);

    let mut t = terms("olga");
    t.controls.clear();
    assert_eq!(check(&t, 90 * DAY).unwrap_err().code(), "invalid_exception");
    t.controls = vec!["   ".into()];
    assert_eq!(check(&t, 90 * DAY).unwrap_err().code(), "invalid_exception");
    t.controls = vec!["watch\u{1b}[31m".into()];
    assert_eq!(check(&t, 90 * DAY).unwrap_err().code(), "control_character");
    t.controls = vec!["c".into(); exception::MAX_CONTROLS + 1];
    assert_eq!(check(&t, 90 * DAY).unwrap_err().code(), "invalid_exception");

    let t = terms("olga");
    assert_eq!(check(&t, 365 * DAY), Ok(()));
    assert_eq!(
        check(&t, 365 * DAY + 1).unwrap_err().code(),
        "invalid_exception"
    );
    assert_eq!(check(&t, 0).unwrap_err().code(), "invalid_exception");

    let every = |secs| Terms {
        revalidate_every_secs: secs,
        ..terms("olga")
    };
    assert_eq!(check(&every(DAY), 90 * DAY), Ok(()));
    assert_eq!(check(&every(90 * DAY), 90 * DAY), Ok(()));
    assert_eq!(
        check(&every(DAY - 1), 90 * DAY).unwrap_err().code(),
        "invalid_exception"
    );
    assert_eq!(
        check(&every(90 * DAY + 1), 365 * DAY).unwrap_err().code(),
        "invalid_exception"
    );
    // Longer than the exception itself.
    assert_eq!(
        check(&every(30 * DAY), 20 * DAY).unwrap_err().code(),
        "invalid_exception"
    );
}

#[test]
fn the_standing_path_is_only_for_exceptions_and_has_its_own_bound() {
    assert_eq!(
        exception::check_plain_request_path(AccessPath::Standing)
            .unwrap_err()
            .code(),
        "invalid_request"
    );
    assert_eq!(
        exception::check_plain_request_path(AccessPath::Planned),
        Ok(())
    );
    let bob = person("bob", IdentityKind::Human, &["engineer"], &["north"]);
    let svc = batch_job();
    // 200 days: fine as an exception, refused on any other path.
    let standing = standing_request(&bob, &svc, 200);
    assert_eq!(lifecycle::validate_new(&standing, t0()), Ok(()));
    let planned = NewRequest {
        path: AccessPath::Planned,
        ..standing.clone()
    };
    assert_eq!(
        lifecycle::validate_new(&planned, t0()).unwrap_err().code(),
        "invalid_request"
    );
    let too_long = standing_request(&bob, &svc, 366);
    assert_eq!(
        lifecycle::validate_new(&too_long, t0()).unwrap_err().code(),
        "invalid_exception"
    );
}

fn sample(now: Timestamp) -> Exception {
    Exception {
        id: "exc-1".into(),
        request_id: "req-1".into(),
        owner: "olga".into(),
        controls: vec!["recorded".into()],
        revalidate_every_secs: 30 * DAY,
        expires_at: now + Duration::days(180),
        next_revalidation: now + Duration::days(30),
        last_revalidated_at: None,
        last_revalidated_by: None,
        created_at: now,
    }
}

#[test]
fn who_may_revalidate() {
    let ex = sample(t0());
    let olga = person("olga", IdentityKind::Human, &[], &[]);
    let sam = person("sam", IdentityKind::Human, &["security"], &[]);
    let ada = person("ada", IdentityKind::Human, &["admin"], &[]);
    let eve = person("eve", IdentityKind::Human, &["engineer"], &[]);
    let svc = batch_job();
    let bob = known("bob").unwrap_or_else(|| person("bob", IdentityKind::Human, &[], &[]));
    let may = |who: &Identity| exception::may_revalidate(who, &ex, &svc.id, Some(&svc), "bob");

    assert_eq!(may(&olga), Ok(()), "the owner");
    assert_eq!(may(&sam), Ok(()), "security");
    assert_eq!(may(&ada), Ok(()), "admin");
    assert_eq!(may(&eve).unwrap_err().code(), "forbidden", "anyone else");
    // The subject's owner (and requester), even with the security role.
    let mut bob_sec = bob.clone();
    bob_sec.roles.push("security".into());
    assert_eq!(may(&bob_sec).unwrap_err().code(), "separation_of_duties");
    // Security staff who became an owner of the workload subject.
    let mut svc2 = svc.clone();
    svc2.owners.push("sam".into());
    assert_eq!(
        exception::may_revalidate(&sam, &ex, &svc2.id, Some(&svc2), "bob")
            .unwrap_err()
            .code(),
        "separation_of_duties"
    );
    // A person's own break-glass account: its holder never re-validates it, even as admin.
    let ivan = person(
        "ivan",
        IdentityKind::Human,
        &["admin", "break-glass-account"],
        &[],
    );
    assert_eq!(
        exception::may_revalidate(&ivan, &ex, "ivan", Some(&ivan), "ivan")
            .unwrap_err()
            .code(),
        "separation_of_duties"
    );
    // A workload never, not even the subject itself with the admin role.
    let mut svc_admin = svc.clone();
    svc_admin.roles.push("admin".into());
    assert_eq!(may(&svc_admin).unwrap_err().code(), "forbidden");
    let other_workload = person("svc-other", IdentityKind::Workload, &["security"], &[]);
    assert_eq!(may(&other_workload).unwrap_err().code(), "forbidden");
    // A subject that was removed from the inventory: ownership recorded on the caller side
    // still counts, and the id itself is refused.
    assert_eq!(
        exception::may_revalidate(&olga, &ex, "svc-batch", None, "bob"),
        Ok(())
    );
    let mut disabled = olga.clone();
    disabled.status = IdentityStatus::Disabled;
    assert_eq!(may(&disabled).unwrap_err().code(), "identity_disabled");
}

#[test]
fn overdue_is_at_the_due_moment_and_revalidation_moves_it() {
    let ex = sample(t0());
    let due = ex.next_revalidation;
    assert!(!exception::is_overdue(&ex, due - Duration::seconds(1)));
    assert!(exception::is_overdue(&ex, due));

    let mut request = submit(
        standing_request(
            &person("bob", IdentityKind::Human, &["engineer"], &["north"]),
            &batch_job(),
            180,
        ),
        decision(0, 365 * DAY, false),
        "g-1",
        t0(),
    )
    .unwrap()
    .request;
    // Not active yet: nothing to re-validate.
    let e = exception::revalidate(ex.clone(), &request, "olga", "still needed", t0()).unwrap_err();
    assert_eq!(e.code(), "wrong_state");
    request.state = RequestState::Active;
    request.grant_id = Some("g-1".into());

    let at = t0() + Duration::days(20);
    let e = exception::revalidate(ex.clone(), &request, "olga", "  ", at).unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    let (after, event) =
        exception::revalidate(ex.clone(), &request, "olga", "still needed", at).unwrap();
    assert_eq!(after.next_revalidation, at + Duration::days(30));
    assert_eq!(after.last_revalidated_by.as_deref(), Some("olga"));
    assert_eq!(event.kind, EventKind::ExceptionRevalidated);
    let p: jitgate_core::payload::ExceptionRevalidated = event.payload().unwrap();
    assert_eq!(p.previous_due, due);
    assert_eq!(p.next_revalidation, at + Duration::days(30));
    assert_eq!(event.grant_id.as_deref(), Some("g-1"));

    // Once overdue it cannot be re-validated any more: it ends.
    let e = exception::revalidate(ex.clone(), &request, "olga", "still needed", due).unwrap_err();
    assert_eq!(e.code(), "revalidation_overdue");

    assert_eq!(
        exception::state_of(&ex, RequestState::Active, at),
        ExceptionState::Active
    );
    assert_eq!(
        exception::state_of(&ex, RequestState::Active, due),
        ExceptionState::Overdue
    );
    assert_eq!(
        exception::state_of(&ex, RequestState::Approved, due),
        ExceptionState::Pending
    );
    assert_eq!(
        exception::state_of(&ex, RequestState::Closed, at),
        ExceptionState::Ended
    );
    assert_eq!(
        exception::state_of(&ex, RequestState::Denied, at),
        ExceptionState::Denied
    );
}

#[test]
fn an_exception_lives_through_the_lifecycle_and_ends_when_overdue() {
    let bob = person("bob", IdentityKind::Human, &["engineer"], &["north"]);
    let svc = batch_job();
    let sam = person(
        "sam",
        IdentityKind::Human,
        &["engineer", "security"],
        &["north"],
    );
    let tom = person(
        "tom",
        IdentityKind::Human,
        &["engineer", "security"],
        &["north"],
    );
    // Tom owns another workload... and then the batch job too: he may not approve.
    let mut svc_tom = svc.clone();
    svc_tom.owners.push("tom".into());
    remember(&svc_tom);
    let ana = person(
        "ana",
        IdentityKind::Human,
        &["engineer", "security"],
        &["north"],
    );

    let out = submit(
        standing_request(&bob, &svc_tom, 180),
        decision(2, 365 * DAY, false),
        "g-1",
        t0(),
    )
    .unwrap();
    assert_eq!(out.request.state, RequestState::Pending);
    assert_eq!(out.request.path, AccessPath::Standing);
    let e = approve(&out, &tom, &[], t0()).unwrap_err();
    assert_eq!(e.code(), "separation_of_duties");
    let e = approve(&out, &bob, &[], t0()).unwrap_err();
    assert_eq!(e.code(), "separation_of_duties");
    let a1 = approve(&out, &sam, &[], t0()).unwrap();
    let first = a1.approval.clone().unwrap();
    let a2 = approve(&a1, &ana, std::slice::from_ref(&first), t0()).unwrap();
    assert_eq!(a2.request.state, RequestState::Approved);
    let approvals = [first, a2.approval.clone().unwrap()];

    let start = t0() + Duration::hours(1);
    let active = activate_with(a2.request.clone(), &approvals, "g-1", start).unwrap();
    let grant = active.grant.clone().unwrap();
    // The grant lasts until the exception's expiry (the window's end), not a shift.
    assert_eq!(grant.expires_at, out.request.window_end());
    assert!(!grant.emergency);

    let ex = exception::new_exception("exc-1", terms("olga"), &out.request, t0());
    assert_eq!(ex.expires_at, out.request.window_end());
    let ex = exception::started(ex, &grant);
    assert_eq!(ex.next_revalidation, start + Duration::days(30));

    // Not overdue yet: the scheduler's step refuses.
    let early = start + Duration::days(29);
    let e = exception::end_overdue(active.request.clone(), grant.clone(), &ex, early).unwrap_err();
    assert_eq!(e.code(), "wrong_state");
    let due = ex.next_revalidation;
    let ended = exception::end_overdue(active.request.clone(), grant.clone(), &ex, due).unwrap();
    let g = ended.grant.unwrap();
    assert_eq!(g.state, GrantState::Ending);
    assert_eq!(g.end_reason, Some(EndReason::RevalidationOverdue));
    assert_eq!(
        g.end_reason.as_ref().map(|r| r.label()),
        Some("revalidation_overdue")
    );
    assert!(ended.effects.contains(&lifecycle::Effect::PushRevocation));

    // Past the expiry, the end is recorded as expiry.
    let late = grant.expires_at + Duration::days(1);
    let mut late_ex = ex.clone();
    late_ex.next_revalidation = grant.expires_at;
    let ended =
        exception::end_overdue(active.request.clone(), grant.clone(), &late_ex, late).unwrap();
    assert_eq!(ended.grant.unwrap().end_reason, Some(EndReason::Expired));
}

#[test]
fn who_may_end_and_what_ending_does() {
    let bob = person("bob", IdentityKind::Human, &["engineer"], &["north"]);
    let svc = batch_job();
    let out = submit(
        standing_request(&bob, &svc, 180),
        decision(0, 365 * DAY, false),
        "g-1",
        t0(),
    )
    .unwrap();
    let ex = exception::new_exception("exc-1", terms("olga"), &out.request, t0());
    let olga = person("olga", IdentityKind::Human, &[], &[]);
    let eve = person("eve", IdentityKind::Human, &["engineer"], &[]);
    let sam = person("sam", IdentityKind::Human, &["security"], &[]);
    assert_eq!(exception::may_end(&olga, &ex, &out.request), Ok(()));
    assert_eq!(exception::may_end(&sam, &ex, &out.request), Ok(()));
    assert_eq!(
        exception::may_end(&bob, &ex, &out.request),
        Ok(()),
        "its requester gives it up"
    );
    assert_eq!(
        exception::may_end(&eve, &ex, &out.request)
            .unwrap_err()
            .code(),
        "forbidden"
    );

    // Approved, not yet active: withdrawn.
    assert_eq!(out.request.state, RequestState::Approved);
    let e = exception::end(out.request.clone(), None, &ex, "olga", "", t0()).unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    let w = exception::end(out.request.clone(), None, &ex, "olga", "job retired", t0()).unwrap();
    assert_eq!(w.request.state, RequestState::Withdrawn);
    assert!(w.events.iter().any(|e| e.kind == EventKind::ExceptionEnded));

    // Active: the grant ends as revoked by the owner, revocation pushed.
    let active = activate_with(out.request.clone(), &[], "g-1", t0()).unwrap();
    let g = active.grant.clone().unwrap();
    let e = exception::end(
        active.request.clone(),
        Some(g),
        &ex,
        "olga",
        "job retired",
        t0() + Duration::days(2),
    )
    .unwrap();
    let ended = e.grant.unwrap();
    assert_eq!(
        ended.end_reason.as_ref().map(|r| r.label()),
        Some("revoked")
    );
    assert!(e.effects.contains(&lifecycle::Effect::PushRevocation));
    let p: jitgate_core::payload::ExceptionEnded =
        e.events.iter().find_map(|ev| ev.payload()).unwrap();
    assert_eq!(p.reason, "job retired");
    // Ended already: nothing more to end.
    let again =
        exception::end(e.request.clone(), Some(ended), &ex, "olga", "again", t0()).unwrap_err();
    assert_eq!(again.code(), "wrong_state");
}

#[test]
fn credentials_under_a_standing_grant_stay_short() {
    let thirty_days = Duration::days(30);
    assert_eq!(
        exception::credential_lifetime(AccessPath::Standing, thirty_days),
        Duration::seconds(exception::CREDENTIAL_MAX_SECS)
    );
    assert_eq!(
        exception::credential_lifetime(AccessPath::Planned, thirty_days),
        thirty_days
    );
    assert_eq!(
        exception::credential_lifetime(AccessPath::Standing, Duration::hours(1)),
        Duration::hours(1)
    );
}
