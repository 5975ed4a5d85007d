//! Signing in, step-up codes and password changes under the backoff and lockout rules of
//! `jitgate_core::lockout`, with passwords checked in the bounded pool of
//! [`crate::throttle`].
//!
//! Every failed sign-in gets the same answer whether the identity is unknown, a workload,
//! disabled, or the password or the TOTP code is wrong: without a code, `401 totp_required`
//! ("send your code; without TOTP, the identity or password is wrong"), which is also what an
//! identity with TOTP is told whatever its password; with a code, `401 unauthenticated`. A
//! password is hashed in every case, so the time taken tells nothing either. Failures are counted per identity name and per source address; while one of them
//! is in backoff (`429 login_backoff`) or locked out (`429 locked_out`) attempts are refused
//! without being checked, so the right password is refused too. Failed step-up codes
//! (approvals, TOTP confirmation, password change) count toward the same identity's lockout.

use crate::auth::{self, Caller};
use crate::error::ServerError;
use crate::state::AppState;
use crate::views::{LoginResponse, UnlockView};
use jitgate_core::event::Actor;
use jitgate_core::lockout::{FailureRecord, Gate, LockoutPolicy};
use jitgate_core::payload::{
    AuthFailure, AuthStage, LockKey, LockedOut, LoginFailed, LoginSucceeded, PasswordChanged,
    PasswordReset, Unlocked,
};
use jitgate_core::{Code, Event, IdentityKind, Timestamp};
use jitgate_store::SessionRecord;
use std::net::IpAddr;

const IDENTITY: &str = "identity";
const SOURCE: &str = "source";
/// Identity names are counted (and logged) by their first 128 characters.
const NAME_CAP: usize = 128;

/// The one answer of every failed sign-in.
pub fn refused() -> ServerError {
    ServerError::Unauthenticated(
        "sign-in refused: the identity, password or TOTP code is wrong".into(),
    )
}

