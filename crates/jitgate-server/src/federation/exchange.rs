//! `POST /auth/federate`: a platform JWT in, a short-lived `jgs_` session for the mapped
//! workload out, or a refusal with its typed reason.
//!
//! Order: the source address's backoff or lockout (shared with password sign-ins) refuses
//! unchecked; then the token's shape and issuer are read (unverified), the issuer's keys
//! found (fetched if needed), the signature verified, and only then the core's rules run on
//! the claims. The session, the replay record and the `auth.federated` event are written in
//! one transaction, so two exchanges of one token cannot both succeed, on any node.
//!
//! Every refusal that was looked at is an `auth.federation_refused` event and counts against
//! the source like a failed sign-in, in one transaction: past the free failures the source
//! must wait, so an unauthenticated caller cannot grow the log faster than the backoff lets
//! it. The one refusal that does not count is `jwks_unavailable` (our failure, not the
//! caller's); it is logged only when a fetch was actually tried and failed, at most once per
//! `jwks_refetch_interval` per issuer, and answered unlogged in between.

use super::jwks::KeyError;
use crate::auth;
use crate::error::ServerError;
use crate::login::{federated_failure, gate_source, source_of};
use crate::state::AppState;
use crate::views::LoginResponse;
use base64::Engine;
use jitgate_core::event::Actor;
use jitgate_core::federation::{
    capped, check, Federated, FederationRefused, Refusal, RefusalReason, TokenClaims,
    MAX_TOKEN_BYTES,
};
use jitgate_core::payload::AuthMethod;
use jitgate_core::{Event, IdentityKind, Timestamp};
use jitgate_store::SessionRecord;
use jsonwebtoken::{Algorithm, Validation};
use std::net::IpAddr;

/// What was read of a refused token, for its event.
#[derive(Default)]
struct Seen {
    issuer_name: Option<String>,
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
}

/// Why an exchange did not give a session: a refusal of the token, or a failure of ours
/// (storage) answered as the error it is.
enum Fail {
    Refused {
        refusal: Refusal,
        /// A refusal answered from the last failed key fetch is not logged again.
        logged: bool,
        retry_after_secs: Option<i64>,
    },
    Error(ServerError),
}

impl From<Refusal> for Fail {
    fn from(refusal: Refusal) -> Self {
        Fail::Refused {
            refusal,
            logged: true,
            retry_after_secs: None,
        }
    }
}

impl From<jitgate_store::StoreError> for Fail {
    fn from(e: jitgate_store::StoreError) -> Self {
        Fail::Error(e.into())
    }
}

impl From<jitgate_core::CoreError> for Fail {
    fn from(e: jitgate_core::CoreError) -> Self {
        Fail::Error(e.into())
    }
}

fn refuse(reason: RefusalReason, message: impl Into<String>) -> Fail {
    Refusal::new(reason, message).into()
}

/// Exchange `token` for a session.
pub async fn federate(
    state: &AppState,
    token: &str,
    peer: Option<IpAddr>,
) -> Result<LoginResponse, ServerError> {
    let now = state.clock.now();
    let source = source_of(peer);
    gate_source(state, &source, now).await?;
    let mut seen = Seen::default();
    match exchange(state, token.trim(), &source, now, &mut seen).await {
        Ok(r) => Ok(r),
        Err(Fail::Error(e)) => Err(e),
        Err(Fail::Refused {
            refusal,
            logged,
            retry_after_secs,
        }) => {
            tracing::info!(reason = ?refusal.reason, issuer = ?seen.issuer_name, %source, "federated token refused");
            if logged {
                record_refusal(state, &refusal, &seen, &source, now).await?;
            }
            Err(ServerError::Federation {
                refusal,
                retry_after_secs,
            })
        }
    }
}

