//! Typed payloads of the lifecycle's evidence events: what each transition writes into
//! [`Event::data`], as a struct with the event kind it belongs to ([`Payload::KIND`]).
//! Writers use [`Event::with_payload`]; readers (the bundle verifier, the audit report and
//! timeline, the SIEM encoder) use [`Event::payload`] instead of reading JSON by string key,
//! so a renamed field is a compile error, not a silently empty report.
//!
//! The JSON of each payload is exactly what earlier versions wrote with `json!` (same keys,
//! times as RFC 3339 with milliseconds), so logs written before keep verifying and reading.

use crate::decision::Obligations;
use crate::event::{millis, Event, EventKind};
use crate::governance::Hold;
use crate::lifecycle::{AccessPath, ApprovalVerdict, EndReason};
use crate::teardown::TeardownVerdict;
use crate::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A typed event payload and the kind of event that carries it.
pub trait Payload: Serialize + DeserializeOwned {
    const KIND: EventKind;
}

impl Event {
    /// An event of the payload's kind carrying it.
    pub fn with_payload<P: Payload>(
        actor: crate::event::Actor,
        at: Timestamp,
        payload: &P,
    ) -> Result<Event, crate::CoreError> {
        let data = serde_json::to_value(payload).map_err(|e| {
            crate::CoreError::InvalidRequest(format!("event payload {}: {e}", P::KIND.as_str()))
        })?;
        Ok(Event::new(P::KIND, actor, at).data(data))
    }

    /// This event's payload as `P`, if the event is of `P`'s kind and its data has `P`'s
    /// shape. Extra keys (added by later versions) are ignored.
    pub fn payload<P: Payload>(&self) -> Option<P> {
        if self.kind != P::KIND {
            return None;
        }
        self.payload_as()
    }

    /// This event's data read as `P` whatever the event's kind (for payloads more than one
    /// kind carries, e.g. [`RequestVoided`] in a `request.decided` denial).
    pub fn payload_as<P: DeserializeOwned>(&self) -> Option<P> {
        serde_json::from_value(self.data.clone()).ok()
    }
}

/// `auth.login`: a sign-in that succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginSucceeded {
    pub identity: String,
    /// The client's address as the server saw it (`unknown` when not known).
    pub source: String,
    /// A TOTP code was checked too.
    pub totp: bool,
}
impl Payload for LoginSucceeded {
    const KIND: EventKind = EventKind::AuthLogin;
}

/// How a caller authenticated: on the session record, `whoami`, and federation events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A person's password (and TOTP when enrolled), for a `jgs_` session.
    Password,
    /// A workload's `jgk_` API key, on every call.
    ApiKey,
    /// A platform JWT exchanged for a `jgs_` session (`crate::federation`).
    FederatedJwt,
    /// A person's sign-in through an OpenID provider (`crate::sso`).
    Oidc,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::FederatedJwt => "federated_jwt",
            AuthMethod::Oidc => "oidc",
        }
    }

    pub fn parse(text: &str) -> Option<AuthMethod> {
        [
            AuthMethod::Password,
            AuthMethod::ApiKey,
            AuthMethod::FederatedJwt,
            AuthMethod::Oidc,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
    }
}

/// What was being checked when an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStage {
    /// `POST /auth/login` (API or console).
    Login,
    /// A step-up TOTP code (an approval).
    StepUp,
    /// Confirming a TOTP enrolment.
    TotpConfirm,
    /// Changing one's own password (the current password or code was wrong).
    PasswordChange,
}

/// Why an attempt failed, for the log only: the client is told `unauthenticated` whatever
/// the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthFailure {
    UnknownIdentity,
    WrongPassword,
    WrongTotp,
    IdentityDisabled,
    /// A workload (API keys only) tried a password.
    NoPassword,
    /// The right password of an identity that signs in through SSO only (`crate::sso`).
    SsoOnly,
}

