//! Workload identity federation: the rules that turn a platform-issued JWT (a CI job's OIDC
//! token, a Kubernetes projected service-account token, a SPIFFE JWT-SVID) into a short-lived
//! jitgate session for one workload identity, without any static key.
//!
//! The server fetches the issuer's keys and checks the signature; everything decided about a
//! token whose signature is good is here, without I/O and on an injected time:
//! - [`Trust`] / [`Binding`] / [`ClaimPattern`] — what an operator configured per issuer, and
//!   [`validate_trust`], which refuses a trust that would accept more than meant (no bound
//!   claim, a bare `*`, a binding to an identity that is not a workload);
//! - [`TokenClaims`] — the claims read from the token's payload, typed where the rules need
//!   them (`iss`, `aud`, `exp`, `nbf`, `iat`, `jti`, `sub`);
//! - [`check`] — issuer, audience, times with a small leeway, a bound on the token's own
//!   lifetime, the binding whose claims all match (bindings are exclusive), the session's expiry and the key
//!   under which the token is remembered against replay;
//! - [`Refusal`] / [`RefusalReason`] — why a token was refused, each reason with its API code;
//! - the payloads of the `auth.federated` and `auth.federation_refused` events.

use crate::codes::Code;
use crate::event::{millis, EventKind};
use crate::payload::{AuthMethod, Payload};
use crate::{Identity, IdentityKind, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Clock skew tolerated between the issuer and this server on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 30;
/// Platform tokens live minutes to hours; one that lives longer than this is refused.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 24 * 3600;
/// Default and bounds of a trust's `max_session`: the exchanged session never outlives it.
pub const DEFAULT_MAX_SESSION_SECS: i64 = 15 * 60;
pub const MIN_MAX_SESSION_SECS: i64 = 60;
pub const MAX_MAX_SESSION_SECS: i64 = 12 * 3600;
/// Longest token accepted, in bytes, before anything is decoded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Claim values and names kept in events are cut to this many characters.
const LOGGED_CAP: usize = 256;

/// One bound claim's expected value: exact, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimPattern {
    Exact(String),
    /// Written `refs/heads/release-*`: the claim must start with `refs/heads/release-`.
    Prefix(String),
}

impl ClaimPattern {
    /// `value*` is a prefix, anything else exact. A `*` elsewhere, or a pattern that is only
    /// `*` (it would bind nothing), is refused.
    pub fn parse(text: &str) -> Result<ClaimPattern, String> {
        let (body, prefix) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if body.contains('*') {
            return Err(format!(
                "{text:?}: `*` is allowed only once, at the end (a prefix match)"
            ));
        }
        if body.is_empty() {
            return Err(format!(
                "{text:?} matches every value, which binds nothing; write the value the claim must have"
            ));
        }
        Ok(if prefix {
            ClaimPattern::Prefix(body.to_string())
        } else {
            ClaimPattern::Exact(body.to_string())
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            ClaimPattern::Exact(v) => value == v,
            ClaimPattern::Prefix(p) => value.starts_with(p.as_str()),
        }
    }

    /// Is there a value both patterns match?
    pub fn meets(&self, other: &ClaimPattern) -> bool {
        use ClaimPattern::{Exact, Prefix};
        match (self, other) {
            (Exact(a), Exact(b)) => a == b,
            (Exact(a), Prefix(p)) | (Prefix(p), Exact(a)) => a.starts_with(p.as_str()),
            (Prefix(p), Prefix(q)) => p.starts_with(q.as_str()) || q.starts_with(p.as_str()),
        }
    }
}

impl Binding {
    /// Could one token match both bindings? Only if every claim both name can have a value
    /// both accept (a claim only one of them names constrains nothing in the other).
    pub fn overlaps(&self, other: &Binding) -> bool {
        self.claims.iter().all(|(name, mine)| {
            other
                .claims
                .get(name)
                .is_none_or(|theirs| mine.meets(theirs))
        })
    }
}

/// One mapping of a trust: tokens whose claims all match go to `identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub identity: String,
    /// Claim name (or a JSON pointer such as `/kubernetes.io/namespace` for nested claims)
    /// to the value it must have. Only string claims match.
    pub claims: BTreeMap<String, ClaimPattern>,
}

