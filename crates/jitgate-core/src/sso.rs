//! OIDC sign-in for people ("single sign-on"): the rules that turn an OpenID provider's ID
//! token into a jitgate session for one person of the inventory. The server runs the
//! authorization code flow (state, nonce, PKCE), fetches the provider's keys and checks the
//! signature; everything decided about an ID token whose signature is good is here, without
//! I/O and on an injected time:
//! - [`Provider`] / [`Rule`] — what an operator configured, and [`validate_providers`], which
//!   refuses at load a mapping that could send one login to two identities (naming both
//!   rules), a rule to a workload or to an unknown identity, and an `sso_only` identity no
//!   rule maps to (it could never sign in);
//! - [`check_id_token`] — issuer, audience (and `azp`), times, nonce, then the mapping;
//! - [`SsoRefusal`] / [`SsoRefusalReason`] — why a sign-in was refused, each with its code;
//! - the payloads of the `auth.sso` and `auth.sso_refused` events.
//!
//! The claims are read with the federation's [`TokenClaims`] and time rules
//! ([`crate::federation::check_times`]): one reading of JWT claims for both.

use crate::codes::Code;
use crate::event::{millis, EventKind};
use crate::federation::{self, capped, RefusalReason, TokenClaims};
use crate::payload::{AuthMethod, Payload};
use crate::{Identity, IdentityKind, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// Default and bounds of a provider's `max_session` (the session never outlives it, nor the
/// server's `session_ttl`).
pub const DEFAULT_MAX_SESSION_SECS: i64 = 8 * 3600;

/// One mapping rule: a login whose every named claim matches goes to `identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub identity: String,
    /// The provider's `sub` for this person (stable, never reassigned by the provider).
    pub subject: Option<String>,
    /// The person's e-mail address; matches only when the provider says it is verified
    /// (`email_verified: true`). Compared without regard to case.
    pub email: Option<String>,
}

impl Rule {
    /// Could one login match both rules? Only if every claim both name can have one value
    /// both accept (a claim only one of them names tells them apart in no login).
    pub fn overlaps(&self, other: &Rule) -> bool {
        let subject = match (&self.subject, &other.subject) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let email = match (&self.email, &other.email) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        subject && email
    }

    fn matches(&self, claims: &LoginClaims) -> bool {
        let subject = self
            .subject
            .as_ref()
            .is_none_or(|s| claims.sub.as_deref() == Some(s.as_str()));
        let email = self.email.as_ref().is_none_or(|e| {
            claims.email_verified
                && claims
                    .email
                    .as_deref()
                    .is_some_and(|got| got.eq_ignore_ascii_case(e))
        });
        subject && email
    }
}

/// Roles a group of the provider's group claim adds to the sessions of its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRoles {
    pub group: String,
    pub roles: Vec<String>,
}

/// An OpenID provider as configured (`[[sso.providers]]`); endpoints and keys are the
/// server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// In URLs, events and `jitgate login --sso --provider`.
    pub name: String,
    /// Must equal the ID token's `iss` exactly.
    pub issuer: String,
    /// The ID token's `aud` must contain it (and `azp`, when present, equal it).
    pub client_id: String,
    pub rules: Vec<Rule>,
    /// Claim holding the person's groups (a list of strings), if groups map to roles.
    pub groups_claim: Option<String>,
    pub group_roles: Vec<GroupRoles>,
    pub max_session_secs: i64,
}