/// `auth.login_failed`: one refused attempt that was checked (attempts refused by backoff or
/// lockout are not checked and not logged one by one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginFailed {
    /// The identity as the client named it (at most 128 characters).
    pub identity: String,
    pub source: String,
    pub stage: AuthStage,
    pub failure: AuthFailure,
    /// Failures of this identity counted so far (since the last success, unlock or forget).
    pub failures: u32,
}
impl Payload for LoginFailed {
    const KIND: EventKind = EventKind::AuthLoginFailed;
}

/// Which key a lockout is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKey {
    Identity,
    Source,
}

/// `auth.locked`: an identity (as named by clients) or a source address locked out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedOut {
    pub key: LockKey,
    /// The identity or the address.
    pub value: String,
    pub failures: u32,
    #[serde(with = "millis")]
    pub until: Timestamp,
}
impl Payload for LockedOut {
    const KIND: EventKind = EventKind::AuthLocked;
}

/// `auth.unlocked`: an administrator ended an identity's (or an address's) lockout and
/// forgot its failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unlocked {
    pub key: LockKey,
    pub value: String,
    /// It was locked out at the time (an unlock of a key with failures only forgets them).
    pub was_locked: bool,
}
impl Payload for Unlocked {
    const KIND: EventKind = EventKind::AuthUnlocked;
}

/// `auth.password_changed` (by the person, with the current password) and
/// `auth.password_reset` (by an administrator, [`PasswordReset`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub identity: String,
    /// Sessions ended by the change (every other session of the identity).
    pub sessions_ended: u64,
}
impl Payload for PasswordChanged {
    const KIND: EventKind = EventKind::AuthPasswordChanged;
}

/// `auth.password_reset`: an administrator set another identity's password; every session
/// of that identity ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordReset {
    pub identity: String,
    pub sessions_ended: u64,
}
impl Payload for PasswordReset {
    const KIND: EventKind = EventKind::AuthPasswordReset;
}

/// `request.submitted`: what was asked, as filed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSubmitted {
    pub requester: String,
    pub subject: String,
    pub scope_digest: String,
    /// The scope's canonical text (what the digest covers).
    pub scope: String,
    #[serde(with = "millis")]
    pub window_start: Timestamp,
    pub duration_secs: i64,
    pub reason: String,
    pub reference: String,
    pub path: AccessPath,
}
impl Payload for RequestSubmitted {
    const KIND: EventKind = EventKind::RequestSubmitted;
}

/// `request.decided`: the policy decision taken at filing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDecided {
    pub allowed: bool,
    pub determining_policies: Vec<String>,
    pub policy_set_hash: String,
    pub obligations: Obligations,
    #[serde(default)]
    pub reasons: Vec<String>,
}
impl Payload for RequestDecided {
    const KIND: EventKind = EventKind::RequestDecided;
}

/// `approval.recorded`: one approver's yes or no, bound to the scope digest they saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecorded {
    pub verdict: ApprovalVerdict,
    pub scope_digest: String,
    #[serde(default)]
    pub comment: String,
    pub step_up: bool,
    /// How the step-up was made (absent without step-up, and in events written before
    /// passkeys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up_method: Option<crate::passkey::StepUpMethod>,
    /// Distinct approvals that count after this one.
    pub approvals: u32,
    pub required: u32,
}
impl Payload for ApprovalRecorded {
    const KIND: EventKind = EventKind::ApprovalRecorded;
}

/// `approval.withdrawn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalWithdrawn {
    pub approval_id: String,
    #[serde(with = "millis")]
    pub approved_at: Timestamp,
    pub scope_digest: String,
    pub reason: String,
}
impl Payload for ApprovalWithdrawn {
    const KIND: EventKind = EventKind::ApprovalWithdrawn;
}

