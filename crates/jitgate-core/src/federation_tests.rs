#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn identity(id: &str, kind: &str) -> Identity {
    serde_json::from_value(json!({"id": id, "kind": kind})).unwrap()
}

fn trust(bindings: Vec<(&str, &[(&str, &str)])>) -> Trust {
    Trust {
        name: "gitlab-ci".into(),
        issuer: "https://gitlab.example.com".into(),
        audience: "https://jitgate.plant.example".into(),
        max_session_secs: DEFAULT_MAX_SESSION_SECS,
        bindings: bindings
            .into_iter()
            .map(|(id, claims)| Binding {
                identity: id.into(),
                claims: claims
                    .iter()
                    .map(|(k, v)| (k.to_string(), ClaimPattern::parse(v).unwrap()))
                    .collect(),
            })
            .collect(),
    }
}

fn inventory() -> Vec<Identity> {
    vec![
        identity("wl-ci-deployer", "workload"),
        identity("wl-other", "workload"),
        identity("alice", "human"),
    ]
}

fn validate(t: &Trust) -> Result<(), TrustError> {
    let inv = inventory();
    validate_trust(t, |id| inv.iter().find(|i| i.id == id))
}

const NOW: i64 = 1_700_000_000;

fn at(secs: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(secs, 0).unwrap()
}

