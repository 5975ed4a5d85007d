//! Issue → verify, and every way a token must be refused.

use crate::{claims_for, ring, t0, verifier, GATEWAY};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use jitgate_core::lifecycle::{Grant, GrantState};
use jitgate_core::scope::{ModbusOp, ModbusTable, Scope, ScopeItem};
use jitgate_credential::{
    token_fingerprint, AssetClaim, ClientKey, GrantClaims, PublicKeyInfo, Verifier, MAX_TOKEN_LEN,
};

#[test]
fn issued_token_verifies_and_returns_the_claims() {
    let (_dir, ring) = ring();
    let client = ClientKey::generate();
    let claims = claims_for(&client, "alice", t0());
    let token = ring.issue(&claims).unwrap();
    assert!(token.starts_with("v4.public."), "{token}");
    assert!(token.len() < 4096, "token is {} bytes", token.len());

    let got = verifier(&ring, t0())
        .verify(&token, GATEWAY, t0() + Duration::seconds(1))
        .unwrap();
    assert_eq!(got, claims);
}

#[test]
fn footer_names_the_kid_in_clear_json() {
    let (_dir, ring) = ring();
    let token = ring
        .issue(&claims_for(&ClientKey::generate(), "alice", t0()))
        .unwrap();
    let footer = token.rsplit('.').next().unwrap();
    let footer: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(footer).unwrap()).unwrap();
    assert_eq!(footer, serde_json::json!({ "kid": ring.current_kid() }));
}

#[test]
fn token_re_signed_with_another_key_is_refused() {
    let (_dir, ring) = ring();
    let (_dir2, forger) = ring_pair();
    let claims = claims_for(&ClientKey::generate(), "alice", t0());
    let forged = forger.issue(&claims).unwrap();
    let v = verifier(&ring, t0());

    // The forger's own kid: the gateway does not know it.
    let err = v.verify(&forged, GATEWAY, t0()).unwrap_err();
    assert_eq!(err.code(), "unknown_key", "{err}");

    // The forger claims the real kid in the footer: the signature does not hold.
    let mut parts: Vec<String> = forged.split('.').map(String::from).collect();
    parts[3] = URL_SAFE_NO_PAD.encode(format!("{{\"kid\":\"{}\"}}", ring.current_kid()));
    let err = v.verify(&parts.join("."), GATEWAY, t0()).unwrap_err();
    assert_eq!(err.code(), "bad_signature", "{err}");
}

fn ring_pair() -> (tempfile::TempDir, jitgate_credential::KeyRing) {
    ring()
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let (_dir, ring) = ring();
    let claims = claims_for(&ClientKey::generate(), "alice", t0());
    let token = ring.issue(&claims).unwrap();
    let v = verifier(&ring, t0());

    let err = v.verify(&token, GATEWAY, claims.expires_at).unwrap_err();
    assert_eq!(err.code(), "expired", "{err}");
    assert!(v
        .verify(
            &token,
            GATEWAY,
            claims.expires_at - Duration::milliseconds(1)
        )
        .is_ok());

    let err = v
        .verify(&token, GATEWAY, t0() - Duration::seconds(1))
        .unwrap_err();
    assert_eq!(err.code(), "not_yet_valid", "{err}");

    // An explicit leeway widens the window by exactly that much.
    let lenient = v.clone().with_leeway(Duration::seconds(5));
    assert!(lenient
        .verify(&token, GATEWAY, t0() - Duration::seconds(5))
        .is_ok());
    assert!(lenient
        .verify(&token, GATEWAY, claims.expires_at + Duration::seconds(4))
        .is_ok());
    assert_eq!(
        lenient
            .verify(&token, GATEWAY, claims.expires_at + Duration::seconds(5))
            .unwrap_err()
            .code(),
        "expired"
    );
}