/// A trusted issuer as configured (`[[federation.issuers]]`); the key source is the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// Shown in events.
    pub name: String,
    /// Must equal the token's `iss` exactly.
    pub issuer: String,
    /// The token's `aud` must contain it.
    pub audience: String,
    /// Longest session an exchange gives, in seconds.
    pub max_session_secs: i64,
    /// Bindings to different identities are mutually exclusive (checked by
    /// [`validate_trust`]), so at most one identity can match a token.
    pub bindings: Vec<Binding>,
}

/// What is wrong with a configured trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("federation issuer {trust:?}: {message}")]
pub struct TrustError {
    pub trust: String,
    pub message: String,
}

/// Refuse a trust that would accept more than meant. `identity` looks an id up in the
/// inventory.
pub fn validate_trust<'a>(
    trust: &Trust,
    identity: impl Fn(&str) -> Option<&'a Identity>,
) -> Result<(), TrustError> {
    let err = |message: String| TrustError {
        trust: trust.name.clone(),
        message,
    };
    let name_ok = !trust.name.is_empty()
        && trust.name.len() <= 64
        && trust
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !name_ok {
        return Err(err("name: use 1-64 letters, digits, '-', '_' or '.'".into()));
    }
    if trust.issuer.trim().is_empty() || trust.issuer.trim() != trust.issuer {
        return Err(err(
            "issuer is empty or has surrounding spaces; write it exactly as the tokens' `iss`"
                .into(),
        ));
    }
    if trust.audience.trim().is_empty() {
        return Err(err(
            "audience is empty; set the audience the platform puts in tokens meant for jitgate \
             (e.g. this server's URL) so that tokens minted for other services are refused"
                .into(),
        ));
    }
    if !(MIN_MAX_SESSION_SECS..=MAX_MAX_SESSION_SECS).contains(&trust.max_session_secs) {
        return Err(err(format!(
            "max_session is outside 1m..12h ({} s); federated sessions are meant to be short",
            trust.max_session_secs
        )));
    }
    if trust.bindings.is_empty() {
        return Err(err(
            "no [[federation.issuers.bind]]: add at least one binding of claims to a workload identity"
                .into(),
        ));
    }
    for (i, b) in trust.bindings.iter().enumerate() {
        let at = format!("bind #{} ({})", i + 1, b.identity);
        if b.claims.is_empty() {
            return Err(err(format!(
                "{at} binds no claim: it would accept every token of the issuer; bind at least \
                 `sub` (or the platform's repository / namespace claims)"
            )));
        }
        if let Some(name) = b.claims.keys().find(|k| k.is_empty()) {
            return Err(err(format!("{at}: empty claim name {name:?}")));
        }
        match identity(&b.identity) {
            None => {
                return Err(err(format!(
                    "{at}: identity {:?} is not in the inventory; add it as kind = \"workload\"",
                    b.identity
                )))
            }
            Some(found) if found.kind != IdentityKind::Workload => {
                return Err(err(format!(
                    "{at}: identity {:?} is a {}, not a workload; only workloads federate",
                    b.identity,
                    kind_name(found.kind)
                )))
            }
            Some(_) => {}
        }
    }
    // A token that two bindings to different identities both accept would be mapped by
    // the order of the configuration, and a binding added later could silently take over
    // tokens meant for another workload: such pairs are refused, naming both.
    for (i, a) in trust.bindings.iter().enumerate() {
        for (j, b) in trust.bindings.iter().enumerate().skip(i + 1) {
            if a.identity != b.identity && a.overlaps(b) {
                return Err(err(format!(
                    "bind #{} ({}) and bind #{} ({}) can both match one token; make them \
                     exclusive, e.g. bind a claim in both with values that differ",
                    i + 1,
                    a.identity,
                    j + 1,
                    b.identity
                )));
            }
        }
    }
    Ok(())
}

