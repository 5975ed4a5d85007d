//! The sign-in itself.
//!
//! 1. [`start`]: a random `state`, `nonce` and PKCE verifier, remembered (by the state's
//!    hash) for ten minutes; the provider's authorization URL. A console sign-in is bound to
//!    the browser that started it by a cookie (its hash is stored), so a callback URL made
//!    in someone else's browser cannot sign this browser in (login CSRF). A CLI sign-in is
//!    bound to the CLI's loopback port and its own PKCE challenge.
//! 2. [`callback`]: the state taken (once), the browser checked, the code exchanged (with
//!    the PKCE verifier and the client secret) by the `openidconnect` crate, the ID token's
//!    signature verified with the provider's cached keys, then the core's checks (issuer,
//!    audience, times, replay, nonce, mapping). A console sign-in gets its session now; a
//!    CLI sign-in gets a one-time code sent to its loopback address.
//! 3. [`redeem`]: the CLI trades that code and its PKCE verifier for the session.
//!
//! Every refusal that was looked at is an `auth.sso_refused` event and counts against the
//! source address like a failed password (backoff and lockout shared with passwords and
//! federated tokens), except the provider being unreachable, which is logged once per
//! refetch interval.

use super::providers::{error_chain, ProviderHandle, Unavailable};
use crate::auth;
use crate::error::ServerError;
use crate::federation::exchange::read_unverified;
use crate::federation::jwks::KeyError;
use crate::login::{federated_failure, gate_source, source_of};
use crate::state::AppState;
use crate::views::LoginResponse;
use jitgate_core::event::Actor;
use jitgate_core::federation::capped;
use jitgate_core::payload::AuthMethod;
use jitgate_core::sso::{
    check_id_token, replay_key, Expect, LoginClaims, SsoClient, SsoRefusal, SsoRefusalReason,
    SsoRefused, SsoSignedIn,
};
use jitgate_core::{Event, IdentityKind, Timestamp};
use jitgate_store::{SessionRecord, SsoHandoffRecord, SsoLoginRecord};
use jsonwebtoken::Validation;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// How long a started sign-in waits for the provider's callback.
const LOGIN_TTL_SECS: i64 = 600;
/// How long a CLI has to redeem its code.
const HANDOFF_TTL_SECS: i64 = 120;

/// Who starts a sign-in.
#[derive(Debug, Clone)]
pub enum Start {
    Console,
    /// The CLI listens on `127.0.0.1:port`; `challenge` is the S256 of its PKCE verifier.
    Cli {
        port: u16,
        challenge: String,
    },
}

/// A started sign-in.
#[derive(Debug, Clone)]
pub struct Started {
    pub authorization_url: String,
    /// Console: the value of the cookie binding the sign-in to the browser.
    pub browser_cookie: Option<String>,
    pub expires_at: Timestamp,
}

/// Where a callback ends.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A console session: set its cookie and go to the console.
    Console { session_token: String },
    /// Send the browser to the CLI's loopback address (with a code, or an error).
    Cli { redirect: String },
}

/// The callback's query.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Sent by some providers (RFC 9207); compared with the provider's issuer when present.
    pub iss: Option<String>,
}

/// A refused callback: the refusal, and the CLI's port when the sign-in was the CLI's (the
/// browser is sent back there with the error).
#[derive(Debug)]
pub struct Refused {
    pub error: ServerError,
    pub cli_port: Option<u16>,
}