#[test]
fn token_for_another_gateway_is_refused() {
    let (_dir, ring) = ring();
    let token = ring
        .issue(&claims_for(&ClientKey::generate(), "alice", t0()))
        .unwrap();
    let err = verifier(&ring, t0())
        .verify(&token, "gw-south", t0())
        .unwrap_err();
    assert_eq!(err.code(), "wrong_audience");
    assert!(err.to_string().contains("gw-north"), "{err}");
}

#[test]
fn every_tampered_payload_byte_is_refused() {
    let (_dir, ring) = ring();
    let token = ring
        .issue(&claims_for(&ClientKey::generate(), "alice", t0()))
        .unwrap();
    let v = verifier(&ring, t0());
    let parts: Vec<&str> = token.split('.').collect();
    let body = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    // Flip one bit at a spread of positions: payload start, middle, end, and the signature.
    for pos in [
        0,
        body.len() / 3,
        body.len() / 2,
        body.len() - 65,
        body.len() - 1,
    ] {
        let mut altered = body.clone();
        altered[pos] ^= 0x01;
        let forged = format!(
            "{}.{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(&altered),
            parts[3]
        );
        let err = v.verify(&forged, GATEWAY, t0()).unwrap_err();
        assert_eq!(err.code(), "bad_signature", "byte {pos}: {err}");
    }
}

#[test]
fn truncated_tokens_are_refused() {
    let (_dir, ring) = ring();
    let token = ring
        .issue(&claims_for(&ClientKey::generate(), "alice", t0()))
        .unwrap();
    let v = verifier(&ring, t0());
    for len in [0, 5, 10, 11, 40, token.len() / 2, token.len() - 1] {
        let err = v.verify(&token[..len], GATEWAY, t0()).unwrap_err();
        assert!(
            ["token_malformed", "bad_signature"].contains(&err.code()),
            "len {len}: {err}"
        );
    }
    // Dropping the footer is malformed: our tokens always name their key.
    let no_footer = token.rsplit_once('.').unwrap().0;
    assert_eq!(
        v.verify(no_footer, GATEWAY, t0()).unwrap_err().code(),
        "token_malformed"
    );
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let (_dir, ring) = ring();
    let token = ring
        .issue(&claims_for(&ClientKey::generate(), "alice", t0()))
        .unwrap();
    let v = verifier(&ring, t0());
    let huge = format!("{token}{}", "A".repeat(MAX_TOKEN_LEN));
    let err = v.verify(&huge, GATEWAY, t0()).unwrap_err();
    assert_eq!(err.code(), "token_too_long");
    let err = v
        .verify(&"x".repeat(MAX_TOKEN_LEN + 1), GATEWAY, t0())
        .unwrap_err();
    assert_eq!(err.code(), "token_too_long");
}

#[test]
fn issue_refuses_claims_a_gateway_would_refuse() {
    let (_dir, ring) = ring();
    let mut claims = claims_for(&ClientKey::generate(), "alice", t0());
    claims.scope.push(ScopeItem::Modbus {
        asset: "plc-99".into(),
        unit: 1,
        op: ModbusOp::Read,
        table: Some(ModbusTable::Coil),
        start: 0,
        end: 1,
    });
    assert_eq!(ring.issue(&claims).unwrap_err().code(), "bad_claims");

    let mut claims = claims_for(&ClientKey::generate(), "alice", t0());
    claims.cnf = "not-a-key".into();
    assert_eq!(ring.issue(&claims).unwrap_err().code(), "bad_claims");
}

#[test]
fn verifier_refuses_a_key_list_whose_kid_does_not_match_the_key() {
    let (_dir, ring) = ring();
    let (_dir2, other) = ring_pair();
    let mut keys = ring.public_keys(t0());
    keys[0].public_key = other.public_keys(t0())[0].public_key.clone();
    let err = Verifier::new(&keys).unwrap_err();
    assert_eq!(err.code(), "invalid_public_key");

    let bad = [PublicKeyInfo {
        kid: "k4.pid.x".into(),
        public_key: "AAAA".into(),
        retire_at: None,
    }];
    assert_eq!(
        Verifier::new(&bad).unwrap_err().code(),
        "invalid_public_key"
    );
}