fn kind_name(kind: IdentityKind) -> &'static str {
    match kind {
        IdentityKind::Human => "human",
        IdentityKind::Vendor => "vendor",
        IdentityKind::Workload => "workload",
    }
}

/// Why a federated token was refused (the `reason` of `auth.federation_refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Not a JWT, too long, undecodable, or a required claim missing or mistyped.
    Malformed,
    /// No trust has this `iss`.
    UnknownIssuer,
    /// Signature wrong, by a key the issuer does not publish, or `alg` none or HMAC.
    BadSignature,
    WrongAudience,
    Expired,
    NotYetValid,
    /// `exp` is more than a day after `iat` (or after now).
    LifetimeTooLong,
    /// No binding's claims all match.
    ClaimsNotBound,
    /// This token was exchanged already.
    TokenReplayed,
    /// The issuer's keys could not be fetched: nothing is accepted (fail closed).
    JwksUnavailable,
    /// The mapped identity is disabled, or no longer a workload in the inventory.
    IdentityDisabled,
}

impl RefusalReason {
    /// The API error code of this refusal (one table: `crate::codes`).
    pub fn code(self) -> Code {
        match self {
            RefusalReason::Malformed => Code::TokenMalformed,
            RefusalReason::UnknownIssuer => Code::UnknownIssuer,
            RefusalReason::BadSignature => Code::TokenBadSignature,
            RefusalReason::WrongAudience => Code::WrongAudience,
            RefusalReason::Expired => Code::TokenExpired,
            RefusalReason::NotYetValid => Code::TokenNotYetValid,
            RefusalReason::LifetimeTooLong => Code::TokenLifetimeTooLong,
            RefusalReason::ClaimsNotBound => Code::ClaimsNotBound,
            RefusalReason::TokenReplayed => Code::TokenReplayed,
            RefusalReason::JwksUnavailable => Code::FederationUnavailable,
            RefusalReason::IdentityDisabled => Code::IdentityDisabled,
        }
    }

    /// Counted against the caller's address (backoff, lockout): everything the caller sent
    /// wrong; not our own failure to reach the issuer.
    pub fn counts_against_source(self) -> bool {
        self != RefusalReason::JwksUnavailable
    }
}

/// A refusal with a message that says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub reason: RefusalReason,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

/// The claims of a token, as read from its payload (verified or not: the server reads the
/// `iss` before it knows which keys to verify with, and calls [`check`] only after).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenClaims {
    pub iss: String,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: i64,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    /// Every claim, for the bindings.
    pub all: serde_json::Map<String, Value>,
}

