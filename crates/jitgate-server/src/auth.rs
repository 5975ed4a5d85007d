//! Authentication: passwords (argon2id), TOTP (RFC 6238, each time-step usable once), API
//! keys for workloads (random, stored as SHA-256), and short-lived session tokens so that
//! API calls do not pay for argon2 each time.
//!
//! Tokens are 32 random bytes, base64url, prefixed `jgs_` (session) or `jgk_` (API key) so a
//! leaked value is recognisable in logs and secret scanners. Only their SHA-256 is stored.
//!
//! No HTTP here: the extractor that reads the bearer header is in [`crate::api::extract`].

use crate::error::ServerError;
use crate::state::AppState;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use jitgate_core::payload::AuthMethod;
use jitgate_core::{Identity, Timestamp};
use jitgate_store::Bearer;
use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

pub const SESSION_PREFIX: &str = "jgs_";
pub const API_KEY_PREFIX: &str = "jgk_";
const MIN_PASSWORD_LEN: usize = 12;

/// The password policy, checked before anything is hashed.
pub fn check_password_policy(password: &str) -> Result<(), ServerError> {
    jitgate_core::governance::check_password(password)?;
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ServerError::BadRequest(format!(
            "passwords need at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String, ServerError> {
    check_password_policy(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServerError::Internal(format!("argon2: {e}")))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random token with the given prefix.
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random password for bootstrap users (quickstart); 20 characters, unambiguous alphabet.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

pub fn new_totp_secret() -> String {
    match Secret::generate_secret().to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(raw) => base32_of(&raw),
    }
}

fn base32_of(raw: &[u8]) -> String {
    Secret::Raw(raw.to_vec()).to_encoded().to_string()
}

fn totp_for(secret_b32: &str, account: &str) -> Result<TOTP, ServerError> {
    let bytes = Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|e| ServerError::Internal(format!("stored TOTP secret is not base32: {e:?}")))?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        Some("jitgate".into()),
        account.to_string(),
    )
    .map_err(|e| ServerError::Internal(format!("TOTP: {e}")))
}

pub fn totp_url(secret_b32: &str, account: &str) -> Result<String, ServerError> {
    Ok(totp_for(secret_b32, account)?.get_url())
}

/// The current code (for tests and the quickstart's demo helper).
pub fn totp_code_at(secret_b32: &str, t: Timestamp) -> Result<String, ServerError> {
    Ok(totp_for(secret_b32, "x")?.generate(t.timestamp().max(0) as u64))
}

/// If `code` is valid at `now` (±1 step for clock drift), the time-step it belongs to.
/// The caller must then record the step as used, which refuses replays.
pub fn totp_step(secret_b32: &str, code: &str, now: Timestamp) -> Result<Option<i64>, ServerError> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp_for(secret_b32, "x")?;
    let current = now.timestamp() / 30;
    for step in [current - 1, current, current + 1] {
        if step < 0 {
            continue;
        }
        let expected = totp.generate((step * 30) as u64);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Check a TOTP code for `identity` and mark its step used, inside the caller's transaction.
/// Callers go through `crate::login::step_up` (or sign-in), which count failures.
pub async fn check_totp(
    tx: &mut jitgate_store::Tx,
    key: &crate::secrets::TotpKey,
    identity: &str,
    code: &str,
    now: Timestamp,
) -> Result<(), ServerError> {
    let Some(rec) = tx.get_totp(identity).await? else {
        return Err(ServerError::BadTotp(format!(
            "{identity} has no TOTP enrolled; run `jitgate totp enroll` then `jitgate totp confirm <code>`"
        )));
    };
    let secret = key.open(identity, &rec.secret_b32)?;
    let Some(step) = totp_step(&secret, code, now)? else {
        return Err(ServerError::BadTotp(
            "TOTP code is wrong or too old; enter the current code".into(),
        ));
    };
    if !tx.use_totp_step(identity, step).await? {
        return Err(ServerError::BadTotp(
            "this TOTP code was already used; wait for the next code".into(),
        ));
    }
    Ok(())
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVia {
    Session,
    ApiKey,
}

/// The authenticated caller of an API endpoint.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub via: AuthVia,
    /// The API key the caller authenticated with (id and minter), for `AuthVia::ApiKey`.
    pub api_key: Option<jitgate_core::governance::FiledWithKey>,
    /// How: a password sign-in's session, a federated token's session, or an API key.
    pub method: AuthMethod,
    /// When the caller's session was opened (`None` for API keys).
    pub signed_in_at: Option<Timestamp>,
}

impl Caller {
    pub fn id(&self) -> &str {
        &self.identity.id
    }
    /// Plant-wide administrators: inventory, identities, policies.
    pub fn is_admin(&self) -> bool {
        self.identity.has_role("admin")
    }
    /// Security staff and auditors see everything; security can also revoke.
    pub fn sees_everything(&self) -> bool {
        jitgate_core::access::sees_everything(&self.identity)
    }
    /// Gateways: workload identities with the `gateway` role, using their API key.
    pub fn require_gateway(&self) -> Result<(), ServerError> {
        if self.identity.kind == jitgate_core::IdentityKind::Workload
            && self.identity.has_role("gateway")
        {
            Ok(())
        } else {
            Err(ServerError::Forbidden(
                "only gateways (workload identities with the `gateway` role, using their API key) call /gateway endpoints".into(),
            ))
        }
    }
    pub fn require_admin(&self) -> Result<(), ServerError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServerError::Forbidden(format!(
                "{} lacks the `admin` role this needs; ask a jitgate administrator",
                self.identity.id
            )))
        }
    }
}

pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ServerError> {
    if !token.starts_with(SESSION_PREFIX) && !token.starts_with(API_KEY_PREFIX) {
        return Err(ServerError::Unauthenticated(
            "token is not a jitgate session token or API key; run `jitgate login`".into(),
        ));
    }
    let now = state.clock.now();
    let (identity, via, api_key, method, signed_in_at) = match state.store.bearer(&token_hash(token)).await? {
        None => {
            return Err(ServerError::Unauthenticated(
                "token is unknown, logged out or revoked; run `jitgate login`".into(),
            ))
        }
        Some(Bearer::Session { expires_at, .. }) if expires_at <= state.clock.now() => {
            return Err(ServerError::Unauthenticated(
                "session expired; run `jitgate login` again".into(),
            ))
        }
        Some(Bearer::Session {
            mut identity,
            method,
            roles,
            created_at,
            ..
        }) => {
            // Roles an SSO sign-in's groups added hold for this session only.
            for role in roles {
                if !identity.has_role(&role) {
                    identity.roles.push(role);
                }
            }
            (identity, AuthVia::Session, None, method, Some(created_at))
        }
        Some(Bearer::ApiKey { revoked: true, key_id, .. }) => {
            return Err(ServerError::Unauthenticated(format!(
                "API key {key_id} is revoked; ask an administrator for a new one (`jitgate apikey create`)"
            )))
        }
        Some(Bearer::ApiKey {
            expires_at: Some(t),
            key_id,
            ..
        }) if t <= now => {
            return Err(ServerError::Unauthenticated(format!(
                "API key {key_id} expired at {}; ask an administrator for a new one (`jitgate apikey create --expires-in ...`)",
                jitgate_core::event::rfc3339(t)
            )))
        }
        Some(Bearer::ApiKey {
            identity,
            key_id,
            minted_by,
            minter,
            ..
        }) => {
            // A key stands on the person who minted it: it stops working when they are
            // disabled or leave the inventory.
            if let Some(by) = &minted_by {
                if !minter.as_ref().is_some_and(|m| m.is_active()) {
                    return Err(ServerError::Unauthenticated(format!(
                        "API key {key_id} was minted by {by}, who is disabled or no longer in the inventory; the key no longer works. Ask an administrator for a new one"
                    )));
                }
            }
            let key = jitgate_core::governance::FiledWithKey { key_id, minted_by };
            (identity, AuthVia::ApiKey, Some(key), AuthMethod::ApiKey, None)
        }
    };
    if !identity.is_active() {
        return Err(jitgate_core::CoreError::IdentityDisabled(identity.id).into());
    }
    Ok(Caller {
        identity,
        via,
        api_key,
        method,
        signed_in_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip_and_minimum() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn totp_accepts_current_and_neighbour_steps_only() {
        let secret = new_totp_secret();
        let now = chrono::Utc::now();
        let code = totp_code_at(&secret, now).unwrap();
        assert_eq!(
            totp_step(&secret, &code, now).unwrap(),
            Some(now.timestamp() / 30)
        );
        let later = now + chrono::Duration::seconds(120);
        assert_eq!(totp_step(&secret, &code, later).unwrap(), None);
        assert_eq!(totp_step(&secret, "12345x", now).unwrap(), None);
    }

    #[test]
    fn tokens_are_prefixed_and_unique() {
        let a = new_token(SESSION_PREFIX);
        assert!(a.starts_with("jgs_") && a.len() > 40);
        assert_ne!(a, new_token(SESSION_PREFIX));
    }
}