/// What a completed CLI sign-in keeps until it is redeemed.
#[derive(Serialize, Deserialize)]
struct Handoff {
    roles: Vec<String>,
    event: SsoSignedIn,
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn refusal(reason: SsoRefusalReason, message: impl Into<String>) -> SsoRefusal {
    SsoRefusal::new(reason, message)
}

fn provider(state: &AppState, name: &str) -> Result<std::sync::Arc<ProviderHandle>, ServerError> {
    state
        .sso
        .get(name)
        .ok_or_else(|| ServerError::not_found("sso provider", name))
}

fn unavailable_error(u: &Unavailable) -> ServerError {
    ServerError::Sso {
        refusal: u.refusal.clone(),
        retry_after_secs: Some(u.retry_after_secs),
    }
}

/// Start a sign-in with provider `name`.
pub async fn start(state: &AppState, name: &str, who: Start) -> Result<Started, ServerError> {
    let p = provider(state, name)?;
    let now = state.clock.now();
    let meta = match p.metadata(now).await {
        Ok(m) => m,
        Err(u) => {
            if u.fetched {
                record_refusal(
                    state,
                    Some(&p.config.name),
                    &u.refusal,
                    &Seen::default(),
                    "server",
                    now,
                )
                .await?;
            }
            return Err(unavailable_error(&u));
        }
    };
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(p.config.client_id.clone()),
        p.secret().map(|s| ClientSecret::new(s.to_string())),
    )
    .set_redirect_uri(redirect_url(&p)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in &p.config.scopes {
        if scope != "openid" {
            request = request.add_scope(Scope::new(scope.clone()));
        }
    }
    let (url, csrf, nonce) = request.url();
    let browser_cookie = matches!(who, Start::Console).then(|| auth::new_token(""));
    let (cli_port, cli_challenge) = match &who {
        Start::Console => (None, None),
        Start::Cli { port, challenge } => (Some(*port), Some(challenge.clone())),
    };
    let expires_at = now + chrono::Duration::seconds(LOGIN_TTL_SECS);
    let mut tx = state.store.write().await?;
    tx.insert_sso_login(
        &SsoLoginRecord {
            state_hash: sha256_hex(csrf.secret()),
            provider: p.config.name.clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            browser_hash: browser_cookie.as_deref().map(sha256_hex),
            cli_port,
            cli_challenge,
            expires_at,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Started {
        authorization_url: url.to_string(),
        browser_cookie,
        expires_at,
    })
}

fn redirect_url(p: &ProviderHandle) -> Result<RedirectUrl, ServerError> {
    RedirectUrl::new(p.config.redirect_url.clone()).map_err(|e| {
        ServerError::Internal(format!(
            "sso provider {:?}: redirect_url: {e}",
            p.config.name
        ))
    })
}

/// Check a CLI's start: a port and an S256 challenge (43 base64url characters).
pub fn check_cli_start(port: u16, challenge: &str) -> Result<(), ServerError> {
    if port == 0 {
        return Err(ServerError::BadRequest(
            "port: the loopback port the CLI listens on (1-65535)".into(),
        ));
    }
    let ok = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ServerError::BadRequest(
            "code_challenge: the base64url SHA-256 (43 characters, no padding) of a random \
             verifier the CLI keeps"
                .into(),
        ));
    }
    Ok(())
}

/// What was read of a refused sign-in, for its event.
#[derive(Default)]
struct Seen {
    sub: Option<String>,
    acr: Option<String>,
    amr: Vec<String>,
}

/// A refusal while handling a callback: logged or not, with a Retry-After or not.
struct Fail {
    refusal: SsoRefusal,
    logged: bool,
    retry_after_secs: Option<i64>,
}

impl From<SsoRefusal> for Fail {
    fn from(refusal: SsoRefusal) -> Self {
        Fail {
            refusal,
            logged: true,
            retry_after_secs: None,
        }
    }
}

impl From<Unavailable> for Fail {
    fn from(u: Unavailable) -> Self {
        Fail {
            refusal: u.refusal,
            logged: u.fetched,
            retry_after_secs: Some(u.retry_after_secs),
        }
    }
}

/// Errors of ours (storage) are answered as such; refusals of the sign-in as [`Fail`].
enum Failed {
    Refused(Fail),
    Error(ServerError),
}

impl<T: Into<Fail>> From<T> for Failed {
    fn from(f: T) -> Self {
        Failed::Refused(f.into())
    }
}