impl TokenClaims {
    /// Read the claims; `iss` and `exp` are required, the time claims must be numbers and
    /// `aud` a string or an array of strings.
    pub fn from_json(value: Value) -> Result<TokenClaims, Refusal> {
        let malformed = |m: &str| Refusal::new(RefusalReason::Malformed, m.to_string());
        let Value::Object(all) = value else {
            return Err(malformed("the token's payload is not a JSON object"));
        };
        let string = |name: &str| -> Result<Option<String>, Refusal> {
            match all.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(malformed(&format!("claim `{name}` is not a string"))),
            }
        };
        let time = |name: &str| -> Result<Option<i64>, Refusal> {
            match all.get(name) {
                None => Ok(None),
                // NumericDate may have a fraction; whole seconds are enough here.
                Some(Value::Number(n)) => n
                    .as_i64()
                    .or_else(|| n.as_f64().map(|f| f.floor() as i64))
                    .map(Some)
                    .ok_or_else(|| malformed(&format!("claim `{name}` is not a time"))),
                Some(_) => Err(malformed(&format!(
                    "claim `{name}` is not a number of seconds since 1970"
                ))),
            }
        };
        let iss =
            string("iss")?.ok_or_else(|| malformed("the token has no `iss` claim (its issuer)"))?;
        let exp = time("exp")?.ok_or_else(|| {
            malformed("the token has no `exp` claim; tokens without expiry are refused")
        })?;
        let aud = match all.get("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed("claim `aud` holds something other than strings"))?,
            Some(_) => {
                return Err(malformed(
                    "claim `aud` is not a string or a list of strings",
                ))
            }
        };
        Ok(TokenClaims {
            sub: string("sub")?,
            jti: string("jti")?,
            nbf: time("nbf")?,
            iat: time("iat")?,
            iss,
            aud,
            exp,
            all,
        })
    }

    /// A claim's string value: a top-level name, or a JSON pointer (`/a/b`) into nested
    /// claims. `None` when absent or not a string.
    pub fn string_claim(&self, name: &str) -> Option<&str> {
        if let Some(path) = name.strip_prefix('/') {
            let (first, tail) = match path.split_once('/') {
                Some((first, tail)) => (first, Some(tail)),
                None => (path, None),
            };
            let top = self.all.get(&unescape_pointer(first))?;
            match tail {
                None => top.as_str(),
                Some(tail) => top.pointer(&format!("/{tail}"))?.as_str(),
            }
        } else {
            self.all.get(name)?.as_str()
        }
    }
}

fn unescape_pointer(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// What an accepted token maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Index of the binding that matched (0-based).
    pub binding: usize,
    pub identity: String,
    /// The bound claims and the values they had.
    pub matched: BTreeMap<String, String>,
    pub session_expires_at: Timestamp,
    /// The token is remembered under this key until `replay_until`; a second exchange of it
    /// is refused.
    pub replay_key: String,
    pub replay_until: Timestamp,
}

/// Everything about a token whose signature the server verified against `trust`'s keys.
/// `raw` is the token as sent (its hash is the replay key when it has no `jti`).
pub fn check(
    trust: &Trust,
    claims: &TokenClaims,
    raw: &str,
    now: Timestamp,
) -> Result<Accepted, Refusal> {
    if claims.iss != trust.issuer {
        return Err(Refusal::new(
            RefusalReason::UnknownIssuer,
            format!(
                "the token's issuer {:?} is not {:?}",
                capped(&claims.iss),
                trust.issuer
            ),
        ));
    }
    if !claims.aud.iter().any(|a| a == &trust.audience) {
        return Err(Refusal::new(
            RefusalReason::WrongAudience,
            format!(
                "the token is not meant for jitgate: its audience must contain {:?}; ask the \
                 platform for a token with that audience",
                trust.audience
            ),
        ));
    }
    check_times(claims, now.timestamp())?;
    let (binding, matched) = bind(trust, claims)?;
    let max = now + chrono::Duration::seconds(trust.max_session_secs);
    let token_end = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(max);
    Ok(Accepted {
        binding,
        identity: trust
            .bindings
            .get(binding)
            .map(|b| b.identity.clone())
            .unwrap_or_default(),
        matched,
        session_expires_at: session_expiry(now, token_end, trust.max_session_secs),
        replay_key: replay_key(claims, raw),
        replay_until: token_end + chrono::Duration::seconds(LEEWAY_SECS),
    })
}

