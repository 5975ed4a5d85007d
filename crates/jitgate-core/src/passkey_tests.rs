#![allow(clippy::unwrap_used)]

use super::*;
use chrono::Duration;

fn t0() -> Timestamp {
    chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

fn step_up_challenge() -> Challenge {
    Challenge {
        id: "pkc-1".into(),
        identity: "bob".into(),
        purpose: ChallengePurpose::StepUp {
            request_id: "req-1".into(),
            scope_digest: "sha256:aaa".into(),
        },
        expires_at: t0() + Duration::seconds(DEFAULT_CHALLENGE_TTL_SECS),
        used_before: None,
    }
}

fn bobs_key() -> EnrolledPasskey {
    EnrolledPasskey {
        credential_id: "cred-bob".into(),
        identity: "bob".into(),
        counter: 4,
        removed_at: None,
    }
}

fn verified(counter: u32) -> AssertionCheck {
    AssertionCheck::Verified {
        credential_id: "cred-bob".into(),
        counter,
        user_verified: true,
    }
}

/// `check_step_up` with the happy-path arguments, changed by `f`.
fn run(
    f: impl FnOnce(&mut Challenge, &mut Option<EnrolledPasskey>, &mut AssertionCheck, &mut Args),
) -> Result<StepUpMethod, PasskeyRefusal> {
    let mut c = step_up_challenge();
    let mut cred = Some(bobs_key());
    let mut check = verified(5);
    let mut a = Args {
        approver: "bob".into(),
        request: "req-1".into(),
        digest: "sha256:aaa".into(),
        presented: "cred-bob".into(),
        now: t0() + Duration::seconds(10),
    };
    f(&mut c, &mut cred, &mut check, &mut a);
    let attempt = StepUpAttempt {
        approver: &a.approver,
        request_id: &a.request,
        scope_digest: &a.digest,
        presented: &a.presented,
        credential: cred.as_ref(),
        check: &check,
    };
    check_step_up(&c, &attempt, a.now)
}

struct Args {
    approver: String,
    request: String,
    digest: String,
    presented: String,
    now: Timestamp,
}

#[test]
fn an_assertion_bound_to_this_request_and_digest_is_a_passkey_step_up() {
    assert_eq!(
        run(|_, _, _, _| {}),
        Ok(StepUpMethod::Passkey {
            credential_id: "cred-bob".into()
        })
    );
}

#[test]
fn an_assertion_for_another_request_is_refused() {
    assert_eq!(
        run(|_, _, _, a| a.request = "req-2".into()),
        Err(PasskeyRefusal::WrongRequest)
    );
}

#[test]
fn an_assertion_after_the_scope_changed_is_refused() {
    assert_eq!(
        run(|_, _, _, a| a.digest = "sha256:bbb".into()),
        Err(PasskeyRefusal::ScopeChanged)
    );
}

#[test]
fn a_registration_challenge_is_no_step_up() {
    assert_eq!(
        run(|c, _, _, _| c.purpose = ChallengePurpose::Registration {
            name: "laptop".into()
        }),
        Err(PasskeyRefusal::WrongRequest)
    );
}

#[test]
fn a_challenge_counts_once_and_until_its_expiry_only() {
    assert_eq!(
        run(|c, _, _, _| c.used_before = Some(t0())),
        Err(PasskeyRefusal::ChallengeUsed)
    );
    assert_eq!(
        run(|c, _, _, a| a.now = c.expires_at),
        Err(PasskeyRefusal::ChallengeExpired)
    );
    assert!(run(|c, _, _, a| a.now = c.expires_at - Duration::milliseconds(1)).is_ok());
}

#[test]
fn someone_elses_challenge_or_credential_is_refused() {
    // carol presents bob's challenge (and bob's assertion).
    assert_eq!(
        run(|_, _, _, a| a.approver = "carol".into()),
        Err(PasskeyRefusal::ChallengeOfAnother)
    );
    // bob answers his own challenge with a passkey carol enrolled.
    assert_eq!(
        run(|_, cred, _, _| cred.as_mut().unwrap().identity = "carol".into()),
        Err(PasskeyRefusal::CredentialOfAnother)
    );
}

#[test]
fn unenrolled_and_removed_credentials_are_refused_even_with_a_good_signature() {
    assert_eq!(
        run(|_, cred, _, _| *cred = None),
        Err(PasskeyRefusal::UnknownCredential)
    );
    assert_eq!(
        run(|_, cred, _, _| cred.as_mut().unwrap().removed_at = Some(t0())),
        Err(PasskeyRefusal::CredentialRemoved)
    );
    // An answer that names no credential at all.
    assert_eq!(
        run(|_, cred, _, a| {
            a.presented = String::new();
            *cred = None;
        }),
        Err(PasskeyRefusal::AssertionInvalid)
    );
    // The enrolment looked up is not the credential presented.
    assert_eq!(
        run(|_, _, _, a| a.presented = "cred-other".into()),
        Err(PasskeyRefusal::UnknownCredential)
    );
}

#[test]
fn the_library_verdict_decides_signature_origin_and_verification() {
    assert_eq!(
        run(|_, _, c, _| *c = AssertionCheck::Invalid("bad signature".into())),
        Err(PasskeyRefusal::AssertionInvalid)
    );
    assert_eq!(
        run(|_, _, c, _| *c = AssertionCheck::WrongOrigin("http://evil".into())),
        Err(PasskeyRefusal::WrongOrigin)
    );
    assert_eq!(
        run(|_, _, c, _| *c = AssertionCheck::CounterRegression),
        Err(PasskeyRefusal::CounterRegression)
    );
    assert_eq!(
        run(|_, _, c, _| *c = AssertionCheck::Verified {
            credential_id: "cred-bob".into(),
            counter: 5,
            user_verified: false
        }),
        Err(PasskeyRefusal::UserNotVerified)
    );
    // The library verified another credential than the one named.
    assert_eq!(
        run(|_, _, c, _| *c = AssertionCheck::Verified {
            credential_id: "cred-x".into(),
            counter: 5,
            user_verified: true
        }),
        Err(PasskeyRefusal::AssertionInvalid)
    );
}

#[test]
fn the_counter_must_move_forward_from_the_value_stored_now() {
    // Stored 4: 4 and 3 are regressions, 5 moves forward.
    assert_eq!(
        run(|_, _, c, _| *c = verified(4)),
        Err(PasskeyRefusal::CounterRegression)
    );
    assert_eq!(
        run(|_, _, c, _| *c = verified(3)),
        Err(PasskeyRefusal::CounterRegression)
    );
    // An authenticator that keeps no counter (0 and 0) passes.
    assert!(run(|_, cred, c, _| {
        cred.as_mut().unwrap().counter = 0;
        *c = verified(0);
    })
    .is_ok());
    // A counter that drops to zero after having counted does not.
    assert_eq!(
        run(|_, _, c, _| *c = verified(0)),
        Err(PasskeyRefusal::CounterRegression)
    );
}

#[test]
fn the_binding_is_refused_first_whatever_else_is_wrong() {
    assert_eq!(
        run(|_, cred, c, a| {
            a.request = "req-2".into();
            *cred = None;
            *c = AssertionCheck::Invalid("x".into());
        }),
        Err(PasskeyRefusal::WrongRequest)
    );
}

fn registration_challenge() -> Challenge {
    Challenge {
        purpose: ChallengePurpose::Registration {
            name: "laptop".into(),
        },
        ..step_up_challenge()
    }
}

#[test]
fn registrations_need_their_own_usable_challenge_a_verified_user_and_a_new_credential() {
    let ok = RegistrationCheck::Verified {
        credential_id: "cred-new".into(),
        user_verified: true,
    };
    let c = registration_challenge();
    let now = t0() + Duration::seconds(1);
    assert_eq!(
        check_registration(&c, "bob", &ok, None, now),
        Ok("laptop".into())
    );
    assert_eq!(
        check_registration(&c, "carol", &ok, None, now),
        Err(PasskeyRefusal::ChallengeOfAnother)
    );
    assert_eq!(
        check_registration(&c, "bob", &ok, None, c.expires_at),
        Err(PasskeyRefusal::ChallengeExpired)
    );
    assert_eq!(
        check_registration(&step_up_challenge(), "bob", &ok, None, now),
        Err(PasskeyRefusal::RegistrationInvalid)
    );
    let wrong = RegistrationCheck::WrongOrigin("https://evil.example".into());
    assert_eq!(
        check_registration(&c, "bob", &wrong, None, now),
        Err(PasskeyRefusal::WrongOrigin)
    );
    let no_uv = RegistrationCheck::Verified {
        credential_id: "cred-new".into(),
        user_verified: false,
    };
    assert_eq!(
        check_registration(&c, "bob", &no_uv, None, now),
        Err(PasskeyRefusal::UserNotVerified)
    );
    assert_eq!(
        check_registration(&c, "bob", &ok, Some(&bobs_key()), now),
        Err(PasskeyRefusal::AlreadyEnrolled)
    );
}

#[test]
fn removal_needs_a_fresh_sign_in_or_a_totp_code() {
    let now = t0();
    assert_eq!(
        may_remove(Some(now - Duration::seconds(60)), false, now),
        Ok(FreshAuth::RecentSignIn)
    );
    assert_eq!(
        may_remove(
            Some(now - Duration::seconds(FRESH_SIGN_IN_SECS + 1)),
            false,
            now
        ),
        Err(crate::CoreError::FreshAuthRequired)
    );
    assert_eq!(
        may_remove(None, false, now),
        Err(crate::CoreError::FreshAuthRequired)
    );
    assert_eq!(
        may_remove(Some(now - Duration::days(1)), true, now),
        Ok(FreshAuth::Totp)
    );
}

#[test]
fn workloads_enrol_no_passkeys_and_names_are_checked() {
    assert!(may_enrol(crate::IdentityKind::Workload, 0).is_err());
    assert!(may_enrol(crate::IdentityKind::Vendor, 0).is_ok());
    assert!(may_enrol(crate::IdentityKind::Human, MAX_PER_IDENTITY).is_err());
    assert_eq!(check_name("  laptop ").unwrap(), "laptop");
    assert!(check_name("").is_err());
    assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    assert!(check_name("bad\u{202e}name").is_err());
}

#[test]
fn every_refusal_has_its_own_code_and_a_message() {
    use PasskeyRefusal::*;
    let all = [
        ChallengeUnknown,
        ChallengeOfAnother,
        ChallengeUsed,
        ChallengeExpired,
        WrongRequest,
        ScopeChanged,
        UnknownCredential,
        CredentialRemoved,
        CredentialOfAnother,
        CounterRegression,
        WrongOrigin,
        UserNotVerified,
        AssertionInvalid,
        AlreadyEnrolled,
        RegistrationInvalid,
    ];
    let codes: std::collections::HashSet<_> = all.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), all.len());
    assert!(all.iter().all(|r| !r.message().is_empty()));
}

#[test]
fn the_step_up_method_is_recorded_as_typed_json() {
    let m = StepUpMethod::Passkey {
        credential_id: "abc".into(),
    };
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        serde_json::json!({"method": "passkey", "credential_id": "abc"})
    );
    assert_eq!(
        serde_json::to_value(StepUpMethod::Totp).unwrap(),
        serde_json::json!({"method": "totp"})
    );
}