/// What is wrong with the SSO configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sso provider {provider:?}: {message}")]
pub struct ProviderError {
    pub provider: String,
    pub message: String,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Refuse a configuration that would sign people in as someone else or lock them out.
/// `identity` looks an id up in the inventory; `sso_only` are the identities whose password
/// is refused.
pub fn validate_providers<'a>(
    providers: &[Provider],
    sso_only: &[String],
    identity: impl Fn(&str) -> Option<&'a Identity>,
) -> Result<(), ProviderError> {
    let mut names = BTreeSet::new();
    for p in providers {
        let err = |message: String| ProviderError {
            provider: p.name.clone(),
            message,
        };
        if !valid_name(&p.name) {
            return Err(err("name: use 1-64 letters, digits, '-', '_' or '.'".into()));
        }
        if !names.insert(p.name.as_str()) {
            return Err(err("two providers have this name; names must differ".into()));
        }
        if p.issuer.trim().is_empty() || p.issuer.trim() != p.issuer {
            return Err(err(
                "issuer is empty or has surrounding spaces; write it exactly as the provider's \
                 `issuer` (its discovery document) says"
                    .into(),
            ));
        }
        if p.client_id.trim().is_empty() {
            return Err(err(
                "client_id is empty; register jitgate at the provider and copy its client id"
                    .into(),
            ));
        }
        if !(60..=24 * 3600).contains(&p.max_session_secs) {
            return Err(err(format!(
                "max_session is outside 1m..24h ({} s)",
                p.max_session_secs
            )));
        }
        if p.rules.is_empty() {
            return Err(err(
                "no [[sso.providers.map]]: map at least one subject or e-mail to an identity"
                    .into(),
            ));
        }
        for (i, r) in p.rules.iter().enumerate() {
            let at = format!("map #{} ({})", i + 1, r.identity);
            if r.subject.is_none() && r.email.is_none() {
                return Err(err(format!(
                    "{at} names neither `subject` nor `email`: it would map every login of \
                     the provider; name the person's subject or e-mail"
                )));
            }
            if [&r.subject, &r.email].iter().any(|v| {
                v.as_deref()
                    .is_some_and(|v| v.trim().is_empty() || v.contains('*'))
            }) {
                return Err(err(format!(
                    "{at}: a subject or e-mail is empty or has a `*`; write the exact value"
                )));
            }
            match identity(&r.identity) {
                None => {
                    return Err(err(format!(
                        "{at}: identity {:?} is not in the inventory",
                        r.identity
                    )))
                }
                Some(found) if found.kind == IdentityKind::Workload => {
                    return Err(err(format!(
                        "{at}: identity {:?} is a workload; workloads federate \
                         ([[federation.issuers]]), people sign in with SSO",
                        r.identity
                    )))
                }
                Some(_) => {}
            }
        }
        // One login matched by two rules to different identities would be mapped by the
        // order of the file, and a rule added later could take over someone's logins.
        for (i, a) in p.rules.iter().enumerate() {
            for (j, b) in p.rules.iter().enumerate().skip(i + 1) {
                if a.identity != b.identity && a.overlaps(b) {
                    return Err(err(format!(
                        "map #{} ({}) and map #{} ({}) can both match one login (e.g. one \
                         rule's subject with the other's e-mail); make them exclusive: map \
                         every person by the same claim, or name both claims in both",
                        i + 1,
                        a.identity,
                        j + 1,
                        b.identity
                    )));
                }
            }
        }
        if p.group_roles.is_empty() != p.groups_claim.is_none() {
            return Err(err(
                "groups_claim and [[sso.providers.groups]] go together: name the claim that \
                 holds the groups, and map at least one group to roles"
                    .into(),
            ));
        }
        for g in &p.group_roles {
            if g.group.is_empty() || g.roles.is_empty() || g.roles.iter().any(String::is_empty) {
                return Err(err(format!(
                    "groups {:?}: name the group and at least one role",
                    g.group
                )));
            }
        }
    }
    for id in sso_only {
        let mapped = providers
            .iter()
            .any(|p| p.rules.iter().any(|r| &r.identity == id));
        if !mapped {
            return Err(ProviderError {
                provider: "-".into(),
                message: format!(
                    "sso_only names {id:?}, but no [[sso.providers.map]] maps a login to it: \
                     it could not sign in at all; map it, or remove it from sso_only"
                ),
            });
        }
    }
    Ok(())
}

/// Why an SSO sign-in was refused (the `reason` of `auth.sso_refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SsoRefusalReason {
    /// The callback's `state` is unknown, used, expired, or not this browser's.
    StateMismatch,
    /// The provider answered the authorization request with an error (e.g. the person
    /// declined consent).
    ProviderDenied,
    /// The provider refused to exchange the code (used already, expired, PKCE mismatch).
    CodeRejected,
    /// The ID token is not a JWT, or lacks required claims.
    Malformed,
    WrongIssuer,
    WrongAudience,
    /// Signature wrong, by a key the provider does not publish, or `alg` none or HMAC.
    BadSignature,
    Expired,
    NotYetValid,
    /// The ID token's `nonce` is not the one sent with this sign-in.
    NonceMismatch,
    /// This ID token was used for a sign-in already.
    TokenReplayed,
    /// No mapping rule matches the login.
    Unmapped,
    /// The mapped identity is disabled, or no longer a person of the inventory.
    IdentityDisabled,
    /// The provider (discovery, keys or token endpoint) cannot be reached: fail closed.
    ProviderUnavailable,
    /// A CLI sign-in's hand-off code is unknown, used, expired, or its verifier wrong.
    HandoffRejected,
}

impl SsoRefusalReason {
    pub fn code(self) -> Code {
        use SsoRefusalReason as R;
        match self {
            R::StateMismatch => Code::SsoStateMismatch,
            R::ProviderDenied => Code::SsoProviderDenied,
            R::CodeRejected => Code::SsoCodeRejected,
            R::Malformed => Code::TokenMalformed,
            R::WrongIssuer => Code::UnknownIssuer,
            R::WrongAudience => Code::WrongAudience,
            R::BadSignature => Code::TokenBadSignature,
            R::Expired => Code::TokenExpired,
            R::NotYetValid => Code::TokenNotYetValid,
            R::NonceMismatch => Code::SsoNonceMismatch,
            R::TokenReplayed => Code::TokenReplayed,
            R::Unmapped => Code::SsoUnmapped,
            R::IdentityDisabled => Code::IdentityDisabled,
            R::ProviderUnavailable => Code::SsoUnavailable,
            R::HandoffRejected => Code::SsoHandoffRejected,
        }
    }