async fn exchange(
    state: &AppState,
    token: &str,
    source: &str,
    now: Timestamp,
    seen: &mut Seen,
) -> Result<LoginResponse, Fail> {
    if state.federation.is_empty() {
        return Err(refuse(
            RefusalReason::UnknownIssuer,
            "this server trusts no issuer for workload federation ([[federation.issuers]] in \
             its configuration); use an API key",
        ));
    }
    let (alg, kid, claims) = read_unverified(token)?;
    seen.iss = Some(capped(&claims.iss));
    seen.sub = claims.sub.as_deref().map(capped);
    seen.jti = claims.jti.as_deref().map(capped);
    let Some(issuer) = state.federation.get(&claims.iss) else {
        return Err(refuse(
            RefusalReason::UnknownIssuer,
            format!(
                "no trusted issuer has `iss` {:?} (it must be equal, character for character); \
                 an administrator adds it under [[federation.issuers]]",
                capped(&claims.iss)
            ),
        ));
    };
    seen.issuer_name = Some(issuer.trust.name.clone());
    let keys = match issuer.keys_for(kid.as_deref(), alg, now).await {
        Ok(keys) => keys,
        Err(KeyError::NoKey(m)) => return Err(refuse(RefusalReason::BadSignature, m)),
        Err(KeyError::Unavailable {
            message,
            retry_after_secs,
            fetched,
        }) => {
            return Err(Fail::Refused {
                refusal: Refusal::new(RefusalReason::JwksUnavailable, message),
                logged: fetched,
                retry_after_secs: Some(retry_after_secs),
            })
        }
    };
    let mut validation = Validation::new(alg);
    // Times, issuer and audience are the core's rules, on the server's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let verified = keys
        .iter()
        .any(|k| jsonwebtoken::decode::<serde_json::Value>(token, k, &validation).is_ok());
    if !verified {
        return Err(refuse(
            RefusalReason::BadSignature,
            format!(
                "the token's signature does not verify with the keys issuer {:?} publishes",
                issuer.trust.name
            ),
        ));
    }
    let accepted = check(&issuer.trust, &claims, token, now)?;
    let mut tx = state.store.write().await?;
    let identity = tx.get_identity(&accepted.identity).await?;
    let identity = match identity {
        Some(i) if i.kind == IdentityKind::Workload && i.is_active() => i,
        _ => {
            return Err(refuse(
                RefusalReason::IdentityDisabled,
                format!(
                    "the token maps to {}, which is disabled or no longer a workload in the \
                     inventory; ask an administrator",
                    accepted.identity
                ),
            ))
        }
    };
    if !tx
        .remember_federated_token(
            &accepted.replay_key,
            &issuer.trust.name,
            accepted.replay_until,
            now,
        )
        .await?
    {
        return Err(refuse(
            RefusalReason::TokenReplayed,
            "this token was exchanged already; each token is taken once: ask the platform for \
             a new one",
        ));
    }
    let session = auth::new_token(auth::SESSION_PREFIX);
    tx.insert_session(&SessionRecord {
        token_hash: auth::token_hash(&session),
        identity: identity.id.clone(),
        created_at: now,
        expires_at: accepted.session_expires_at,
        method: AuthMethod::FederatedJwt,
        roles: Vec::new(),
    })
    .await?;
    tx.delete_expired_sessions(now).await?;
    let event = Event::with_payload(
        Actor::identity(&identity.id),
        now,
        &Federated {
            identity: identity.id.clone(),
            issuer_name: issuer.trust.name.clone(),
            iss: claims.iss.clone(),
            sub: seen.sub.clone(),
            jti: seen.jti.clone(),
            binding: accepted.binding + 1,
            matched_claims: accepted
                .matched
                .iter()
                .map(|(k, v)| (k.clone(), capped(v)))
                .collect(),
            session_expires_at: accepted.session_expires_at,
            method: AuthMethod::FederatedJwt,
            source: source.to_string(),
        },
    )?;
    tx.append_events(&[event]).await?;
    tx.commit().await?;
    Ok(LoginResponse {
        token: session,
        expires_at: accepted.session_expires_at,
        identity,
        totp_enrolled: false,
    })
}

/// The header's algorithm and key id, and the claims, before any key is known. Only
/// asymmetric algorithms are accepted: `none` and HMAC are refused here (an HMAC "signature"
/// made with the issuer's public key as secret would otherwise be a forgery anyone can make).
pub(crate) fn read_unverified(
    token: &str,
) -> Result<(Algorithm, Option<String>, TokenClaims), Refusal> {
    let malformed = |m: &str| Refusal::new(RefusalReason::Malformed, m.to_string());
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed(&format!(
            "the token is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, _signature] = parts.as_slice() else {
        return Err(malformed(
            "the token is not a JWT (three base64url parts separated by dots)",
        ));
    };
    let decode = |part: &str, what: &str| -> Result<serde_json::Value, Refusal> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| malformed(&format!("the token's {what} is not base64url")))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| malformed(&format!("the token's {what} is not JSON")))
    };
    let header = decode(header, "header")?;
    let alg_name = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    let alg = match alg_name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "none" | "HS256" | "HS384" | "HS512" => {
            return Err(Refusal::new(
                RefusalReason::BadSignature,
                format!(
                    "alg {alg_name:?} is refused: federated tokens must be signed with the \
                     issuer's private key (RS256, ES256, EdDSA, ...)"
                ),
            ))
        }
        other => {
            return Err(malformed(&format!(
                "the token's alg {:?} is not one jitgate verifies",
                capped(other)
            )))
        }
    };
    let kid = header
        .get("kid")
        .and_then(|k| k.as_str())
        .map(str::to_string);
    let claims = TokenClaims::from_json(decode(payload, "payload")?)?;
    Ok((alg, kid, claims))
}

/// The refusal's event and the source's failure count, in one transaction.
async fn record_refusal(
    state: &AppState,
    refusal: &Refusal,
    seen: &Seen,
    source: &str,
    now: Timestamp,
) -> Result<(), ServerError> {
    let mut tx = state.store.write().await?;
    let mut events = vec![Event::with_payload(
        Actor::system(),
        now,
        &FederationRefused {
            reason: refusal.reason,
            issuer_name: seen.issuer_name.clone(),
            iss: seen.iss.clone(),
            sub: seen.sub.clone(),
            jti: seen.jti.clone(),
            source: source.to_string(),
            message: capped(&refusal.message),
        },
    )?];
    if refusal.reason.counts_against_source() {
        events.extend(federated_failure(state, &mut tx, source, now).await?);
    }
    tx.append_events(&events).await?;
    tx.commit().await?;
    Ok(())
}