#[test]
fn fingerprint_identifies_without_revealing() {
    let (_dir, ring) = ring();
    let token = ring
        .issue(&claims_for(&ClientKey::generate(), "alice", t0()))
        .unwrap();
    let fp = token_fingerprint(&token);
    assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");
    assert_ne!(fp, token_fingerprint(&format!("{token}x")));
}

fn grant(state: GrantState) -> Grant {
    let scope = Scope::new(vec![
        ScopeItem::Modbus {
            asset: "plc-7".into(),
            unit: 1,
            op: ModbusOp::Read,
            table: Some(ModbusTable::Holding),
            start: 0,
            end: 99,
        },
        ScopeItem::Modbus {
            asset: "plc-far".into(),
            unit: 3,
            op: ModbusOp::Read,
            table: Some(ModbusTable::Input),
            start: 0,
            end: 9,
        },
    ])
    .unwrap();
    Grant {
        id: "grt-1".into(),
        request_id: "req-1".into(),
        subject: "alice".into(),
        scope_digest: scope.digest(),
        scope,
        not_before: t0(),
        expires_at: t0() + Duration::hours(1),
        state,
        emergency: false,
        review_required: false,
        ended_at: None,
        end_reason: None,
        created_at: t0(),
    }
}

fn plc7() -> AssetClaim {
    AssetClaim {
        asset: "plc-7".into(),
        protocol: "modbus".into(),
        address: "127.0.0.1:5020".into(),
        unit_ids: vec![1],
    }
}

#[test]
fn claims_for_a_grant_carry_only_this_gateways_part_and_never_outlive_the_grant() {
    let (_dir, ring) = ring();
    let client = ClientKey::generate();
    let g = grant(GrantState::Active);
    let now = t0() + Duration::minutes(50);
    let claims = GrantClaims::for_grant(
        &g,
        GATEWAY,
        &[plc7()],
        &client.public_b64(),
        now,
        Duration::minutes(30),
    )
    .unwrap();
    assert_eq!(claims.expires_at, g.expires_at, "clamped to the grant");
    assert_eq!(claims.scope.len(), 1);
    assert_eq!(claims.scope[0].asset(), "plc-7");
    assert_eq!(claims.scope_digest, g.scope_digest);
    assert_eq!(claims.subject, "alice");

    let early = GrantClaims::for_grant(
        &g,
        GATEWAY,
        &[plc7()],
        &client.public_b64(),
        t0(),
        Duration::minutes(30),
    )
    .unwrap();
    assert_eq!(early.expires_at, t0() + Duration::minutes(30));
    assert_ne!(early.token_id, claims.token_id);

    let token = ring.issue(&claims).unwrap();
    verifier(&ring, now).verify(&token, GATEWAY, now).unwrap();

    for (grant, at, endpoints) in [
        (grant(GrantState::Ending), now, vec![plc7()]),
        (g.clone(), g.expires_at, vec![plc7()]),
        (g.clone(), t0() - Duration::seconds(1), vec![plc7()]),
        (g.clone(), now, vec![]),
    ] {
        let err = GrantClaims::for_grant(
            &grant,
            GATEWAY,
            &endpoints,
            &client.public_b64(),
            at,
            Duration::minutes(30),
        )
        .unwrap_err();
        assert_eq!(err.code(), "grant_not_usable", "{err}");
    }
}

#[test]
fn verification_of_many_tokens_completes() {
    // Verification is on the session-start path; this exercises it in bulk (the timing itself
    // is measured in the benchmark, not asserted here).
    let (_dir, ring) = ring();
    let v = verifier(&ring, t0());
    let token = ring
        .issue(&claims_for(&ClientKey::generate(), "alice", t0()))
        .unwrap();
    for _ in 0..200 {
        v.verify(&token, GATEWAY, t0()).unwrap();
    }
}