    /// Counted against the caller's address like a failed password: everything but our own
    /// failure to reach the provider.
    pub fn counts_against_source(self) -> bool {
        self != SsoRefusalReason::ProviderUnavailable
    }

    /// The SSO reason of a federation rule's refusal (shared claim and time rules).
    fn from_federation(r: RefusalReason) -> SsoRefusalReason {
        match r {
            RefusalReason::Expired => SsoRefusalReason::Expired,
            RefusalReason::NotYetValid | RefusalReason::LifetimeTooLong => {
                SsoRefusalReason::NotYetValid
            }
            RefusalReason::UnknownIssuer => SsoRefusalReason::WrongIssuer,
            RefusalReason::WrongAudience => SsoRefusalReason::WrongAudience,
            RefusalReason::BadSignature => SsoRefusalReason::BadSignature,
            RefusalReason::TokenReplayed => SsoRefusalReason::TokenReplayed,
            RefusalReason::JwksUnavailable => SsoRefusalReason::ProviderUnavailable,
            RefusalReason::IdentityDisabled => SsoRefusalReason::IdentityDisabled,
            RefusalReason::Malformed | RefusalReason::ClaimsNotBound => SsoRefusalReason::Malformed,
        }
    }
}

/// A refusal with a message that says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SsoRefusal {
    pub reason: SsoRefusalReason,
    pub message: String,
}

impl SsoRefusal {
    pub fn new(reason: SsoRefusalReason, message: impl Into<String>) -> Self {
        SsoRefusal {
            reason,
            message: message.into(),
        }
    }
}

impl From<federation::Refusal> for SsoRefusal {
    fn from(r: federation::Refusal) -> Self {
        SsoRefusal::new(SsoRefusalReason::from_federation(r.reason), r.message)
    }
}

/// The claims of an ID token that sign-in uses, beyond the JWT ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoginClaims {
    pub sub: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub nonce: Option<String>,
    pub azp: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub groups: Vec<String>,
}

impl LoginClaims {
    /// Read from the token's claims; values of the wrong type count as absent (`amr` and
    /// the groups keep their strings only).
    pub fn read(claims: &TokenClaims, groups_claim: Option<&str>) -> LoginClaims {
        let s = |name: &str| {
            claims
                .all
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let list = |name: &str| -> Vec<String> {
            match claims.all.get(name) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                Some(Value::String(one)) => vec![one.clone()],
                _ => Vec::new(),
            }
        };
        LoginClaims {
            sub: s("sub"),
            email: s("email"),
            // Some providers send the string "true".
            email_verified: matches!(claims.all.get("email_verified"), Some(Value::Bool(true)))
                || claims.all.get("email_verified").and_then(Value::as_str) == Some("true"),
            nonce: s("nonce"),
            azp: s("azp"),
            acr: s("acr"),
            amr: list("amr"),
            groups: groups_claim.map(list).unwrap_or_default(),
        }
    }
}

/// What an accepted ID token maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub identity: String,
    /// 1-based number of the rule that matched.
    pub rule: usize,
    /// Roles the provider's groups add to this session (sorted, without duplicates).
    pub roles: Vec<String>,
    pub session_expires_at: Timestamp,
    /// The ID token is remembered under this key until `replay_until`.
    pub replay_key: String,
    pub replay_until: Timestamp,
}

/// What the server knows of one sign-in besides the token: the nonce it sent, whether the
/// token was used for a sign-in already ([`replay_key`]), its longest session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect<'a> {
    pub nonce: &'a str,
    pub replayed: bool,
    pub session_ttl_secs: i64,
}

/// The key an ID token is remembered under against replay (the federation's rule: issuer
/// and `jti`, or the token's hash).
pub fn replay_key(claims: &TokenClaims, raw: &str) -> String {
    federation::replay_key(claims, raw)
}