fn store_err(e: impl Into<ServerError>) -> Failed {
    Failed::Error(e.into())
}

/// The provider's callback.
pub async fn callback(
    state: &AppState,
    name: &str,
    query: &CallbackQuery,
    browser_cookie: Option<&str>,
    peer: Option<IpAddr>,
) -> Result<Outcome, Refused> {
    let now = state.clock.now();
    let source = source_of(peer);
    if let Err(error) = gate_source(state, &source, now).await {
        return Err(Refused {
            error,
            cli_port: None,
        });
    }
    let mut seen = Seen::default();
    let mut cli_port = None;
    let result = complete(
        state,
        name,
        query,
        browser_cookie,
        &source,
        now,
        &mut seen,
        &mut cli_port,
    )
    .await;
    match result {
        Ok(outcome) => Ok(outcome),
        Err(Failed::Error(error)) => Err(Refused { error, cli_port }),
        Err(Failed::Refused(f)) => {
            tracing::info!(reason = ?f.refusal.reason, provider = name, %source, "sso sign-in refused");
            let provider_name = state.sso.get(name).map(|p| p.config.name.clone());
            if f.logged {
                if let Err(error) = record_refusal(
                    state,
                    provider_name.as_deref(),
                    &f.refusal,
                    &seen,
                    &source,
                    now,
                )
                .await
                {
                    return Err(Refused { error, cli_port });
                }
            }
            Err(Refused {
                error: ServerError::Sso {
                    refusal: f.refusal,
                    retry_after_secs: f.retry_after_secs,
                },
                cli_port,
            })
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the callback's parts, passed once"
)]
async fn complete(
    state: &AppState,
    name: &str,
    query: &CallbackQuery,
    browser_cookie: Option<&str>,
    source: &str,
    now: Timestamp,
    seen: &mut Seen,
    cli_port: &mut Option<u16>,
) -> Result<Outcome, Failed> {
    use SsoRefusalReason as R;
    let Some(p) = state.sso.get(name) else {
        return Err(refusal(
            R::StateMismatch,
            format!("no SSO provider is named {:?}", capped(name)),
        )
        .into());
    };
    let Some(st) = query.state.as_deref() else {
        return Err(refusal(
            R::StateMismatch,
            "the callback carries no state; start the sign-in again",
        )
        .into());
    };
    let login = {
        let mut tx = state.store.write().await.map_err(store_err)?;
        let login = tx
            .take_sso_login(&sha256_hex(st), now)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        login
    };
    let Some(login) = login.filter(|l| l.provider == p.config.name) else {
        return Err(refusal(
            R::StateMismatch,
            "this sign-in is unknown, was completed already, or took longer than 10 minutes; \
             start the sign-in again",
        )
        .into());
    };
    *cli_port = login.cli_port;
    if let Some(bound) = &login.browser_hash {
        if browser_cookie.map(sha256_hex).as_deref() != Some(bound.as_str()) {
            return Err(refusal(
                R::StateMismatch,
                "this sign-in was started in another browser (or its cookies were cleared); \
                 start the sign-in again here",
            )
            .into());
        }
    }
    if let Some(err) = &query.error {
        let detail = query
            .error_description
            .as_deref()
            .map(|d| format!(": {}", capped(d)))
            .unwrap_or_default();
        return Err(refusal(
            R::ProviderDenied,
            format!(
                "provider {:?} did not sign you in ({}{detail})",
                p.config.name,
                capped(err)
            ),
        )
        .into());
    }
    if let Some(iss) = &query.iss {
        if iss != &p.config.issuer {
            return Err(refusal(
                R::WrongIssuer,
                format!(
                    "the callback names issuer {:?}, not this provider's",
                    capped(iss)
                ),
            )
            .into());
        }
    }
    let Some(code) = query.code.as_deref() else {
        return Err(refusal(R::CodeRejected, "the callback carries no code").into());
    };
    let meta = p.metadata(now).await?;
    // The code, the verifier and the client secret go to the token endpoint: only over
    // HTTPS (or on loopback), as the discovery document and the keys are fetched.
    if let Some(endpoint) = meta.token_endpoint() {
        crate::config::federation::fetch_url_allowed(endpoint.as_str()).map_err(|m| {
            p.unavailable(
                format!("the discovered token endpoint is refused: {m}"),
                60,
                true,
            )
        })?;
    }
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(p.config.client_id.clone()),
        p.secret().map(|s| ClientSecret::new(s.to_string())),
    )
    .set_redirect_uri(redirect_url(&p).map_err(Failed::Error)?);
    let request = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| {
            refusal(
                R::ProviderUnavailable,
                format!("the provider has no token endpoint: {e}"),
            )
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()));
    let response = match request.request_async(p.http()).await {
        Ok(r) => r,
        Err(RequestTokenError::ServerResponse(e)) => {
            return Err(refusal(
                R::CodeRejected,
                format!(
                    "provider {:?} refused the code ({}); codes are taken once and expire \
                     quickly: start the sign-in again",
                    p.config.name,
                    capped(&e.to_string())
                ),
            )
            .into())
        }
        Err(RequestTokenError::Parse(e, _)) => {
            return Err(refusal(
                R::Malformed,
                format!(
                    "the provider's token response is not understood: {}",
                    capped(&e.to_string())
                ),
            )
            .into())
        }
        Err(e) => {
            return Err(p
                .unavailable(format!("token endpoint: {}", error_chain(&e)), 10, true)
                .into())
        }
    };
    let Some(id_token) = openidconnect::TokenResponse::id_token(&response) else {
        return Err(refusal(
            R::Malformed,
            "the provider's token response has no ID token",
        )
        .into());
    };
    let raw = id_token.to_string();
    let (alg, kid, claims) = read_unverified(&raw).map_err(SsoRefusal::from)?;
    let login_claims = LoginClaims::read(&claims, p.core.groups_claim.as_deref());
    seen.sub = login_claims.sub.as_deref().map(capped);
    seen.acr = login_claims.acr.as_deref().map(capped);
    seen.amr = login_claims.amr.iter().map(|a| capped(a)).collect();
    if claims.iss != p.config.issuer {
        // Before any key is fetched: the keys are the provider's, the token is not.
        return Err(refusal(
            R::WrongIssuer,
            format!(
                "the ID token's issuer {:?} is not provider {:?}'s {:?}",
                capped(&claims.iss),
                p.config.name,
                p.config.issuer
            ),
        )
        .into());
    }
    let keys = match p.keys.keys_for(kid.as_deref(), alg, now).await {
        Ok(keys) => keys,
        Err(KeyError::NoKey(m)) => return Err(refusal(R::BadSignature, m).into()),
        Err(KeyError::Unavailable {
            message,
            retry_after_secs,
            fetched,
        }) => {
            return Err(Fail {
                refusal: refusal(R::ProviderUnavailable, message),
                logged: fetched,
                retry_after_secs: Some(retry_after_secs),
            }
            .into())
        }
    };
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    if !keys
        .iter()
        .any(|k| jsonwebtoken::decode::<serde_json::Value>(&raw, k, &validation).is_ok())
    {
        return Err(refusal(
            R::BadSignature,
            format!(
                "the ID token's signature does not verify with the keys provider {:?} publishes",
                p.config.name
            ),
        )
        .into());
    }
    let key = replay_key(&claims, &raw);
    let replayed = {
        let mut tx = state.store.read().await.map_err(store_err)?;
        tx.federated_token_remembered(&key, now)
            .await
            .map_err(store_err)?
    };
    let ttl = state
        .config
        .session_ttl_secs()
        .map_err(|e| Failed::Error(ServerError::Internal(e.to_string())))?;
    let accepted = check_id_token(
        &p.core,
        &claims,
        &login_claims,
        &raw,
        &Expect {
            nonce: &login.nonce,
            replayed,
            session_ttl_secs: ttl,
        },
        now,
    )?;
    let mut tx = state.store.write().await.map_err(store_err)?;
    let identity = tx
        .get_identity(&accepted.identity)
        .await
        .map_err(store_err)?;
    let identity = match identity {
        Some(i) if i.kind != IdentityKind::Workload && i.is_active() => i,
        _ => {
            return Err(refusal(
                R::IdentityDisabled,
                format!(
                    "this login maps to {}, who is disabled or no longer a person of the \
                     inventory; ask an administrator",
                    accepted.identity
                ),
            )
            .into())
        }
    };
    if !tx
        .remember_federated_token(
            &accepted.replay_key,
            &p.config.name,
            accepted.replay_until,
            now,
        )
        .await
        .map_err(store_err)?
    {
        return Err(refusal(
            R::TokenReplayed,
            "this ID token was used for a sign-in already",
        )
        .into());
    }
    let client_kind = if login.cli_port.is_some() {
        SsoClient::Cli
    } else {
        SsoClient::Console
    };
    let event = SsoSignedIn {
        identity: identity.id.clone(),
        provider: p.config.name.clone(),
        iss: claims.iss.clone(),
        sub: seen.sub.clone().unwrap_or_default(),
        email: login_claims.email.as_deref().map(capped),
        acr: seen.acr.clone(),
        amr: seen.amr.clone(),
        rule: accepted.rule,
        roles_added: accepted.roles.clone(),
        client: client_kind,
        session_expires_at: accepted.session_expires_at,
        method: AuthMethod::Oidc,
        source: source.to_string(),
    };
    match (login.cli_port, login.cli_challenge) {
        (Some(port), Some(challenge)) => {
            let code = auth::new_token("");
            let handoff = Handoff {
                roles: accepted.roles,
                event,
            };
            let json = serde_json::to_string(&handoff)
                .map_err(|e| Failed::Error(ServerError::Internal(e.to_string())))?;
            tx.insert_sso_handoff(
                &SsoHandoffRecord {
                    code_hash: sha256_hex(&code),
                    challenge,
                    sign_in: json,
                    expires_at: now + chrono::Duration::seconds(HANDOFF_TTL_SECS),
                },
                now,
            )
            .await
            .map_err(store_err)?;
            tx.commit().await.map_err(store_err)?;
            Ok(Outcome::Cli {
                redirect: format!("http://127.0.0.1:{port}/callback?code={code}"),
            })
        }
        _ => {
            let token = open_session(&mut tx, &identity.id, accepted.roles, &event, now)
                .await
                .map_err(Failed::Error)?;
            tx.commit().await.map_err(store_err)?;
            Ok(Outcome::Console {
                session_token: token,
            })
        }
    }
}

