//! Passkeys (WebAuthn) for step-up: enrolment, listing, removal, and the step-up ceremony
//! bound to one request. The WebAuthn ceremonies are `webauthn-rs`'s; the rules (what a
//! challenge is bound to, when an assertion counts, who may enrol and remove) are
//! `jitgate_core::passkey`. Each ceremony's state is stored with its challenge in the
//! database (`passkey_challenges`), so any node of a cluster can finish what another began.
//!
//! A step-up challenge is taken (marked used) in its own transaction before anything else is
//! checked, and stays taken whatever happens next, like a TOTP step: an assertion is good
//! for one attempt. Every refusal is an `auth.passkey_refused` event with its typed reason.

use crate::auth::Caller;
use crate::error::ServerError;
use crate::ids::new_id;
use crate::state::AppState;
use crate::views::{PasskeyAssertion, PasskeyCeremony, PasskeyView};
use base64::Engine;
use jitgate_core::event::Actor;
use jitgate_core::passkey::{
    self, AssertionCheck, Challenge, ChallengePurpose, EnrolledPasskey, PasskeyRefusal,
    PasskeyRefused, PasskeyStage, RegistrationCheck, StepUpAttempt, StepUpMethod,
};
use jitgate_core::{CoreError, Event, Timestamp};
use jitgate_store::{PasskeyChallengeRecord, PasskeyRecord};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn internal(what: &str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Internal(format!("passkeys: {what}: {e}"))
}

/// The relying party from `[passkeys]`.
fn webauthn(state: &AppState) -> Result<(Webauthn, i64), ServerError> {
    let rp = state
        .config
        .relying_party()
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    let w = WebauthnBuilder::new(&rp.rp_id, &rp.origin)
        .and_then(|b| b.rp_name("jitgate").build())
        .map_err(|e| internal("relying party", e))?;
    Ok((w, rp.challenge_ttl_secs))
}

