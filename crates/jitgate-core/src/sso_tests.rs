#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn identity(id: &str, kind: &str) -> Identity {
    serde_json::from_value(json!({"id": id, "kind": kind})).unwrap()
}

fn inventory() -> Vec<Identity> {
    vec![
        identity("alice", "human"),
        identity("bob", "human"),
        identity("vera", "vendor"),
        identity("svc-historian", "workload"),
    ]
}

fn rule(id: &str, subject: Option<&str>, email: Option<&str>) -> Rule {
    Rule {
        identity: id.into(),
        subject: subject.map(str::to_string),
        email: email.map(str::to_string),
    }
}

fn provider(rules: Vec<Rule>) -> Provider {
    Provider {
        name: "plant-idp".into(),
        issuer: "https://idp.plant.example".into(),
        client_id: "jitgate".into(),
        rules,
        groups_claim: Some("groups".into()),
        group_roles: vec![GroupRoles {
            group: "ot-approvers".into(),
            roles: vec!["approver".into(), "oncall".into()],
        }],
        max_session_secs: DEFAULT_MAX_SESSION_SECS,
    }
}

fn validate(p: &Provider, sso_only: &[&str]) -> Result<(), ProviderError> {
    let inv = inventory();
    let only: Vec<String> = sso_only.iter().map(|s| s.to_string()).collect();
    validate_providers(std::slice::from_ref(p), &only, |id| {
        inv.iter().find(|i| i.id == id)
    })
}

#[test]
fn rules_that_could_map_one_login_to_two_identities_are_refused_naming_both() {
    // A subject rule and an e-mail rule to different people: one login can carry both.
    let p = provider(vec![
        rule("alice", Some("sub-a"), None),
        rule("bob", None, Some("bob@plant.example")),
    ]);
    let e = validate(&p, &[]).unwrap_err().to_string();
    assert!(e.contains("map #1 (alice) and map #2 (bob)"), "{e}");
    // The same e-mail (in another case) to two people.
    let p = provider(vec![
        rule("alice", None, Some("ops@plant.example")),
        rule("bob", None, Some("OPS@plant.example")),
    ]);
    assert!(validate(&p, &[]).is_err());
    // Exclusive rules: all by subject, or both claims named in both.
    let p = provider(vec![
        rule("alice", Some("sub-a"), None),
        rule("bob", Some("sub-b"), None),
    ]);
    validate(&p, &[]).unwrap();
    let p = provider(vec![
        rule("alice", Some("sub-a"), Some("alice@plant.example")),
        rule("bob", Some("sub-b"), Some("bob@plant.example")),
    ]);
    validate(&p, &[]).unwrap();
    // Two rules to the same person may overlap.
    let p = provider(vec![
        rule("alice", Some("sub-a"), None),
        rule("alice", None, Some("alice@plant.example")),
    ]);
    validate(&p, &[]).unwrap();
}

#[test]
fn rules_to_workloads_unknown_identities_or_matching_everything_are_refused() {
    let e = validate(&provider(vec![rule("svc-historian", Some("s"), None)]), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("workload"), "{e}");
    let e = validate(&provider(vec![rule("mallory", Some("s"), None)]), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not in the inventory"), "{e}");
    let e = validate(&provider(vec![rule("alice", None, None)]), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("neither"), "{e}");
    let e = validate(
        &provider(vec![rule("alice", None, Some("*@plant.example"))]),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains('*'), "{e}");
    validate(&provider(vec![rule("vera", Some("v"), None)]), &[]).unwrap();
}

#[test]
fn sso_only_needs_a_rule_that_maps_to_the_identity() {
    let p = provider(vec![rule("alice", Some("sub-a"), None)]);
    validate(&p, &["alice"]).unwrap();
    let e = validate(&p, &["bob"]).unwrap_err().to_string();
    assert!(e.contains("\"bob\""), "{e}");
}

const NOW: i64 = 1_700_000_000;

fn at(secs: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(secs, 0).unwrap()
}

fn token(extra: Value) -> TokenClaims {
    let mut v = json!({
        "iss": "https://idp.plant.example", "aud": "jitgate", "sub": "sub-a",
        "email": "alice@plant.example", "email_verified": true, "nonce": "n-1",
        "iat": NOW - 5, "exp": NOW + 300, "acr": "urn:mfa", "amr": ["pwd", "otp"],
        "groups": ["ot-approvers", "staff"],
    });
    for (k, x) in extra.as_object().unwrap() {
        if x.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = x.clone();
        }
    }
    TokenClaims::from_json(v).unwrap()
}