/// The session and the `auth.sso` event, in the caller's transaction.
async fn open_session(
    tx: &mut jitgate_store::Tx,
    identity: &str,
    roles: Vec<String>,
    event: &SsoSignedIn,
    now: Timestamp,
) -> Result<String, ServerError> {
    let token = auth::new_token(auth::SESSION_PREFIX);
    tx.insert_session(&SessionRecord {
        token_hash: auth::token_hash(&token),
        identity: identity.to_string(),
        created_at: now,
        expires_at: event.session_expires_at,
        method: AuthMethod::Oidc,
        roles,
    })
    .await?;
    tx.delete_expired_sessions(now).await?;
    tx.append_events(&[Event::with_payload(Actor::identity(identity), now, event)?])
        .await?;
    Ok(token)
}

/// `POST /auth/sso/redeem`: the CLI's code and PKCE verifier for its session.
pub async fn redeem(
    state: &AppState,
    code: &str,
    verifier: &str,
    peer: Option<IpAddr>,
) -> Result<LoginResponse, ServerError> {
    let now = state.clock.now();
    let source = source_of(peer);
    gate_source(state, &source, now).await?;
    let rejected = |m: &str| refusal(SsoRefusalReason::HandoffRejected, m.to_string());
    let mut tx = state.store.write().await?;
    let found = tx.take_sso_handoff(&sha256_hex(code.trim()), now).await?;
    let outcome = match found {
        None => Err(rejected(
            "this sign-in code is unknown, was used already, or is older than 2 minutes; run \
             `jitgate login --sso` again",
        )),
        Some(h) => {
            let expected = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
                verifier.to_string(),
            ));
            if expected.as_str() != h.challenge {
                Err(rejected(
                    "the verifier does not match the challenge this sign-in was started with",
                ))
            } else {
                Ok(h)
            }
        }
    };
    let h = match outcome {
        Ok(h) => h,
        Err(r) => {
            // The code is spent either way: one try per code.
            tx.commit().await?;
            record_refusal(state, None, &r, &Seen::default(), &source, now).await?;
            return Err(ServerError::Sso {
                refusal: r,
                retry_after_secs: None,
            });
        }
    };
    let handoff: Handoff = serde_json::from_str(&h.sign_in)
        .map_err(|e| ServerError::Internal(format!("stored sso hand-off: {e}")))?;
    let identity = tx.get_identity(&handoff.event.identity).await?;
    let Some(identity) = identity.filter(|i| i.kind != IdentityKind::Workload && i.is_active())
    else {
        tx.commit().await?;
        let r = refusal(
            SsoRefusalReason::IdentityDisabled,
            format!("{} was disabled during the sign-in", handoff.event.identity),
        );
        record_refusal(
            state,
            Some(&handoff.event.provider),
            &r,
            &Seen::default(),
            &source,
            now,
        )
        .await?;
        return Err(ServerError::Sso {
            refusal: r,
            retry_after_secs: None,
        });
    };
    let mut event = handoff.event;
    event.source = source.clone();
    event.session_expires_at = event.session_expires_at.max(now);
    let token = open_session(&mut tx, &identity.id, handoff.roles.clone(), &event, now).await?;
    // Step-up approvals still ask for TOTP: say whether it is enrolled, as a sign-in does.
    let totp_enrolled = tx
        .get_totp(&identity.id)
        .await?
        .is_some_and(|t| t.confirmed);
    tx.commit().await?;
    let mut identity = identity;
    for r in handoff.roles {
        if !identity.has_role(&r) {
            identity.roles.push(r);
        }
    }
    Ok(LoginResponse {
        token,
        expires_at: event.session_expires_at,
        identity,
        totp_enrolled,
    })
}