/// The WebAuthn user handle of an identity: derived from its id, so that it needs no table
/// and is the same on every node; it reveals nothing but a hash of the id.
fn user_handle(identity: &str) -> Uuid {
    let d = Sha256::digest(format!("jitgate passkey user\0{identity}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::from_bytes(b)
}

fn view(p: &PasskeyRecord) -> PasskeyView {
    PasskeyView {
        credential_id: p.credential_id.clone(),
        name: p.name.clone(),
        created_at: p.created_at,
        last_used_at: p.last_used_at,
    }
}

fn enrolled(p: &PasskeyRecord) -> EnrolledPasskey {
    EnrolledPasskey {
        credential_id: p.credential_id.clone(),
        identity: p.identity.clone(),
        counter: p.counter,
        removed_at: p.removed_at,
    }
}

fn challenge(c: &PasskeyChallengeRecord) -> Challenge {
    Challenge {
        id: c.id.clone(),
        identity: c.identity.clone(),
        purpose: c.purpose.clone(),
        expires_at: c.expires_at,
        used_before: c.used_at,
    }
}

/// Record a refusal and answer with it.
async fn refuse(
    state: &AppState,
    caller: &Caller,
    refused: PasskeyRefused,
    now: Timestamp,
) -> ServerError {
    let reason = refused.reason.clone();
    tracing::warn!(identity = caller.id(), ?reason, "passkey refused");
    let logged = async {
        let mut tx = state.store.write().await?;
        tx.append_events(&[Event::with_payload(
            Actor::identity(caller.id()),
            now,
            &refused,
        )?])
        .await?;
        tx.commit().await?;
        Ok::<(), ServerError>(())
    }
    .await;
    match logged {
        Ok(()) => CoreError::Passkey(reason).into(),
        Err(e) => e,
    }
}

async fn store_challenge(
    state: &AppState,
    caller: &Caller,
    purpose: ChallengePurpose,
    ceremony_state: String,
    ttl: i64,
    public_key: serde_json::Value,
) -> Result<PasskeyCeremony, ServerError> {
    let now = state.clock.now();
    let rec = PasskeyChallengeRecord {
        id: new_id("pkc"),
        identity: caller.id().to_string(),
        purpose,
        state: ceremony_state,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(ttl),
        used_at: None,
    };
    let mut tx = state.store.write().await?;
    // Each ceremony is a row until a day after its expiry: bound how many one person opens.
    if tx.count_open_passkey_challenges(caller.id(), now).await? >= passkey::MAX_OPEN_CHALLENGES {
        return Err(ServerError::Throttled {
            code: jitgate_core::Code::TooManyPasskeyCeremonies,
            message: format!(
                "{} passkey ceremonies of yours are open already; answer one or wait until they expire ({ttl} s)",
                passkey::MAX_OPEN_CHALLENGES
            ),
            retry_after_secs: ttl,
        });
    }
    tx.insert_passkey_challenge(&rec).await?;
    tx.commit().await?;
    Ok(PasskeyCeremony {
        challenge_id: rec.id,
        expires_at: rec.expires_at,
        public_key,
    })
}

/// `POST /auth/passkeys/register/begin`: a registration ceremony for a passkey named `name`.
pub async fn begin_registration(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<PasskeyCeremony, ServerError> {
    let name = passkey::check_name(name)?;
    let mut tx = state.store.read().await?;
    let mine = tx.list_passkeys(caller.id()).await?;
    drop(tx);
    passkey::may_enrol(caller.identity.kind, mine.len())?;
    let (w, ttl) = webauthn(state)?;
    let exclude = mine
        .iter()
        .filter_map(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&p.credential_id)
                .ok()
        })
        .collect::<Vec<_>>();
    let display = if caller.identity.name.is_empty() {
        caller.id().to_string()
    } else {
        caller.identity.name.clone()
    };
    let (ccr, reg) = w
        .start_passkey_registration(
            user_handle(caller.id()),
            caller.id(),
            &display,
            Some(exclude),
        )
        .map_err(|e| internal("start registration", e))?;
    let ceremony_state = serde_json::to_string(&reg).map_err(|e| internal("state", e))?;
    let mut public_key = serde_json::to_value(&ccr).map_err(|e| internal("options", e))?;
    // A discoverable credential where the authenticator can keep one (the library asks for
    // none); user verification stays required, as the library's passkey policy has it.
    if let Some(sel) = public_key
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(|v| v.as_object_mut())
    {
        sel.insert("residentKey".into(), "preferred".into());
    }
    store_challenge(
        state,
        caller,
        ChallengePurpose::Registration { name },
        ceremony_state,
        ttl,
        public_key,
    )
    .await
}

/// `POST /auth/passkeys/register/finish`: check the authenticator's answer and enrol it.
pub async fn finish_registration(
    state: &AppState,
    caller: &Caller,
    challenge_id: &str,
    credential: serde_json::Value,
) -> Result<PasskeyView, ServerError> {
    let now = state.clock.now();
    passkey::may_enrol(caller.identity.kind, 0)?;
    let refused = |reason, credential_id: Option<String>| PasskeyRefused {
        identity: caller.id().to_string(),
        stage: PasskeyStage::Registration,
        reason,
        request_id: None,
        credential_id,
        challenge_id: Some(challenge_id.to_string()),
    };
    let mut tx = state.store.write().await?;
    let taken = tx.take_passkey_challenge(challenge_id, now).await?;
    tx.commit().await?;
    let Some(rec) = taken else {
        let r = refused(PasskeyRefusal::ChallengeUnknown, None);
        return Err(refuse(state, caller, r, now).await);
    };
    let (w, _) = webauthn(state)?;
    let parsed = serde_json::from_value::<RegisterPublicKeyCredential>(credential);
    let reg_state = serde_json::from_str::<PasskeyRegistration>(&rec.state);
    let (check, key) = match (&parsed, &reg_state) {
        (Ok(cred), Ok(st)) => match w.finish_passkey_registration(cred, st) {
            Ok(key) => (
                RegistrationCheck::Verified {
                    credential_id: b64(key.cred_id()),
                    user_verified: true,
                },
                Some(key),
            ),
            Err(e @ (WebauthnError::InvalidRPOrigin | WebauthnError::InvalidRPIDHash)) => {
                (RegistrationCheck::WrongOrigin(e.to_string()), None)
            }
            Err(WebauthnError::UserNotVerified) => (RegistrationCheck::UserNotVerified, None),
            Err(e) => (RegistrationCheck::Invalid(e.to_string()), None),
        },
        (Err(e), _) => (RegistrationCheck::Invalid(e.to_string()), None),
        (_, Err(e)) => return Err(internal("stored registration state", e)),
    };
    let credential_id = key.as_ref().map(|k| b64(k.cred_id()));
    let mut tx = state.store.read().await?;
    let existing = match &credential_id {
        Some(id) => tx.get_passkey(id).await?,
        None => None,
    };
    drop(tx);
    let name = match passkey::check_registration(
        &challenge(&rec),
        caller.id(),
        &check,
        existing.as_ref().map(enrolled).as_ref(),
        now,
    ) {
        Ok(name) => name,
        Err(reason) => {
            let r = refused(reason, credential_id);
            return Err(refuse(state, caller, r, now).await);
        }
    };
    let (Some(key), Some(credential_id)) = (key, credential_id) else {
        return Err(internal("registration", "verified without a key"));
    };
    let record = PasskeyRecord {
        credential_id: credential_id.clone(),
        identity: caller.id().to_string(),
        name: name.clone(),
        passkey: serde_json::to_string(&key).map_err(|e| internal("credential", e))?,
        counter: 0,
        created_at: now,
        last_used_at: None,
        removed_at: None,
    };
    let mut tx = state.store.write().await?;
    if tx.list_passkeys(caller.id()).await?.len() >= passkey::MAX_PER_IDENTITY {
        return Err(
            passkey::may_enrol(caller.identity.kind, passkey::MAX_PER_IDENTITY)
                .err()
                .unwrap_or(CoreError::InvalidRequest("too many passkeys".into()))
                .into(),
        );
    }
    tx.insert_passkey(&record).await?;
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &passkey::PasskeyEnrolled {
            identity: caller.id().to_string(),
            credential_id,
            name,
            user_verified: true,
        },
    )?])
    .await?;
    tx.commit().await?;
    Ok(view(&record))
}

