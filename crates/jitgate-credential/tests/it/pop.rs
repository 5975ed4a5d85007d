//! Proof of possession as a gateway runs it: challenge, client signature, single-use nonce.

use crate::{claims_for, ring, t0, verifier, GATEWAY};
use chrono::Duration;
use jitgate_credential::{verify_pop, ClientKey, NonceCache};

#[test]
fn holder_of_the_client_key_proves_possession() {
    let (_dir, ring) = ring();
    let client = ClientKey::generate();
    let token = ring.issue(&claims_for(&client, "alice", t0())).unwrap();
    let claims = verifier(&ring, t0()).verify(&token, GATEWAY, t0()).unwrap();

    let mut nonces = NonceCache::new(Duration::seconds(30), 1024);
    let challenge = nonces.issue(t0());
    let sig = client.sign_pop(&challenge.nonce, &token, GATEWAY);
    nonces.consume(&challenge.nonce, t0()).unwrap();
    verify_pop(&claims, &challenge.nonce, &token, GATEWAY, &sig).unwrap();
}

#[test]
fn another_subjects_token_with_a_different_client_key_is_refused() {
    let (_dir, ring) = ring();
    let bob = ClientKey::generate();
    let bobs_token = ring.issue(&claims_for(&bob, "bob", t0())).unwrap();
    let claims = verifier(&ring, t0())
        .verify(&bobs_token, GATEWAY, t0())
        .unwrap();

    // Mallory has Bob's token (stolen from a log or a screen) but only her own key.
    let mallory = ClientKey::generate();
    let nonce = NonceCache::new(Duration::seconds(30), 8).issue(t0()).nonce;
    let sig = mallory.sign_pop(&nonce, &bobs_token, GATEWAY);
    let err = verify_pop(&claims, &nonce, &bobs_token, GATEWAY, &sig).unwrap_err();
    assert_eq!(err.code(), "bad_pop_signature");
}

#[test]
fn replayed_proof_is_refused() {
    let (_dir, ring) = ring();
    let client = ClientKey::generate();
    let token = ring.issue(&claims_for(&client, "alice", t0())).unwrap();
    let mut nonces = NonceCache::new(Duration::seconds(30), 1024);
    let challenge = nonces.issue(t0());
    let _sig = client.sign_pop(&challenge.nonce, &token, GATEWAY);

    nonces.consume(&challenge.nonce, t0()).unwrap();
    // A captured (nonce, signature) pair sent again: the gateway refuses before any crypto.
    let err = nonces
        .consume(&challenge.nonce, t0() + Duration::seconds(1))
        .unwrap_err();
    assert_eq!(err.code(), "nonce_unknown_or_replayed");

    // A nonce this gateway never issued is refused the same way.
    let err = nonces.consume(&[9u8; 32], t0()).unwrap_err();
    assert_eq!(err.code(), "nonce_unknown_or_replayed");

    // A challenge answered too late is refused.
    let late = nonces.issue(t0());
    let err = nonces
        .consume(&late.nonce, t0() + Duration::seconds(31))
        .unwrap_err();
    assert_eq!(err.code(), "challenge_expired");
}

#[test]
fn proof_over_another_token_or_nonce_or_gateway_is_refused() {
    let (_dir, ring) = ring();
    let client = ClientKey::generate();
    let token_a = ring.issue(&claims_for(&client, "alice", t0())).unwrap();
    let mut other = claims_for(&client, "alice", t0());
    other.token_id = "tok-other".into();
    let token_b = ring.issue(&other).unwrap();
    let v = verifier(&ring, t0());
    let claims_a = v.verify(&token_a, GATEWAY, t0()).unwrap();
    let claims_b = v.verify(&token_b, GATEWAY, t0()).unwrap();

    let nonce = [3u8; 32];
    let sig_over_a = client.sign_pop(&nonce, &token_a, GATEWAY);
    // Presented with token B (same key, different token): refused.
    let err = verify_pop(&claims_b, &nonce, &token_b, GATEWAY, &sig_over_a).unwrap_err();
    assert_eq!(err.code(), "bad_pop_signature");
    // Answer to a different challenge: refused.
    let err = verify_pop(&claims_a, &[4u8; 32], &token_a, GATEWAY, &sig_over_a).unwrap_err();
    assert_eq!(err.code(), "bad_pop_signature");
    // Made for another gateway and relayed here: refused.
    let sig_for_south = client.sign_pop(&nonce, &token_a, "gw-south");
    let err = verify_pop(&claims_a, &nonce, &token_a, GATEWAY, &sig_for_south).unwrap_err();
    assert_eq!(err.code(), "bad_pop_signature");
    // Garbage signatures: refused without panicking.
    for junk in ["", "AAAA", &"A".repeat(86), &"A".repeat(10_000), "!!!"] {
        let err = verify_pop(&claims_a, &nonce, &token_a, GATEWAY, junk).unwrap_err();
        assert_eq!(err.code(), "bad_pop_signature", "{junk:?}");
    }
    // The real one still passes.
    verify_pop(&claims_a, &nonce, &token_a, GATEWAY, &sig_over_a).unwrap();
}