/// Everything about an ID token whose signature the server verified against `provider`'s
/// keys: issuer, audience and authorized party, times, replay, the nonce this sign-in sent,
/// the mapping.
pub fn check_id_token(
    provider: &Provider,
    claims: &TokenClaims,
    login: &LoginClaims,
    raw: &str,
    expect: &Expect<'_>,
    now: Timestamp,
) -> Result<SignIn, SsoRefusal> {
    let (expected_nonce, session_ttl_secs) = (expect.nonce, expect.session_ttl_secs);
    use SsoRefusalReason as R;
    if claims.iss != provider.issuer {
        return Err(SsoRefusal::new(
            R::WrongIssuer,
            format!(
                "the ID token's issuer {:?} is not provider {:?}'s {:?}; check `issuer` in \
                 [[sso.providers]]",
                capped(&claims.iss),
                provider.name,
                provider.issuer
            ),
        ));
    }
    if !claims.aud.iter().any(|a| a == &provider.client_id) {
        return Err(SsoRefusal::new(
            R::WrongAudience,
            format!(
                "the ID token was issued to another client: its audience lacks jitgate's \
                 client id {:?}",
                provider.client_id
            ),
        ));
    }
    // With several audiences, the authorized party must be us (OpenID Connect Core 3.1.3.7).
    if let Some(azp) = &login.azp {
        if azp != &provider.client_id {
            return Err(SsoRefusal::new(
                R::WrongAudience,
                format!(
                    "the ID token's authorized party (azp) is {:?}, not jitgate's client id",
                    capped(azp)
                ),
            ));
        }
    } else if claims.aud.len() > 1 {
        return Err(SsoRefusal::new(
            R::WrongAudience,
            "the ID token has several audiences and no authorized party (azp)",
        ));
    }
    federation::check_times(claims, now.timestamp())?;
    // Before the nonce: a replayed token carries the nonce of the sign-in it was made for.
    if expect.replayed {
        return Err(SsoRefusal::new(
            R::TokenReplayed,
            "this ID token was used for a sign-in already; each is taken once: start the              sign-in again",
        ));
    }
    if login.nonce.as_deref() != Some(expected_nonce) {
        return Err(SsoRefusal::new(
            R::NonceMismatch,
            "the ID token's nonce is not the one this sign-in sent: it was issued for \
             another sign-in (or replayed); start the sign-in again",
        ));
    }
    let Some(sub) = &login.sub else {
        return Err(SsoRefusal::new(
            R::Malformed,
            "the ID token has no `sub` claim",
        ));
    };
    let Some((rule, found)) = provider
        .rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.matches(login))
    else {
        let email = match (&login.email, login.email_verified) {
            (Some(e), true) => format!(", e-mail {:?}", capped(e)),
            (Some(e), false) => format!(", e-mail {:?} (not verified)", capped(e)),
            (None, _) => String::new(),
        };
        return Err(SsoRefusal::new(
            R::Unmapped,
            format!(
                "no identity is mapped to this login of provider {:?} (subject {:?}{email}); \
                 an administrator maps it in [[sso.providers.map]]",
                provider.name,
                capped(sub)
            ),
        ));
    };
    let roles: BTreeSet<String> = provider
        .group_roles
        .iter()
        .filter(|g| login.groups.contains(&g.group))
        .flat_map(|g| g.roles.iter().cloned())
        .collect();
    let max = provider.max_session_secs.min(session_ttl_secs);
    let token_end = chrono::DateTime::from_timestamp(claims.exp, 0)
        .unwrap_or(now + chrono::Duration::seconds(max));
    Ok(SignIn {
        identity: found.identity.clone(),
        rule: rule + 1,
        roles: roles.into_iter().collect(),
        session_expires_at: now + chrono::Duration::seconds(max),
        replay_key: replay_key(claims, raw),
        replay_until: token_end.max(now) + chrono::Duration::seconds(federation::LEEWAY_SECS),
    })
}

/// Where an SSO sign-in was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SsoClient {
    Console,
    Cli,
}

impl SsoClient {
    pub fn as_str(self) -> &'static str {
        match self {
            SsoClient::Console => "console",
            SsoClient::Cli => "cli",
        }
    }

    pub fn parse(text: &str) -> Option<SsoClient> {
        [SsoClient::Console, SsoClient::Cli]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// `auth.sso`: a person signed in through an OpenID provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsoSignedIn {
    pub identity: String,
    pub provider: String,
    pub iss: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Authentication context class and methods, as the provider stated them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// 1-based number of the mapping rule that matched.
    pub rule: usize,
    /// Roles the provider's groups added to this session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles_added: Vec<String>,
    pub client: SsoClient,
    #[serde(with = "millis")]
    pub session_expires_at: Timestamp,
    pub method: AuthMethod,
    pub source: String,
}
impl Payload for SsoSignedIn {
    const KIND: EventKind = EventKind::AuthSso;
}

/// `auth.sso_refused`: a sign-in through a provider refused, with the typed reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsoRefused {
    pub reason: SsoRefusalReason,
    /// The provider's name, when the sign-in named a known one.
    pub provider: Option<String>,
    /// As the ID token carried them (cut; unverified unless the signature was good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    pub source: String,
    pub message: String,
}
impl Payload for SsoRefused {
    const KIND: EventKind = EventKind::AuthSsoRefused;
}

#[cfg(test)]
#[path = "sso_tests.rs"]
mod tests;