/// `GET /auth/passkeys`: the caller's passkeys.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<PasskeyView>, ServerError> {
    let mut tx = state.store.read().await?;
    Ok(tx
        .list_passkeys(caller.id())
        .await?
        .iter()
        .map(view)
        .collect())
}

/// `POST /auth/passkeys/{id}/remove`: remove one of the caller's passkeys, with a fresh
/// sign-in or a TOTP code.
pub async fn remove(
    state: &AppState,
    caller: &Caller,
    credential_id: &str,
    totp: Option<&str>,
) -> Result<(), ServerError> {
    let now = state.clock.now();
    let mut tx = state.store.read().await?;
    let found = tx
        .get_passkey(credential_id)
        .await?
        .filter(|p| p.identity == caller.id() && p.removed_at.is_none());
    drop(tx);
    let Some(found) = found else {
        return Err(ServerError::NotFound {
            what: "passkey",
            id: credential_id.to_string(),
            hint: "list yours with GET /api/v1/auth/passkeys",
        });
    };
    let totp_verified = match totp {
        Some(code) => {
            crate::login::step_up(
                state,
                caller.id(),
                code,
                jitgate_core::payload::AuthStage::StepUp,
            )
            .await?;
            true
        }
        None => false,
    };
    let confirmed_by = passkey::may_remove(caller.signed_in_at, totp_verified, now)?;
    let mut tx = state.store.write().await?;
    if !tx.remove_passkey(caller.id(), credential_id, now).await? {
        return Err(ServerError::not_found("passkey", credential_id));
    }
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &passkey::PasskeyRemoved {
            identity: caller.id().to_string(),
            credential_id: credential_id.to_string(),
            name: found.name,
            confirmed_by,
            enrolled_at: found.created_at,
        },
    )?])
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /requests/{id}/step-up/passkey`: a step-up ceremony bound to `request_id` with the
/// scope digest it has now (the caller has checked it may see the request and that the
/// digest it reviewed is this one).
pub async fn begin_step_up(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    scope_digest: &str,
) -> Result<PasskeyCeremony, ServerError> {
    let mut tx = state.store.read().await?;
    let mine = tx.list_passkeys(caller.id()).await?;
    drop(tx);
    if mine.is_empty() {
        return Err(ServerError::PasskeyNotEnrolled);
    }
    let mut keys = Vec::with_capacity(mine.len());
    for p in &mine {
        keys.push(
            serde_json::from_str::<Passkey>(&p.passkey)
                .map_err(|e| internal("stored credential", e))?,
        );
    }
    let (w, ttl) = webauthn(state)?;
    let (rcr, auth) = w
        .start_passkey_authentication(&keys)
        .map_err(|e| internal("start authentication", e))?;
    let ceremony_state = serde_json::to_string(&auth).map_err(|e| internal("state", e))?;
    let public_key = serde_json::to_value(&rcr).map_err(|e| internal("options", e))?;
    store_challenge(
        state,
        caller,
        ChallengePurpose::StepUp {
            request_id: request_id.to_string(),
            scope_digest: scope_digest.to_string(),
        },
        ceremony_state,
        ttl,
        public_key,
    )
    .await
}

/// Check a passkey assertion presented with an approval of `request_id`, whose scope digest
/// is `scope_digest` now. On success the credential's counter is stored and the step-up
/// method is returned for the approval's event.
pub async fn verify_step_up(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    scope_digest: &str,
    assertion: PasskeyAssertion,
) -> Result<StepUpMethod, ServerError> {
    let now = state.clock.now();
    let parsed = serde_json::from_value::<PublicKeyCredential>(assertion.credential);
    let presented = parsed.as_ref().map(|c| b64(&c.raw_id)).ok();
    let refused = |reason| PasskeyRefused {
        identity: caller.id().to_string(),
        stage: PasskeyStage::StepUp,
        reason,
        request_id: Some(request_id.to_string()),
        credential_id: presented.clone(),
        challenge_id: Some(assertion.challenge_id.clone()),
    };
    let mut tx = state.store.write().await?;
    let taken = tx
        .take_passkey_challenge(&assertion.challenge_id, now)
        .await?;
    tx.commit().await?;
    let Some(rec) = taken else {
        return Err(refuse(
            state,
            caller,
            refused(PasskeyRefusal::ChallengeUnknown),
            now,
        )
        .await);
    };
    let mut tx = state.store.read().await?;
    let stored = match &presented {
        Some(id) => tx.get_passkey(id).await?,
        None => None,
    };
    drop(tx);
    let (w, _) = webauthn(state)?;
    let auth_state = serde_json::from_str::<PasskeyAuthentication>(&rec.state)
        .map_err(|e| internal("stored authentication state", e));
    let st = auth_state?;
    let (check, result) = match &parsed {
        Ok(cred) => match w.finish_passkey_authentication(cred, &st) {
            Ok(r) => (
                AssertionCheck::Verified {
                    credential_id: b64(r.cred_id()),
                    counter: r.counter(),
                    user_verified: r.user_verified(),
                },
                Some(r),
            ),
            Err(e @ (WebauthnError::InvalidRPOrigin | WebauthnError::InvalidRPIDHash)) => {
                (AssertionCheck::WrongOrigin(e.to_string()), None)
            }
            Err(WebauthnError::CredentialPossibleCompromise) => {
                (AssertionCheck::CounterRegression, None)
            }
            Err(WebauthnError::UserNotVerified) => (AssertionCheck::UserNotVerified, None),
            Err(e) => (AssertionCheck::Invalid(e.to_string()), None),
        },
        Err(e) => (
            AssertionCheck::Invalid(format!("does not parse: {e}")),
            None,
        ),
    };
    let stored_enrolment = stored.as_ref().map(enrolled);
    let attempt = StepUpAttempt {
        approver: caller.id(),
        request_id,
        scope_digest,
        presented: presented.as_deref().unwrap_or_default(),
        credential: stored_enrolment.as_ref(),
        check: &check,
    };
    let method = match passkey::check_step_up(&challenge(&rec), &attempt, now) {
        Ok(m) => m,
        Err(reason) => return Err(refuse(state, caller, refused(reason), now).await),
    };
    let (Some(result), Some(stored)) = (result, stored) else {
        return Err(internal(
            "step-up",
            "accepted without a verified credential",
        ));
    };
    let mut key =
        serde_json::from_str::<Passkey>(&stored.passkey).map_err(|e| internal("credential", e))?;
    key.update_credential(&result);
    let key_json = serde_json::to_string(&key).map_err(|e| internal("credential", e))?;
    let mut tx = state.store.write().await?;
    let moved = tx
        .use_passkey(
            &stored.credential_id,
            stored.counter,
            result.counter(),
            &key_json,
            now,
        )
        .await?;
    if !moved {
        // Another step-up moved the counter (or the passkey was removed) since it was read.
        drop(tx);
        let reason = PasskeyRefusal::CounterRegression;
        return Err(refuse(state, caller, refused(reason), now).await);
    }
    tx.commit().await?;
    Ok(method)
}