/// The address failures are counted against (`unknown` when the server does not know it).
pub fn source_of(peer: Option<IpAddr>) -> String {
    match peer {
        // An IPv4 client seen over an IPv6 socket counts as its IPv4 address.
        Some(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

fn capped(name: &str) -> String {
    name.chars().take(NAME_CAP).collect()
}

fn policies(state: &AppState) -> Result<(LockoutPolicy, LockoutPolicy), ServerError> {
    let login = &state.config.login;
    Ok((
        login.identity_policy().map_err(ServerError::Internal)?,
        login.source_policy().map_err(ServerError::Internal)?,
    ))
}

/// Refuse without checking when the identity or the source is in backoff or locked out.
async fn gate(
    state: &AppState,
    name: &str,
    source: Option<&str>,
    now: Timestamp,
) -> Result<(), ServerError> {
    gate_keys(state, Some(name), source, now).await
}

/// Refuse a federated token unchecked while its source address is in backoff or locked
/// out (`crate::federation`): one counter per address for passwords and tokens alike.
pub(crate) async fn gate_source(
    state: &AppState,
    source: &str,
    now: Timestamp,
) -> Result<(), ServerError> {
    gate_keys(state, None, Some(source), now).await
}

async fn gate_keys(
    state: &AppState,
    name: Option<&str>,
    source: Option<&str>,
    now: Timestamp,
) -> Result<(), ServerError> {
    let (by_identity, by_source) = policies(state)?;
    let mut tx = state.store.read().await?;
    let mut g = Gate::Open;
    if let Some(name) = name {
        g = by_identity.gate(tx.get_auth_failures(IDENTITY, name).await?.as_ref(), now);
    }
    if let Some(source) = source {
        g = g.and(by_source.gate(tx.get_auth_failures(SOURCE, source).await?.as_ref(), now));
    }
    drop(tx);
    let Some(secs) = g.retry_after_secs(now) else {
        return Ok(());
    };
    Err(match g {
        Gate::Locked { .. } => ServerError::Throttled {
            code: Code::LockedOut,
            message: format!(
                "too many failed attempts: locked out for {secs} s more (an administrator can \
                 end it: `jitgate identities unlock <id>`)"
            ),
            retry_after_secs: secs,
        },
        _ => ServerError::Throttled {
            code: Code::LoginBackoff,
            message: format!("too many failed attempts; try again in {secs} s"),
            retry_after_secs: secs,
        },
    })
}

/// Count one failure against the identity name (and the source), with its events.
async fn record_failure(
    state: &AppState,
    name: &str,
    source: Option<&str>,
    stage: AuthStage,
    failure: AuthFailure,
    now: Timestamp,
) -> Result<(), ServerError> {
    let (by_identity, by_source) = policies(state)?;
    let mut tx = state.store.write().await?;
    let mut events = Vec::new();
    let before = tx.get_auth_failures(IDENTITY, name).await?;
    let f = by_identity.after_failure(before.as_ref(), now);
    tx.put_auth_failures(IDENTITY, name, &f.record).await?;
    let actor = Actor::system();
    events.push(Event::with_payload(
        actor.clone(),
        now,
        &LoginFailed {
            identity: name.to_string(),
            source: source.unwrap_or("session").to_string(),
            stage,
            failure,
            failures: f.record.failures,
        },
    )?);
    if let (true, Some(until)) = (f.locked_now, f.record.locked_until) {
        tracing::warn!(
            identity = name,
            failures = f.record.failures,
            "identity locked out"
        );
        events.push(lock_event(LockKey::Identity, name, &f.record, until, now)?);
    }
    if let Some(source) = source {
        events.extend(count_source_failure(&mut tx, &by_source, source, now).await?);
    }
    tx.append_events(&events).await?;
    tx.commit().await?;
    Ok(())
}

/// Count one failure against a source address in the caller's transaction; the lockout
/// event when this failure locks it.
async fn count_source_failure(
    tx: &mut jitgate_store::Tx,
    by_source: &LockoutPolicy,
    source: &str,
    now: Timestamp,
) -> Result<Vec<Event>, ServerError> {
    let before = tx.get_auth_failures(SOURCE, source).await?;
    let s = by_source.after_failure(before.as_ref(), now);
    tx.put_auth_failures(SOURCE, source, &s.record).await?;
    if let (true, Some(until)) = (s.locked_now, s.record.locked_until) {
        tracing::warn!(
            source,
            failures = s.record.failures,
            "source address locked out"
        );
        return Ok(vec![lock_event(
            LockKey::Source,
            source,
            &s.record,
            until,
            now,
        )?]);
    }
    Ok(Vec::new())
}

/// A refused federated token counts against its source like a failed sign-in
/// (`crate::federation`): in the caller's transaction, with the lockout event if it locks.
pub(crate) async fn federated_failure(
    state: &AppState,
    tx: &mut jitgate_store::Tx,
    source: &str,
    now: Timestamp,
) -> Result<Vec<Event>, ServerError> {
    let (_, by_source) = policies(state)?;
    count_source_failure(tx, &by_source, source, now).await
}

fn lock_event(
    key: LockKey,
    value: &str,
    rec: &FailureRecord,
    until: Timestamp,
    now: Timestamp,
) -> Result<Event, ServerError> {
    Ok(Event::with_payload(
        Actor::system(),
        now,
        &LockedOut {
            key,
            value: value.to_string(),
            failures: rec.failures,
            until,
        },
    )?)
}

/// argon2id hash of a random password nobody knows; checked against when there is no
/// password to check, so that every failure costs the same.
fn dummy_hash() -> Result<String, ServerError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = auth::hash_password(&auth::random_password())?;
    Ok(DUMMY.get_or_init(|| h).clone())
}

/// Check a password in the pool (against the dummy hash when there is none).
async fn check_password(
    state: &AppState,
    password: &str,
    phc: Option<String>,
) -> Result<bool, ServerError> {
    let real = phc.is_some();
    let phc = match phc {
        Some(h) => h,
        None => dummy_hash()?,
    };
    let password = password.to_string();
    let ok = state
        .throttle
        .hash(move || auth::verify_password(&password, &phc))
        .await?;
    Ok(ok && real)
}

/// Hash a new password in the pool (policy checked first, without using the pool).
pub async fn hash_new_password(state: &AppState, password: &str) -> Result<String, ServerError> {
    auth::check_password_policy(password)?;
    let password = password.to_string();
    state
        .throttle
        .hash(move || auth::hash_password(&password))
        .await?
}

/// `POST /auth/login`.
pub async fn sign_in(
    state: &AppState,
    identity: &str,
    password: &str,
    totp: Option<&str>,
    peer: Option<IpAddr>,
) -> Result<LoginResponse, ServerError> {
    let now = state.clock.now();
    let name = capped(identity);
    let source = source_of(peer);
    gate(state, &name, Some(&source), now).await?;
    let Some(_checking) = state.throttle.begin(&name) else {
        return Err(ServerError::Throttled {
            code: Code::LoginBackoff,
            message: "another sign-in of this identity is being checked; try again in 1 s".into(),
            retry_after_secs: 1,
        });
    };
    let mut tx = state.store.read().await?;
    let found = tx.get_identity(identity).await?;
    let phc = tx.get_password(identity).await?;
    let enrolled = tx.get_totp(identity).await?.filter(|t| t.confirmed);
    drop(tx);
    let password_ok = check_password(state, password, phc.clone()).await?;
    let failure = match &found {
        None => Some(AuthFailure::UnknownIdentity),
        Some(i) if i.kind == IdentityKind::Workload || phc.is_none() => {
            Some(AuthFailure::NoPassword)
        }
        Some(_) if !password_ok => Some(AuthFailure::WrongPassword),
        Some(i) if !i.is_active() => Some(AuthFailure::IdentityDisabled),
        Some(i) if state.config.sso.sso_only.contains(&i.id) => Some(AuthFailure::SsoOnly),
        Some(_) => None,
    };
    // The right password of an SSO-only identity: told so (only the password's holder
    // learns it), counted and logged like any failure.
    if failure == Some(AuthFailure::SsoOnly) {
        record_failure(
            state,
            &name,
            Some(&source),
            AuthStage::Login,
            AuthFailure::SsoOnly,
            now,
        )
        .await?;
        return Err(ServerError::SsoOnly(format!(
            "{name} signs in through single sign-on only ([sso] sso_only): its password is              refused; use the console's \"Sign in with\" button or `jitgate login --sso`"
        )));
    }
    let (name_ref, source_ref) = (name.as_str(), source.as_str());
    let fail = |failure| async move {
        record_failure(
            state,
            name_ref,
            Some(source_ref),
            AuthStage::Login,
            failure,
            now,
        )
        .await?;
        Err(refused())
    };
    // A sign-in without a code that does not succeed is always answered `totp_required`:
    // for an identity with TOTP whatever its password, and for every failure (unknown,
    // disabled, wrong password). Being asked for a code tells neither that the password was
    // right nor that the identity exists or has TOTP.
    let (Some(found), None) = (found, failure) else {
        if totp.is_none() {
            if let Some(f) = failure {
                record_failure(state, &name, Some(&source), AuthStage::Login, f, now).await?;
            }
            return Err(ServerError::TotpRequired);
        }
        return fail(failure.unwrap_or(AuthFailure::WrongPassword)).await;
    };
    let mut tx = state.store.write().await?;
    if enrolled.is_some() {
        let Some(code) = totp else {
            return Err(ServerError::TotpRequired);
        };
        if auth::check_totp(&mut tx, &state.totp_key, &found.id, code, now)
            .await
            .is_err()
        {
            drop(tx);
            return fail(AuthFailure::WrongTotp).await;
        }
    }
    let token = auth::new_token(auth::SESSION_PREFIX);
    let ttl = state
        .config
        .session_ttl_secs()
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    let expires_at = now + chrono::Duration::seconds(ttl);
    tx.insert_session(&SessionRecord {
        token_hash: auth::token_hash(&token),
        identity: found.id.clone(),
        created_at: now,
        expires_at,
        method: jitgate_core::payload::AuthMethod::Password,
        roles: Vec::new(),
    })
    .await?;
    tx.delete_expired_sessions(now).await?;
    // A success forgets the identity's failures (not the source's: signing in with one's
    // own account must not reset the count of guesses at others').
    tx.delete_auth_failures(IDENTITY, &name).await?;
    tx.append_events(&[Event::with_payload(
        Actor::identity(&found.id),
        now,
        &LoginSucceeded {
            identity: found.id.clone(),
            source: source.clone(),
            totp: enrolled.is_some(),
        },
    )?])
    .await?;
    tx.commit().await?;
    Ok(LoginResponse {
        token,
        expires_at,
        identity: found,
        totp_enrolled: enrolled.is_some(),
    })
}

/// A TOTP code of a signed-in identity (approval step-up, TOTP confirmation): refused
/// unchecked in backoff or lockout; a wrong code counts toward the identity's lockout and is
/// answered `bad_totp`. The code's time step is spent (committed) when it is right.
pub async fn step_up(
    state: &AppState,
    identity: &str,
    code: &str,
    stage: AuthStage,
) -> Result<(), ServerError> {
    let now = state.clock.now();
    gate(state, identity, None, now).await?;
    let mut tx = state.store.write().await?;
    match auth::check_totp(&mut tx, &state.totp_key, identity, code, now).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(())
        }
        Err(e @ ServerError::BadTotp(_)) => {
            drop(tx);
            record_failure(state, identity, None, stage, AuthFailure::WrongTotp, now).await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// `POST /auth/password`: the caller changes their own password with the current one (and
/// their TOTP code when enrolled); every other session of theirs ends.
pub async fn change_own_password(
    state: &AppState,
    caller: &Caller,
    keep_token_hash: Option<&str>,
    current: &str,
    new: &str,
    totp: Option<&str>,
) -> Result<u64, ServerError> {
    let now = state.clock.now();
    let id = caller.id().to_string();
    if caller.via != auth::AuthVia::Session || caller.identity.kind == IdentityKind::Workload {
        return Err(ServerError::Forbidden(
            "only people signed in with a password change it (workloads use API keys)".into(),
        ));
    }
    auth::check_password_policy(new)?;
    gate(state, &id, None, now).await?;
    let mut tx = state.store.read().await?;
    let phc = tx.get_password(&id).await?;
    let enrolled = tx.get_totp(&id).await?.is_some_and(|t| t.confirmed);
    drop(tx);
    if !check_password(state, current, phc).await? {
        record_failure(
            state,
            &id,
            None,
            AuthStage::PasswordChange,
            AuthFailure::WrongPassword,
            now,
        )
        .await?;
        return Err(ServerError::Forbidden(
            "the current password is wrong; nothing was changed".into(),
        ));
    }
    if enrolled {
        let code = totp.ok_or(ServerError::TotpRequired)?;
        step_up(state, &id, code, AuthStage::PasswordChange).await?;
    }
    let hash = hash_new_password(state, new).await?;
    let mut tx = state.store.write().await?;
    tx.set_password(&id, &hash).await?;
    let ended = tx.delete_sessions_of(&id, keep_token_hash).await?;
    tx.delete_auth_failures(IDENTITY, &id).await?;
    tx.append_events(&[Event::with_payload(
        Actor::identity(&id),
        now,
        &PasswordChanged {
            identity: id.clone(),
            sessions_ended: ended,
        },
    )?])
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// An administrator sets another identity's password: every session of theirs ends.
pub async fn reset_password(
    state: &AppState,
    admin: &Caller,
    id: &str,
    new: &str,
) -> Result<u64, ServerError> {
    let hash = hash_new_password(state, new).await?;
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    tx.set_password(id, &hash).await?;
    let ended = tx.delete_sessions_of(id, None).await?;
    tx.append_events(&[Event::with_payload(
        Actor::identity(admin.id()),
        now,
        &PasswordReset {
            identity: id.to_string(),
            sessions_ended: ended,
        },
    )?])
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// `POST /identities/{id}/unlock` (admin): end the lockout of an identity name and forget
/// its failures. Unknown names may be unlocked too (failures are counted per name).
pub async fn unlock(state: &AppState, admin: &Caller, id: &str) -> Result<UnlockView, ServerError> {
    admin.require_admin()?;
    let now = state.clock.now();
    let name = capped(id);
    let mut tx = state.store.write().await?;
    let before = tx.delete_auth_failures(IDENTITY, &name).await?;
    let was_locked = before
        .and_then(|r| r.locked_until)
        .is_some_and(|until| until > now);
    tx.append_events(&[Event::with_payload(
        Actor::identity(admin.id()),
        now,
        &Unlocked {
            key: LockKey::Identity,
            value: name.clone(),
            was_locked,
        },
    )?])
    .await?;
    tx.commit().await?;
    Ok(UnlockView {
        identity: name,
        was_locked,
        failures: before.map_or(0, |r| r.failures),
    })
}

/// `POST /auth/logout/everywhere`: end every session of the caller, this one included.
pub async fn logout_everywhere(state: &AppState, caller: &Caller) -> Result<u64, ServerError> {
    let mut tx = state.store.write().await?;
    let ended = tx.delete_sessions_of(caller.id(), None).await?;
    tx.commit().await?;
    Ok(ended)
}

/// `jitgate bootstrap`: give administrator `id` the first password of a new deployment. Once
/// any administrator can sign in, refused ([`jitgate_core::bootstrap::check`]). Recorded as
/// a password reset by the system.
pub async fn bootstrap_admin(
    state: &AppState,
    id: &str,
    password: &str,
) -> Result<(), ServerError> {
    let hash = hash_new_password(state, password).await?;
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let mut admins_who_can_sign_in = Vec::new();
    for i in tx.list_identities().await? {
        if i.has_role("admin") && tx.get_password(&i.id).await?.is_some() {
            admins_who_can_sign_in.push(i.id);
        }
    }
    let candidate = tx.get_identity(id).await?;
    jitgate_core::bootstrap::check(id, candidate.as_ref(), &admins_who_can_sign_in)
        .map_err(|e| ServerError::BadRequest(e.to_string()))?;
    tx.set_password(id, &hash).await?;
    tx.append_events(&[Event::with_payload(
        Actor::system(),
        now,
        &PasswordReset {
            identity: id.to_string(),
            sessions_ended: 0,
        },
    )?])
    .await?;
    tx.commit().await?;
    Ok(())
}