/// `grant.issued`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantIssued {
    pub subject: String,
    pub scope_digest: String,
    #[serde(with = "millis")]
    pub not_before: Timestamp,
    #[serde(with = "millis")]
    pub expires_at: Timestamp,
    pub emergency: bool,
    pub review_required: bool,
}
impl Payload for GrantIssued {
    const KIND: EventKind = EventKind::GrantIssued;
}

/// `grant.ended`: why, and when access ended (an expiry noticed late is dated at expiry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantEnded {
    pub end_reason: EndReason,
    #[serde(with = "millis")]
    pub ended_at: Timestamp,
    #[serde(with = "millis")]
    pub expires_at: Timestamp,
}
impl Payload for GrantEnded {
    const KIND: EventKind = EventKind::GrantEnded;
}

/// `request.lapsed` written when a request no longer stands (its `hold`); a lapse at the end
/// of the window carries no data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestVoided {
    pub hold: Hold,
    pub reason: String,
}
impl Payload for RequestVoided {
    const KIND: EventKind = EventKind::RequestLapsed;
}

/// `teardown.verdict`, final or not. The server adds the attempt's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeardownVerdictData {
    pub verdict: TeardownVerdict,
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Sequence numbers of the `session.ended` events of every session under the grant, all
    /// in the log before this verdict (absent in logs written before this was recorded).
    #[serde(default)]
    pub session_ended_events: Vec<i64>,
}
impl Payload for TeardownVerdictData {
    const KIND: EventKind = EventKind::TeardownVerdict;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Actor;
    use chrono::TimeZone;

    #[test]
    fn payloads_keep_the_json_earlier_versions_wrote() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
        let ended = GrantEnded {
            end_reason: EndReason::Revoked {
                by: "sam".into(),
                reason: "incident".into(),
            },
            ended_at: t,
            expires_at: t,
        };
        let e = Event::with_payload(Actor::system(), t, &ended).unwrap();
        assert_eq!(e.kind, EventKind::GrantEnded);
        assert_eq!(
            e.data,
            serde_json::json!({
                "end_reason": {"kind": "revoked", "by": "sam", "reason": "incident"},
                "ended_at": "2026-11-01T08:00:00.000Z",
                "expires_at": "2026-11-01T08:00:00.000Z",
            })
        );
        assert_eq!(e.payload::<GrantEnded>(), Some(ended));
        assert_eq!(e.payload::<GrantIssued>(), None, "another kind");
        // An old verdict event without session_ended_events still reads.
        let old = Event::new(EventKind::TeardownVerdict, Actor::scheduler(), t)
            .data(serde_json::json!({"verdict": "partial", "final": true, "attempt": 1}));
        let v = old.payload::<TeardownVerdictData>().unwrap();
        assert_eq!(v.verdict, TeardownVerdict::Partial);
        assert!(v.is_final && v.session_ended_events.is_empty());
    }
}

/// `exception.requested`: a standing exception filed with its terms, beside the request's
/// own `request.submitted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionRequested {
    pub exception_id: String,
    pub owner: String,
    pub controls: Vec<String>,
    pub revalidate_every_secs: i64,
    #[serde(with = "millis")]
    pub expires_at: Timestamp,
}
impl Payload for ExceptionRequested {
    const KIND: EventKind = EventKind::ExceptionRequested;
}

/// `exception.revalidated`: someone confirmed the exception is still needed; the next due
/// date moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionRevalidated {
    pub exception_id: String,
    pub note: String,
    #[serde(with = "millis")]
    pub previous_due: Timestamp,
    #[serde(with = "millis")]
    pub next_revalidation: Timestamp,
}
impl Payload for ExceptionRevalidated {
    const KIND: EventKind = EventKind::ExceptionRevalidated;
}

/// `exception.ended`: someone ended an exception at once (the grant's own `grant.ended`, or
/// the request's `request.withdrawn`, records the transition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionEnded {
    pub exception_id: String,
    pub reason: String,
}
impl Payload for ExceptionEnded {
    const KIND: EventKind = EventKind::ExceptionEnded;
}