/// The refusal's event and the source's failure count, in one transaction.
async fn record_refusal(
    state: &AppState,
    provider: Option<&str>,
    refusal: &SsoRefusal,
    seen: &Seen,
    source: &str,
    now: Timestamp,
) -> Result<(), ServerError> {
    let mut tx = state.store.write().await?;
    let mut events = vec![Event::with_payload(
        Actor::system(),
        now,
        &SsoRefused {
            reason: refusal.reason,
            provider: provider.map(str::to_string),
            sub: seen.sub.clone(),
            acr: seen.acr.clone(),
            amr: seen.amr.clone(),
            source: source.to_string(),
            message: capped(&refusal.message),
        },
    )?];
    if refusal.reason.counts_against_source() && source != "server" {
        events.extend(federated_failure(state, &mut tx, source, now).await?);
    }
    tx.append_events(&events).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cli_start_needs_a_port_and_an_s256_challenge() {
        let verifier = PkceCodeVerifier::new("v".repeat(50));
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        check_cli_start(40_000, challenge.as_str()).unwrap();
        assert!(check_cli_start(0, challenge.as_str()).is_err());
        assert!(check_cli_start(40_000, "short").is_err());
        assert!(check_cli_start(40_000, &"=".repeat(43)).is_err());
    }
}