fn check(p: &Provider, extra: Value) -> Result<SignIn, SsoRefusal> {
    let c = token(extra);
    let l = LoginClaims::read(&c, p.groups_claim.as_deref());
    check_id_token(p, &c, &l, "raw", &expect(false, 12 * 3600), at(NOW))
}

fn expect(replayed: bool, session_ttl_secs: i64) -> Expect<'static> {
    Expect {
        nonce: "n-1",
        replayed,
        session_ttl_secs,
    }
}

fn reason(p: &Provider, extra: Value) -> SsoRefusalReason {
    check(p, extra).unwrap_err().reason
}

#[test]
fn a_good_id_token_maps_to_its_identity_with_group_roles() {
    let p = provider(vec![
        rule("bob", Some("sub-b"), None),
        rule("alice", Some("sub-a"), None),
    ]);
    let s = check(&p, json!({})).unwrap();
    assert_eq!(s.identity, "alice");
    assert_eq!(s.rule, 2);
    assert_eq!(s.roles, vec!["approver".to_string(), "oncall".to_string()]);
    assert_eq!(s.session_expires_at, at(NOW + DEFAULT_MAX_SESSION_SECS));
    let c = token(json!({}));
    let l = LoginClaims::read(&c, Some("groups"));
    assert_eq!(l.acr.as_deref(), Some("urn:mfa"));
    assert_eq!(l.amr, vec!["pwd".to_string(), "otp".to_string()]);
    // The server's session_ttl caps the session.
    let s = check_id_token(&p, &c, &l, "raw", &expect(false, 3600), at(NOW)).unwrap();
    assert_eq!(s.session_expires_at, at(NOW + 3600));
    // Without the group, no role is added.
    let s = check(&p, json!({"groups": ["staff"]})).unwrap();
    assert!(s.roles.is_empty());
}

#[test]
fn every_bad_id_token_is_refused_with_its_reason() {
    use SsoRefusalReason as R;
    let p = provider(vec![rule("alice", Some("sub-a"), None)]);
    assert_eq!(
        reason(&p, json!({"iss": "https://evil.example"})),
        R::WrongIssuer
    );
    assert_eq!(reason(&p, json!({"aud": "other-client"})), R::WrongAudience);
    assert_eq!(
        reason(&p, json!({"aud": ["jitgate", "other"]})),
        R::WrongAudience
    );
    assert_eq!(
        reason(&p, json!({"aud": ["jitgate", "other"], "azp": "other"})),
        R::WrongAudience
    );
    check(&p, json!({"aud": ["jitgate", "other"], "azp": "jitgate"})).unwrap();
    assert_eq!(reason(&p, json!({"exp": NOW - 31})), R::Expired);
    assert_eq!(reason(&p, json!({"iat": NOW + 120})), R::NotYetValid);
    assert_eq!(reason(&p, json!({"nonce": "n-2"})), R::NonceMismatch);
    assert_eq!(reason(&p, json!({"nonce": null})), R::NonceMismatch);
    assert_eq!(reason(&p, json!({"sub": "sub-x"})), R::Unmapped);
    assert_eq!(reason(&p, json!({"sub": null})), R::Malformed);
    // A replayed token is refused as such, though its nonce is another sign-in's.
    let c = token(json!({"nonce": "n-0"}));
    let l = LoginClaims::read(&c, None);
    let e = check_id_token(&p, &c, &l, "raw", &expect(true, 3600), at(NOW)).unwrap_err();
    assert_eq!(e.reason, R::TokenReplayed);
}

#[test]
fn an_email_rule_needs_a_verified_email() {
    let p = provider(vec![rule("alice", None, Some("Alice@Plant.example"))]);
    assert_eq!(check(&p, json!({})).unwrap().identity, "alice");
    assert_eq!(
        reason(&p, json!({"email_verified": false})),
        SsoRefusalReason::Unmapped
    );
    assert_eq!(
        reason(&p, json!({"email_verified": null})),
        SsoRefusalReason::Unmapped
    );
    assert_eq!(
        check(&p, json!({"email_verified": "true"}))
            .unwrap()
            .identity,
        "alice"
    );
}

#[test]
fn refusal_reasons_have_codes_and_only_our_failures_do_not_count() {
    for r in [
        SsoRefusalReason::StateMismatch,
        SsoRefusalReason::BadSignature,
        SsoRefusalReason::Unmapped,
    ] {
        assert!(r.counts_against_source());
    }
    assert!(!SsoRefusalReason::ProviderUnavailable.counts_against_source());
    assert_eq!(
        SsoRefusalReason::NonceMismatch.code().as_str(),
        "sso_nonce_mismatch"
    );
    assert_eq!(
        serde_json::to_value(SsoRefusalReason::TokenReplayed).unwrap(),
        json!("token_replayed")
    );
}