fn claims(extra: Value) -> TokenClaims {
    let mut v = json!({
        "iss": "https://gitlab.example.com",
        "aud": "https://jitgate.plant.example",
        "sub": "project_path:plant/plc-configs:ref_type:branch:ref:main",
        "project_path": "plant/plc-configs",
        "ref": "main",
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 300,
        "jti": "j-1",
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

fn ci_trust() -> Trust {
    trust(vec![
        (
            "wl-ci-deployer",
            &[("project_path", "plant/plc-configs"), ("ref", "main")],
        ),
        ("wl-other", &[("project_path", "plant/*"), ("ref", "dev")]),
    ])
}

fn reason(r: Result<Accepted, Refusal>) -> RefusalReason {
    r.unwrap_err().reason
}

#[test]
fn patterns_exact_prefix_and_refused_globs() {
    assert!(ClaimPattern::parse("main").unwrap().matches("main"));
    assert!(!ClaimPattern::parse("main").unwrap().matches("main2"));
    let p = ClaimPattern::parse("refs/heads/release-*").unwrap();
    assert!(p.matches("refs/heads/release-1.2") && !p.matches("refs/heads/main"));
    assert!(ClaimPattern::parse("*").is_err());
    assert!(ClaimPattern::parse("a*b").is_err());
    assert!(ClaimPattern::parse("").is_err());
}

#[test]
fn a_trust_is_refused_when_it_would_accept_more_than_meant() {
    validate(&ci_trust()).unwrap();
    let e = validate(&trust(vec![("wl-ci-deployer", &[])])).unwrap_err();
    assert!(e.message.contains("every token"), "{e}");
    let e = validate(&trust(vec![])).unwrap_err();
    assert!(e.message.contains("at least one binding"), "{e}");
    let e = validate(&trust(vec![("nobody", &[("sub", "x")])])).unwrap_err();
    assert!(e.message.contains("not in the inventory"), "{e}");
    let e = validate(&trust(vec![("alice", &[("sub", "x")])])).unwrap_err();
    assert!(e.message.contains("not a workload"), "{e}");
    let mut t = ci_trust();
    t.audience = " ".into();
    assert!(validate(&t).unwrap_err().message.contains("audience"));
    let mut t = ci_trust();
    t.max_session_secs = 2 * 86_400;
    assert!(validate(&t).unwrap_err().message.contains("max_session"));
    let mut t = ci_trust();
    t.name = "bad name".into();
    assert!(validate(&t).is_err());
}

#[test]
fn bindings_to_different_identities_that_one_token_could_match_are_refused() {
    // Two identities, claims that can take one value: which wins would be the file's order.
    for (a, b) in [
        (&[("ref", "main")][..], &[("ref", "main")][..]),
        (&[("ref", "main")], &[("ref", "ma*")]),
        (&[("ref", "release-*")], &[("ref", "rel*")]),
        // A claim only one binding names does not tell them apart.
        (&[("ref", "main")], &[("project_path", "plant/*")]),
    ] {
        let e = validate(&trust(vec![("wl-ci-deployer", a), ("wl-other", b)])).unwrap_err();
        assert!(
            e.message
                .contains("bind #1 (wl-ci-deployer) and bind #2 (wl-other)"),
            "{a:?} {b:?}: {e}"
        );
    }
    // Exclusive: a claim both name with values no token can have at once.
    for (a, b) in [
        (&[("ref", "main")][..], &[("ref", "dev")][..]),
        (&[("ref", "main")], &[("ref", "release-*")]),
        (
            &[("ref", "release-*"), ("sub", "x")],
            &[("ref", "hotfix-*")],
        ),
    ] {
        validate(&trust(vec![("wl-ci-deployer", a), ("wl-other", b)]))
            .unwrap_or_else(|e| panic!("{a:?} {b:?}: {e}"));
    }
    // Overlap within one identity maps every such token to it: allowed.
    validate(&trust(vec![
        ("wl-other", &[("ref", "main")]),
        ("wl-other", &[("ref", "ma*")]),
    ]))
    .unwrap();
}

#[test]
fn a_good_token_maps_to_its_binding() {
    let t = ci_trust();
    let a = check(&t, &claims(json!({})), "raw", at(NOW)).unwrap();
    assert_eq!((a.binding, a.identity.as_str()), (0, "wl-ci-deployer"));
    assert_eq!(a.matched["ref"], "main");
    // Another branch of the same group goes to the second binding.
    let a = check(&t, &claims(json!({"ref": "dev"})), "raw", at(NOW)).unwrap();
    assert_eq!((a.binding, a.identity.as_str()), (1, "wl-other"));
    assert_eq!(
        a.matched.keys().collect::<Vec<_>>(),
        vec!["project_path", "ref"],
        "only the bound claims are reported"
    );
}

#[test]
fn unbound_claims_wrong_audience_and_issuer_are_refused() {
    let t = ci_trust();
    let other = claims(json!({"project_path": "elsewhere/x"}));
    assert_eq!(
        reason(check(&t, &other, "r", at(NOW))),
        RefusalReason::ClaimsNotBound
    );
    // A claim that is not a string never matches.
    let num = claims(json!({"project_path": 7, "ref": "main"}));
    assert_eq!(
        reason(check(&t, &num, "r", at(NOW))),
        RefusalReason::ClaimsNotBound
    );
    let aud = claims(json!({"aud": ["https://other.example"]}));
    assert_eq!(
        reason(check(&t, &aud, "r", at(NOW))),
        RefusalReason::WrongAudience
    );
    let aud = claims(json!({"aud": null}));
    assert_eq!(
        reason(check(&t, &aud, "r", at(NOW))),
        RefusalReason::WrongAudience
    );
    let many = claims(json!({"aud": ["x", "https://jitgate.plant.example"]}));
    assert!(check(&t, &many, "r", at(NOW)).is_ok());
    let iss = claims(json!({"iss": "https://gitlab.example.com/"}));
    assert_eq!(
        reason(check(&t, &iss, "r", at(NOW))),
        RefusalReason::UnknownIssuer,
        "the issuer must be equal, not merely alike"
    );
}

#[test]
fn times_are_checked_with_a_small_leeway() {
    let t = ci_trust();
    let c = claims(json!({"exp": NOW - LEEWAY_SECS + 1}));
    assert!(check(&t, &c, "r", at(NOW)).is_ok(), "within the leeway");
    let c = claims(json!({"exp": NOW - LEEWAY_SECS}));
    assert_eq!(reason(check(&t, &c, "r", at(NOW))), RefusalReason::Expired);
    let c = claims(json!({"nbf": NOW + LEEWAY_SECS + 1}));
    assert_eq!(
        reason(check(&t, &c, "r", at(NOW))),
        RefusalReason::NotYetValid
    );
    let c = claims(json!({"iat": NOW + LEEWAY_SECS + 1, "nbf": null}));
    assert_eq!(
        reason(check(&t, &c, "r", at(NOW))),
        RefusalReason::NotYetValid
    );
    let c = claims(json!({"iat": NOW - 3600, "exp": NOW + MAX_TOKEN_LIFETIME_SECS}));
    assert_eq!(
        reason(check(&t, &c, "r", at(NOW))),
        RefusalReason::LifetimeTooLong
    );
    let c = claims(json!({"iat": null, "exp": NOW + MAX_TOKEN_LIFETIME_SECS + 1}));
    assert_eq!(
        reason(check(&t, &c, "r", at(NOW))),
        RefusalReason::LifetimeTooLong
    );
}

#[test]
fn the_session_ends_at_the_token_expiry_or_the_maximum_whichever_is_first() {
    let t = ci_trust();
    let a = check(&t, &claims(json!({"exp": NOW + 60})), "r", at(NOW)).unwrap();
    assert_eq!(a.session_expires_at, at(NOW + 60));
    let a = check(&t, &claims(json!({"exp": NOW + 7200})), "r", at(NOW)).unwrap();
    assert_eq!(a.session_expires_at, at(NOW + DEFAULT_MAX_SESSION_SECS));
    assert_eq!(a.replay_until, at(NOW + 7200 + LEEWAY_SECS));
}

#[test]
fn replay_keys_follow_jti_or_the_token_bytes() {
    let with = claims(json!({}));
    assert_eq!(replay_key(&with, "a"), replay_key(&with, "b"), "same jti");
    let other = claims(json!({"jti": "j-2"}));
    assert_ne!(replay_key(&with, "a"), replay_key(&other, "a"));
    let without = claims(json!({"jti": null}));
    assert_ne!(replay_key(&without, "a"), replay_key(&without, "b"));
    assert_eq!(replay_key(&without, "a"), replay_key(&without, "a"));
}

#[test]
fn nested_claims_are_bound_by_json_pointer() {
    let c = claims(json!({
        "kubernetes.io": {"namespace": "plant", "serviceaccount": {"name": "deployer"}}
    }));
    assert_eq!(c.string_claim("/kubernetes.io/namespace"), Some("plant"));
    assert_eq!(
        c.string_claim("/kubernetes.io/serviceaccount/name"),
        Some("deployer")
    );
    assert_eq!(
        c.string_claim("/kubernetes.io"),
        None,
        "an object is not a string"
    );
    assert_eq!(c.string_claim("ref"), Some("main"));
    assert_eq!(c.string_claim("/ref"), Some("main"));
}

#[test]
fn malformed_payloads_say_what_is_missing() {
    let e = TokenClaims::from_json(json!({"exp": 1})).unwrap_err();
    assert!(e.message.contains("iss"), "{e}");
    let e = TokenClaims::from_json(json!({"iss": "x"})).unwrap_err();
    assert!(e.message.contains("exp"), "{e}");
    let e = TokenClaims::from_json(json!({"iss": "x", "exp": "soon"})).unwrap_err();
    assert_eq!(e.reason, RefusalReason::Malformed);
    let e = TokenClaims::from_json(json!({"iss": "x", "exp": 1, "aud": [1]})).unwrap_err();
    assert!(e.message.contains("aud"), "{e}");
    assert!(TokenClaims::from_json(json!([1])).is_err());
}

#[test]
fn every_reason_has_its_code_and_only_unavailability_spares_the_source() {
    use RefusalReason::*;
    let all = [
        Malformed,
        UnknownIssuer,
        BadSignature,
        WrongAudience,
        Expired,
        NotYetValid,
        LifetimeTooLong,
        ClaimsNotBound,
        TokenReplayed,
        JwksUnavailable,
        IdentityDisabled,
    ];
    for r in all {
        assert_eq!(r.counts_against_source(), r != JwksUnavailable);
        let status = r.code().http_status();
        assert!([401, 403, 503].contains(&status), "{r:?}");
    }
    assert_eq!(JwksUnavailable.code().http_status(), 503);
    assert_eq!(TokenReplayed.code(), "token_replayed");
}

#[test]
fn logged_values_are_cut_and_cleaned() {
    assert_eq!(capped("a\u{1b}[31mb\n"), "a[31mb");
    assert_eq!(capped(&"x".repeat(1000)).len(), 256);
}
