//! Passkeys for step-up through the API, with real WebAuthn registrations and assertions made
//! by a software authenticator (`webauthn-authenticator-rs`'s `SoftPasskey`): enrolment, a
//! step-up approval bound to its request, and every refusal the issue names, each with its
//! code and an `auth.passkey_refused` event. On SQLite and PostgreSQL.

use super::lifecycle::{enroll_totp, NowTs};
use super::{events_of, write_plc7, Harness};
use jitgate_core::ManualClock;
use jitgate_testkit::each_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ORIGIN: &str = "http://localhost:8080";

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

async fn start(store: jitgate_store::Store) -> Harness {
    let clock = Arc::new(ManualClock::new(super::start_time()));
    Harness::start_configured(store, clock, |c| {
        c.passkeys.origin = Some(ORIGIN.into());
    })
    .await
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or_default()
}

/// A registration ceremony begun by `who` for a passkey named `name`.
async fn begin_registration(h: &mut Harness, who: &str, name: &str) -> Value {
    let (s, v) = h
        .call(
            who,
            "POST",
            "/api/v1/auth/passkeys/register/begin",
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Enrol a new passkey of `who` made by `key`; its credential id.
async fn enrol(h: &mut Harness, who: &str, name: &str, key: &mut SoftPasskey) -> String {
    let c = begin_registration(h, who, name).await;
    let options: CreationChallengeResponse =
        serde_json::from_value(c["public_key"].clone()).unwrap();
    let cred = key.do_registration(origin(), options).unwrap();
    let (s, v) = h
        .call(
            who,
            "POST",
            "/api/v1/auth/passkeys/register/finish",
            Some(json!({"challenge_id": c["challenge_id"], "credential": cred})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], name);
    v["credential_id"].as_str().unwrap().to_string()
}

/// A step-up ceremony begun by `who` on `request`.
async fn begin_step_up(h: &mut Harness, who: &str, request: &Value) -> Value {
    let id = request["id"].as_str().unwrap();
    let (s, v) = h
        .call(
            who,
            "POST",
            &format!("/api/v1/requests/{id}/step-up/passkey"),
            Some(json!({"scope_digest": request["scope_digest"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// `key`'s answer to a step-up ceremony. `allow` replaces the credentials the server
/// listed, to make an authenticator answer with a credential the server did not ask for.
fn assert_with(key: &mut SoftPasskey, ceremony: &Value, allow: Option<&[&str]>) -> Value {
    let mut public_key = ceremony["public_key"].clone();
    if let Some(ids) = allow {
        public_key["publicKey"]["allowCredentials"] = ids
            .iter()
            .map(|id| json!({"type": "public-key", "id": id}))
            .collect();
    }
    let options: RequestChallengeResponse = serde_json::from_value(public_key).unwrap();
    let cred = key.do_authentication(origin(), options).unwrap();
    json!({"challenge_id": ceremony["challenge_id"], "credential": cred})
}

async fn approve_with(
    h: &mut Harness,
    who: &str,
    request: &Value,
    passkey: Value,
) -> (StatusCode, Value) {
    let id = request["id"].as_str().unwrap();
    let body =
        json!({"scope_digest": request["scope_digest"], "comment": "ok", "passkey": passkey});
    h.call(
        who,
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        Some(body),
    )
    .await
}

/// The `auth.passkey_refused` events' reasons, oldest first (as the events list them).
async fn refusals(h: &mut Harness) -> Vec<String> {
    events_of(h, "auth.passkey_refused")
        .await
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_passkey_enrolled_in_the_api_approves_a_step_up_request_bound_to_it() {
    each_backend(|store| async move {
        let mut h = start(store).await;
        let mut key = SoftPasskey::new(true);
        let cred = enrol(&mut h, "bob", "laptop", &mut key).await;
        let (s, list) = h.call("bob", "GET", "/api/v1/auth/passkeys", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["credential_id"], cred.as_str());
        // The registration asked for user verification and preferred a resident key.
        let c = begin_registration(&mut h, "bob", "another").await;
        let sel = &c["public_key"]["publicKey"]["authenticatorSelection"];
        assert_eq!(sel["userVerification"], "required", "{sel}");
        assert_eq!(sel["residentKey"], "preferred", "{sel}");
        // Each sees only their own passkeys.
        let (_, alice) = h.call("alice", "GET", "/api/v1/auth/passkeys", None).await;
        assert_eq!(alice, json!([]));

        // oscar asks to write coils on the safety PLC: two engineers, with step-up.
        let r = h.request("oscar", write_plc7("2h")).await;
        assert_eq!(r["obligations"]["step_up"], true);
        let (s, v) = h.approve("bob", &r, None).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "step_up_required")
        );
        let ceremony = begin_step_up(&mut h, "bob", &r).await;
        let allowed = &ceremony["public_key"]["publicKey"]["allowCredentials"];
        assert_eq!(allowed[0]["id"], cred.as_str(), "{allowed}");
        let assertion = assert_with(&mut key, &ceremony, None);
        let (s, v) = approve_with(&mut h, "bob", &r, assertion).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["approved_by"], json!(["bob"]));
        assert_eq!(v["approvals"][0]["step_up"], true);
        let recorded = events_of(&mut h, "approval.recorded").await;
        assert_eq!(
            recorded[0]["data"]["step_up_method"],
            json!({"method": "passkey", "credential_id": cred})
        );
        let enrolled = events_of(&mut h, "auth.passkey_enrolled").await;
        assert_eq!(enrolled[0]["data"]["credential_id"], cred.as_str());
        assert_eq!(enrolled[0]["data"]["name"], "laptop");
        // Its counter was stored and its last use recorded.
        let (_, list) = h.call("bob", "GET", "/api/v1/auth/passkeys", None).await;
        assert!(list[0]["last_used_at"].is_string(), "{list}");
        // A TOTP step-up is recorded as such.
        let secret = enroll_totp(&mut h, "alice").await;
        let totp = jitgate_server::auth::totp_code_at(&secret, h.clock.now_ts()).unwrap();
        let (s, v) = h.approve("alice", &r, Some(totp)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["approved_by"], json!(["bob", "alice"]));
        assert_eq!(v["state"], "active", "approved, and its window is open");
        let recorded = events_of(&mut h, "approval.recorded").await;
        assert_eq!(recorded.len(), 2);
        assert_eq!(
            recorded[1]["data"]["step_up_method"],
            json!({"method": "totp"})
        );
        assert!(refusals(&mut h).await.is_empty());
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn assertions_for_another_request_scope_or_time_and_reused_challenges_are_refused() {
    each_backend(|store| async move {
        let mut h = start(store).await;
        let mut key = SoftPasskey::new(true);
        enrol(&mut h, "bob", "laptop", &mut key).await;
        let a = h.request("oscar", write_plc7("2h")).await;
        let b = h.request("oscar", write_plc7("3h")).await;

        // An assertion obtained for request a cannot approve request b.
        let for_a = begin_step_up(&mut h, "bob", &a).await;
        let assertion = assert_with(&mut key, &for_a, None);
        let (s, v) = approve_with(&mut h, "bob", &b, assertion).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_wrong_request"),
            "{v}"
        );
        // Nor a (its challenge is spent by that attempt).
        let assertion = assert_with(&mut key, &for_a, None);
        let (s, v) = approve_with(&mut h, "bob", &a, assertion).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_challenge_used"),
            "{v}"
        );

        // Nor a once its scope digest changed after the challenge was issued.
        let for_a = begin_step_up(&mut h, "bob", &a).await;
        let assertion = assert_with(&mut key, &for_a, None);
        let id = a["id"].as_str().unwrap();
        let mut tx = h.state().store.write().await.unwrap();
        let mut stored = tx.get_request(id).await.unwrap().unwrap();
        let digest = stored.scope_digest.clone();
        stored.scope_digest = "sha256:changed".into();
        tx.update_request(&stored).await.unwrap();
        tx.commit().await.unwrap();
        let mut changed = a.clone();
        changed["scope_digest"] = json!("sha256:changed");
        let (s, v) = approve_with(&mut h, "bob", &changed, assertion).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_scope_changed"),
            "{v}"
        );
        let mut tx = h.state().store.write().await.unwrap();
        stored.scope_digest = digest;
        tx.update_request(&stored).await.unwrap();
        tx.commit().await.unwrap();

        // A challenge answered after its expiry.
        let for_a = begin_step_up(&mut h, "bob", &a).await;
        let assertion = assert_with(&mut key, &for_a, None);
        h.clock.advance(chrono::Duration::seconds(
            jitgate_core::passkey::DEFAULT_CHALLENGE_TTL_SECS,
        ));
        let (s, v) = approve_with(&mut h, "bob", &a, assertion).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_challenge_expired"),
            "{v}"
        );
        // A challenge id that was never issued.
        let mut forged = assert_with(&mut key, &begin_step_up(&mut h, "bob", &a).await, None);
        forged["challenge_id"] = json!("pkc-nonexistent");
        let (s, v) = approve_with(&mut h, "bob", &a, forged).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_challenge_unknown"),
            "{v}"
        );
        // alice presents bob's challenge and bob's assertion.
        let for_a = begin_step_up(&mut h, "bob", &a).await;
        let assertion = assert_with(&mut key, &for_a, None);
        let (s, v) = approve_with(&mut h, "alice", &a, assertion).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_challenge_of_another"),
            "{v}"
        );
        // Nothing of that approved anything; a fresh, bound assertion still does.
        let for_a = begin_step_up(&mut h, "bob", &a).await;
        let assertion = assert_with(&mut key, &for_a, None);
        let (s, v) = approve_with(&mut h, "bob", &a, assertion).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["approved_by"], json!(["bob"]));
        assert_eq!(
            refusals(&mut h).await,
            [
                "wrong_request",
                "challenge_used",
                "scope_changed",
                "challenge_expired",
                "challenge_unknown",
                "challenge_of_another"
            ]
        );
        let refused = events_of(&mut h, "auth.passkey_refused").await;
        assert!(refused
            .iter()
            .all(|e| e["data"]["stage"] == "step_up" && e["data"]["request_id"].is_string()));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unenrolled_removed_and_foreign_authenticators_and_counter_regressions_are_refused() {
    each_backend(|store| async move {
        let mut h = start(store).await;
        let mut key = SoftPasskey::new(true);
        enrol(&mut h, "bob", "laptop", &mut key).await;
        let r = h.request("oscar", write_plc7("2h")).await;

        // An authenticator that made a credential for bob but never finished enrolling it.
        let mut stranger = SoftPasskey::new(true);
        let c = begin_registration(&mut h, "bob", "never finished").await;
        let options: CreationChallengeResponse =
            serde_json::from_value(c["public_key"].clone()).unwrap();
        let unenrolled = stranger.do_registration(origin(), options).unwrap().id;
        let ceremony = begin_step_up(&mut h, "bob", &r).await;
        let assertion = assert_with(&mut stranger, &ceremony, Some(&[&unenrolled]));
        let (s, v) = approve_with(&mut h, "bob", &r, assertion).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_unknown_credential"),
            "{v}"
        );

        // alice's passkey answering bob's challenge.
        let mut alices = SoftPasskey::new(true);
        let alice_cred = enrol(&mut h, "alice", "alice's key", &mut alices).await;
        let ceremony = begin_step_up(&mut h, "bob", &r).await;
        let assertion = assert_with(&mut alices, &ceremony, Some(&[&alice_cred]));
        let (s, v) = approve_with(&mut h, "bob", &r, assertion).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_of_another_identity"),
            "{v}"
        );

        // A passkey bob removed. Removal needs a fresh sign-in or a TOTP code.
        let mut second = SoftPasskey::new(true);
        let second_cred = enrol(&mut h, "bob", "spare", &mut second).await;
        let secret = enroll_totp(&mut h, "bob").await;
        h.clock.advance(chrono::Duration::minutes(10));
        let remove = format!("/api/v1/auth/passkeys/{second_cred}/remove");
        let (s, v) = h.call("bob", "POST", &remove, Some(json!({}))).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "fresh_auth_required"),
            "{v}"
        );
        // alice cannot remove bob's passkey, whatever she sends.
        let (s, _) = h.call("alice", "POST", &remove, Some(json!({}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let totp = jitgate_server::auth::totp_code_at(&secret, h.clock.now_ts()).unwrap();
        let (s, v) = h
            .call("bob", "POST", &remove, Some(json!({"totp": totp})))
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        let removed = events_of(&mut h, "auth.passkey_removed").await;
        assert_eq!(removed[0]["data"]["confirmed_by"], "totp");
        let (_, list) = h.call("bob", "GET", "/api/v1/auth/passkeys", None).await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        let ceremony = begin_step_up(&mut h, "bob", &r).await;
        let listed = ceremony["public_key"]["publicKey"]["allowCredentials"].to_string();
        assert!(!listed.contains(&second_cred), "{listed}");
        let assertion = assert_with(&mut second, &ceremony, Some(&[&second_cred]));
        let (s, v) = approve_with(&mut h, "bob", &r, assertion).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_removed"),
            "{v}"
        );

        // Two ceremonies answered in one order and presented in the other: the older
        // assertion's counter is behind the one stored by the newer.
        let first = begin_step_up(&mut h, "bob", &r).await;
        let then = begin_step_up(&mut h, "bob", &r).await;
        let older = assert_with(&mut key, &first, None);
        let newer = assert_with(&mut key, &then, None);
        let (s, v) = approve_with(&mut h, "bob", &r, newer).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = approve_with(&mut h, "bob", &r, older).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_counter_regression"),
            "{v}"
        );
        assert_eq!(
            refusals(&mut h).await,
            [
                "unknown_credential",
                "credential_of_another",
                "credential_removed",
                "counter_regression"
            ]
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn registrations_for_another_origin_reused_or_expired_and_too_many_ceremonies_are_refused() {
    each_backend(|store| async move {
        let mut h = start(store).await;
        let mut key = SoftPasskey::new(true);
        // An authenticator answering for another site (a phishing page's origin).
        let c = begin_registration(&mut h, "bob", "laptop").await;
        let options: CreationChallengeResponse =
            serde_json::from_value(c["public_key"].clone()).unwrap();
        let evil = Url::parse("http://jitgate.evil.example").unwrap();
        let cred = key
            .perform_register(evil, options.public_key, 60_000)
            .unwrap();
        let finish = json!({"challenge_id": c["challenge_id"], "credential": cred});
        let path = "/api/v1/auth/passkeys/register/finish";
        let (s, v) = h.call("bob", "POST", path, Some(finish.clone())).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_wrong_origin"),
            "{v}"
        );
        // The same answer again: its challenge is spent.
        let (s, v) = h.call("bob", "POST", path, Some(finish)).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_challenge_used"),
            "{v}"
        );
        // An authenticator told another relying-party id (its rpIdHash is of that id).
        let c = begin_registration(&mut h, "bob", "laptop").await;
        let mut options: CreationChallengeResponse =
            serde_json::from_value(c["public_key"].clone()).unwrap();
        options.public_key.rp.id = "evil.localhost".into();
        let cred = key
            .perform_register(origin(), options.public_key, 60_000)
            .unwrap();
        let (s, v) = h
            .call(
                "bob",
                "POST",
                path,
                Some(json!({"challenge_id": c["challenge_id"], "credential": cred})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_wrong_origin"),
            "{v}"
        );
        // A registration answered after its challenge expired.
        let c = begin_registration(&mut h, "bob", "laptop").await;
        let options: CreationChallengeResponse =
            serde_json::from_value(c["public_key"].clone()).unwrap();
        let cred = key.do_registration(origin(), options).unwrap();
        h.clock.advance(chrono::Duration::seconds(
            jitgate_core::passkey::DEFAULT_CHALLENGE_TTL_SECS,
        ));
        let (s, v) = h
            .call(
                "bob",
                "POST",
                path,
                Some(json!({"challenge_id": c["challenge_id"], "credential": cred})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "passkey_challenge_expired"),
            "{v}"
        );
        // A name is required; nothing was enrolled by any of this.
        let (s, v) = h
            .call(
                "bob",
                "POST",
                "/api/v1/auth/passkeys/register/begin",
                Some(json!({"name": " "})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
        );
        let (_, list) = h.call("bob", "GET", "/api/v1/auth/passkeys", None).await;
        assert_eq!(list, json!([]));
        // A step-up ceremony needs an enrolled passkey.
        let r = h.request("oscar", write_plc7("2h")).await;
        let id = r["id"].as_str().unwrap();
        let (s, v) = h
            .call(
                "bob",
                "POST",
                &format!("/api/v1/requests/{id}/step-up/passkey"),
                Some(json!({"scope_digest": r["scope_digest"]})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::CONFLICT, "passkey_not_enrolled")
        );
        // ... and the digest the approver reviewed.
        enrol(&mut h, "bob", "laptop", &mut key).await;
        let (s, v) = h
            .call(
                "bob",
                "POST",
                &format!("/api/v1/requests/{id}/step-up/passkey"),
                Some(json!({"scope_digest": "sha256:other"})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::CONFLICT, "scope_digest_mismatch")
        );
        // At most 20 ceremonies open at once per person.
        for _ in 0..jitgate_core::passkey::MAX_OPEN_CHALLENGES {
            begin_step_up(&mut h, "bob", &r).await;
        }
        let (s, v) = h
            .call(
                "bob",
                "POST",
                &format!("/api/v1/requests/{id}/step-up/passkey"),
                Some(json!({"scope_digest": r["scope_digest"]})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_passkey_ceremonies"),
            "{v}"
        );
        assert_eq!(
            refusals(&mut h).await,
            [
                "wrong_origin",
                "challenge_used",
                "wrong_origin",
                "challenge_expired"
            ]
        );
        let refused = events_of(&mut h, "auth.passkey_refused").await;
        assert!(refused.iter().all(|e| e["data"]["stage"] == "registration"));
        h.stop().await;
    })
    .await;
}