/// `exp` (with leeway), `nbf` and `iat` not in the future (with leeway), and a lifetime of at
/// most [`MAX_TOKEN_LIFETIME_SECS`].
pub fn check_times(claims: &TokenClaims, now: i64) -> Result<(), Refusal> {
    if claims.exp + LEEWAY_SECS <= now {
        return Err(Refusal::new(
            RefusalReason::Expired,
            format!(
                "the token expired {} s ago; ask the platform for a fresh one",
                now - claims.exp
            ),
        ));
    }
    for (name, t) in [("nbf", claims.nbf), ("iat", claims.iat)] {
        if let Some(t) = t {
            if t - LEEWAY_SECS > now {
                return Err(Refusal::new(
                    RefusalReason::NotYetValid,
                    format!(
                        "the token's `{name}` is {} s in the future; check the clocks of the \
                         issuer and of this server",
                        t - now
                    ),
                ));
            }
        }
    }
    // From when the token was issued; without `iat`, from now.
    let from = claims.iat.unwrap_or(now);
    if claims.exp - from > MAX_TOKEN_LIFETIME_SECS {
        return Err(Refusal::new(
            RefusalReason::LifetimeTooLong,
            format!(
                "the token lives {} s, more than {MAX_TOKEN_LIFETIME_SECS} s; federation takes \
                 short-lived platform tokens only",
                claims.exp - from
            ),
        ));
    }
    Ok(())
}

/// The binding whose claims all match (at most one to each identity: they are exclusive), and the values it matched with.
pub fn bind(
    trust: &Trust,
    claims: &TokenClaims,
) -> Result<(usize, BTreeMap<String, String>), Refusal> {
    for (i, b) in trust.bindings.iter().enumerate() {
        let mut matched = BTreeMap::new();
        let all = b
            .claims
            .iter()
            .all(|(name, pattern)| match claims.string_claim(name) {
                Some(v) if pattern.matches(v) => {
                    matched.insert(name.clone(), v.to_string());
                    true
                }
                _ => false,
            });
        if all {
            return Ok((i, matched));
        }
    }
    Err(Refusal::new(
        RefusalReason::ClaimsNotBound,
        format!(
            "no binding of issuer {:?} matches this token's claims (sub {:?}); an administrator \
             binds them to a workload in [[federation.issuers.bind]]",
            trust.name,
            claims.sub.as_deref().map(capped).unwrap_or_default()
        ),
    ))
}

/// The session ends at the token's expiry or after the trust's `max_session`, whichever is
/// first.
pub fn session_expiry(now: Timestamp, token_exp: Timestamp, max_session_secs: i64) -> Timestamp {
    token_exp.min(now + chrono::Duration::seconds(max_session_secs))
}

/// The key a token is remembered under: its issuer and `jti`, or the token's own hash when it
/// has no `jti` (then the same bytes are refused a second time).
pub fn replay_key(claims: &TokenClaims, raw: &str) -> String {
    let mut h = Sha256::new();
    match &claims.jti {
        Some(jti) => {
            h.update(b"jti\0");
            h.update(claims.iss.as_bytes());
            h.update(b"\0");
            h.update(jti.as_bytes());
        }
        None => {
            h.update(b"token\0");
            h.update(raw.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// A value from a token for the log: control characters dropped, at most 256 characters.
pub fn capped(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(LOGGED_CAP)
        .collect()
}

/// `auth.federated`: a workload exchanged a platform token for a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Federated {
    pub identity: String,
    /// The trust's name.
    pub issuer_name: String,
    pub iss: String,
    pub sub: Option<String>,
    pub jti: Option<String>,
    /// 1-based number of the binding that matched.
    pub binding: usize,
    /// The bound claims and their values.
    pub matched_claims: BTreeMap<String, String>,
    #[serde(with = "millis")]
    pub session_expires_at: Timestamp,
    pub method: AuthMethod,
    pub source: String,
}
impl Payload for Federated {
    const KIND: EventKind = EventKind::AuthFederated;
}

/// `auth.federation_refused`: a token refused after it was looked at (refusals made without
/// looking, in backoff or lockout of the source, are not logged one by one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederationRefused {
    pub reason: RefusalReason,
    /// The trust's name, once the issuer was known.
    pub issuer_name: Option<String>,
    /// Claims as the token carried them (cut, and unverified unless the signature was good).
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub jti: Option<String>,
    pub source: String,
    pub message: String,
}
impl Payload for FederationRefused {
    const KIND: EventKind = EventKind::AuthFederationRefused;
}

#[cfg(test)]
#[path = "federation_tests.rs"]
mod tests;
