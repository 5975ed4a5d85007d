//! Passkeys (WebAuthn) for step-up: when an approver's passkey counts as the step-up of one
//! approval, when a registration is accepted, and when a passkey may be removed.
//!
//! The cryptography (client data, origin, relying-party id hash, signature, user
//! verification) is checked by the server with a WebAuthn library; what it found is handed
//! here as an [`AssertionCheck`]. The rules here are the product's:
//!
//! - A step-up challenge is a random nonce stored server-side and **bound** to (approver,
//!   request id, scope digest, expiry), usable once. An assertion counts only for the
//!   approval of that request, by that approver, while the request still has that scope
//!   digest, before the expiry, the first time it is presented.
//! - The credential must be enrolled, not removed, and belong to the approver.
//! - The signature counter must move forward against the value stored *now* (not the value
//!   the ceremony started with: two ceremonies started together must not both pass with the
//!   older counter), unless the authenticator keeps no counter (both zero).
//!
//! Each refusal is a [`PasskeyRefusal`] with its own code in the one table
//! ([`crate::codes`]) and is recorded as an `auth.passkey_refused` event.

use crate::codes::Code;
use crate::event::{millis, EventKind};
use crate::payload::Payload;
use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// How long a ceremony's challenge may be answered, by default.
pub const DEFAULT_CHALLENGE_TTL_SECS: i64 = 120;
/// A removal without a TOTP code needs a sign-in at most this old.
pub const FRESH_SIGN_IN_SECS: i64 = 300;
/// Passkey names are at most this many characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Passkeys per identity.
pub const MAX_PER_IDENTITY: usize = 10;
/// Ceremonies one identity may have open (issued, unanswered, unexpired) at once.
pub const MAX_OPEN_CHALLENGES: u64 = 20;

/// What a challenge was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum ChallengePurpose {
    /// Enrolling a new passkey with this name.
    Registration { name: String },
    /// The step-up of an approval of `request_id` while its scope digest is `scope_digest`.
    StepUp {
        request_id: String,
        scope_digest: String,
    },
}

/// A stored challenge, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub id: String,
    /// The identity the challenge was issued to.
    pub identity: String,
    pub purpose: ChallengePurpose,
    pub expires_at: Timestamp,
    /// When it was presented before this time, if it was.
    pub used_before: Option<Timestamp>,
}

/// An enrolled (or removed) passkey, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledPasskey {
    /// base64url of the WebAuthn credential id.
    pub credential_id: String,
    pub identity: String,
    /// The signature counter stored now.
    pub counter: u32,
    pub removed_at: Option<Timestamp>,
}

/// What the WebAuthn library found when it checked an assertion against the challenge's
/// ceremony state (client data, origin, rp id hash, signature, user verification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionCheck {
    Verified {
        credential_id: String,
        counter: u32,
        user_verified: bool,
    },
    /// The origin or relying-party id is not this server's.
    WrongOrigin(String),
    /// The library saw a counter that did not move forward.
    CounterRegression,
    /// The authenticator did not verify the user.
    UserNotVerified,
    /// Anything else: bad signature, another challenge, malformed.
    Invalid(String),
}

/// Why a passkey was refused. Each has its own API code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasskeyRefusal {
    /// No such challenge (or it was removed after its expiry).
    ChallengeUnknown,
    /// The challenge was issued to another identity.
    ChallengeOfAnother,
    ChallengeUsed,
    ChallengeExpired,
    /// The challenge was issued for another request (or for a registration).
    WrongRequest,
    /// The request's scope digest is not the one the challenge was bound to.
    ScopeChanged,
    UnknownCredential,
    CredentialRemoved,
    CredentialOfAnother,
    CounterRegression,
    WrongOrigin,
    /// The authenticator did not verify the user (PIN, biometrics).
    UserNotVerified,
    AssertionInvalid,
    /// The credential is enrolled already (by this identity or another).
    AlreadyEnrolled,
    RegistrationInvalid,
}

impl PasskeyRefusal {
    pub fn code(&self) -> Code {
        match self {
            PasskeyRefusal::ChallengeUnknown => Code::PasskeyChallengeUnknown,
            PasskeyRefusal::ChallengeOfAnother => Code::PasskeyChallengeOfAnother,
            PasskeyRefusal::ChallengeUsed => Code::PasskeyChallengeUsed,
            PasskeyRefusal::ChallengeExpired => Code::PasskeyChallengeExpired,
            PasskeyRefusal::WrongRequest => Code::PasskeyWrongRequest,
            PasskeyRefusal::ScopeChanged => Code::PasskeyScopeChanged,
            PasskeyRefusal::UnknownCredential => Code::PasskeyUnknownCredential,
            PasskeyRefusal::CredentialRemoved => Code::PasskeyRemoved,
            PasskeyRefusal::CredentialOfAnother => Code::PasskeyOfAnotherIdentity,
            PasskeyRefusal::CounterRegression => Code::PasskeyCounterRegression,
            PasskeyRefusal::WrongOrigin => Code::PasskeyWrongOrigin,
            PasskeyRefusal::UserNotVerified => Code::PasskeyUserNotVerified,
            PasskeyRefusal::AssertionInvalid => Code::PasskeyAssertionInvalid,
            PasskeyRefusal::AlreadyEnrolled => Code::PasskeyAlreadyEnrolled,
            PasskeyRefusal::RegistrationInvalid => Code::PasskeyRegistrationInvalid,
        }
    }

    /// What happened and what to do.
    pub fn message(&self) -> &'static str {
        match self {
            PasskeyRefusal::ChallengeUnknown => "no such passkey challenge: start the passkey step again",
            PasskeyRefusal::ChallengeOfAnother => "this passkey challenge was issued to someone else: start your own passkey step",
            PasskeyRefusal::ChallengeUsed => "this passkey challenge was used already; each is taken once: start the passkey step again",
            PasskeyRefusal::ChallengeExpired => "this passkey challenge expired: start the passkey step again and answer it within its time",
            PasskeyRefusal::WrongRequest => "this passkey assertion was made for another request (or for an enrolment): start the passkey step on the request you approve",
            PasskeyRefusal::ScopeChanged => "the request's scope changed since the passkey challenge was issued: reload the request, review its scope and start the passkey step again",
            PasskeyRefusal::UnknownCredential => "this passkey is not enrolled in jitgate: enrol it first (console, Passkeys) or use your TOTP code",
            PasskeyRefusal::CredentialRemoved => "this passkey was removed: use another enrolled passkey or your TOTP code",
            PasskeyRefusal::CredentialOfAnother => "this passkey is enrolled by another identity: use one of your own passkeys or your TOTP code",
            PasskeyRefusal::CounterRegression => "the passkey's signature counter went backwards, which suggests a cloned authenticator: it was refused; tell your security team, and remove the passkey if it is not in your hands",
            PasskeyRefusal::WrongOrigin => "the passkey answered for another site (origin or relying-party id): open the console at the address [passkeys] origin names",
            PasskeyRefusal::UserNotVerified => "the authenticator did not verify you (PIN or biometrics): use an authenticator that does",
            PasskeyRefusal::AssertionInvalid => "the passkey assertion does not verify against its challenge and enrolled key: start the passkey step again",
            PasskeyRefusal::AlreadyEnrolled => "this passkey is enrolled already",
            PasskeyRefusal::RegistrationInvalid => "the passkey registration does not verify against its challenge: start the enrolment again",
        }
    }
}

/// The step-up an approval was made with, recorded on `approval.recorded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum StepUpMethod {
    /// A fresh TOTP code.
    Totp,
    /// A passkey assertion bound to this request and scope digest.
    Passkey { credential_id: String },
}

/// Which ceremony a refusal happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasskeyStage {
    Registration,
    StepUp,
}

/// `auth.passkey_refused`: a passkey registration or step-up refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyRefused {
    pub identity: String,
    pub stage: PasskeyStage,
    pub reason: PasskeyRefusal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
}
impl Payload for PasskeyRefused {
    const KIND: EventKind = EventKind::AuthPasskeyRefused;
}

/// `auth.passkey_removed`: a passkey removed by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyRemoved {
    pub identity: String,
    pub credential_id: String,
    pub name: String,
    /// How the removal was confirmed.
    pub confirmed_by: FreshAuth,
    #[serde(with = "millis")]
    pub enrolled_at: Timestamp,
}
impl Payload for PasskeyRemoved {
    const KIND: EventKind = EventKind::AuthPasskeyRemoved;
}

/// `auth.passkey_enrolled`: a passkey enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyEnrolled {
    pub identity: String,
    pub credential_id: String,
    pub name: String,
    /// The authenticator verified the user at registration.
    pub user_verified: bool,
}
impl Payload for PasskeyEnrolled {
    const KIND: EventKind = EventKind::AuthPasskeyEnrolled;
}

/// How a sensitive change (removing a passkey) was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreshAuth {
    /// The session was opened less than [`FRESH_SIGN_IN_SECS`] ago.
    RecentSignIn,
    /// A TOTP code was given with the change.
    Totp,
}

fn challenge_usable(
    challenge: &Challenge,
    identity: &str,
    now: Timestamp,
) -> Result<(), PasskeyRefusal> {
    if challenge.identity != identity {
        return Err(PasskeyRefusal::ChallengeOfAnother);
    }
    if challenge.used_before.is_some() {
        return Err(PasskeyRefusal::ChallengeUsed);
    }
    if now >= challenge.expires_at {
        return Err(PasskeyRefusal::ChallengeExpired);
    }
    Ok(())
}

/// A step-up assertion presented with an approval, with what the server loaded for it.
#[derive(Debug, Clone)]
pub struct StepUpAttempt<'a> {
    /// The caller approving.
    pub approver: &'a str,
    /// The request being approved, and its scope digest now.
    pub request_id: &'a str,
    pub scope_digest: &'a str,
    /// The credential id the client named.
    pub presented: &'a str,
    /// The enrolment of that credential id, if there is one.
    pub credential: Option<&'a EnrolledPasskey>,
    /// What the WebAuthn library found.
    pub check: &'a AssertionCheck,
}

/// Is this assertion a valid step-up for the attempt's approval?
///
/// The order of the checks is the order of the refusals' precedence: the binding first (an
/// assertion for another request is refused as such whatever else is wrong with it), then
/// the credential, then the library's verdict, then the counter against the stored one.
pub fn check_step_up(
    challenge: &Challenge,
    attempt: &StepUpAttempt<'_>,
    now: Timestamp,
) -> Result<StepUpMethod, PasskeyRefusal> {
    let StepUpAttempt {
        approver,
        request_id,
        scope_digest,
        presented,
        credential,
        check,
    } = *attempt;
    challenge_usable(challenge, approver, now)?;
    let ChallengePurpose::StepUp {
        request_id: bound_request,
        scope_digest: bound_digest,
    } = &challenge.purpose
    else {
        return Err(PasskeyRefusal::WrongRequest);
    };
    if bound_request != request_id {
        return Err(PasskeyRefusal::WrongRequest);
    }
    if bound_digest != scope_digest {
        return Err(PasskeyRefusal::ScopeChanged);
    }
    if presented.is_empty() {
        // The client's answer did not even name a credential: not a WebAuthn assertion.
        return Err(PasskeyRefusal::AssertionInvalid);
    }
    let Some(cred) = credential else {
        return Err(PasskeyRefusal::UnknownCredential);
    };
    if cred.credential_id != presented {
        return Err(PasskeyRefusal::UnknownCredential);
    }
    if cred.identity != approver {
        return Err(PasskeyRefusal::CredentialOfAnother);
    }
    if cred.removed_at.is_some() {
        return Err(PasskeyRefusal::CredentialRemoved);
    }
    let (credential_id, counter, user_verified) = match check {
        AssertionCheck::Verified {
            credential_id,
            counter,
            user_verified,
        } => (credential_id, *counter, *user_verified),
        AssertionCheck::WrongOrigin(_) => return Err(PasskeyRefusal::WrongOrigin),
        AssertionCheck::CounterRegression => return Err(PasskeyRefusal::CounterRegression),
        AssertionCheck::UserNotVerified => return Err(PasskeyRefusal::UserNotVerified),
        AssertionCheck::Invalid(_) => return Err(PasskeyRefusal::AssertionInvalid),
    };
    if credential_id != presented {
        return Err(PasskeyRefusal::AssertionInvalid);
    }
    if !user_verified {
        return Err(PasskeyRefusal::UserNotVerified);
    }
    if (counter > 0 || cred.counter > 0) && counter <= cred.counter {
        return Err(PasskeyRefusal::CounterRegression);
    }
    Ok(StepUpMethod::Passkey {
        credential_id: credential_id.clone(),
    })
}

/// What the library found when it checked a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationCheck {
    Verified {
        credential_id: String,
        user_verified: bool,
    },
    WrongOrigin(String),
    /// The authenticator did not verify the user.
    UserNotVerified,
    Invalid(String),
}

/// Is this registration acceptable for `identity`? `existing` is the enrolment of the same
/// credential id, if there is one (by anyone, removed or not: a credential id is enrolled
/// once). Returns the name to enrol it under.
pub fn check_registration(
    challenge: &Challenge,
    identity: &str,
    check: &RegistrationCheck,
    existing: Option<&EnrolledPasskey>,
    now: Timestamp,
) -> Result<String, PasskeyRefusal> {
    challenge_usable(challenge, identity, now)?;
    let ChallengePurpose::Registration { name } = &challenge.purpose else {
        return Err(PasskeyRefusal::RegistrationInvalid);
    };
    match check {
        RegistrationCheck::Verified { user_verified, .. } => {
            if !user_verified {
                return Err(PasskeyRefusal::UserNotVerified);
            }
        }
        RegistrationCheck::WrongOrigin(_) => return Err(PasskeyRefusal::WrongOrigin),
        RegistrationCheck::UserNotVerified => return Err(PasskeyRefusal::UserNotVerified),
        RegistrationCheck::Invalid(_) => return Err(PasskeyRefusal::RegistrationInvalid),
    }
    if existing.is_some() {
        return Err(PasskeyRefusal::AlreadyEnrolled);
    }
    Ok(name.clone())
}

/// Check a passkey's name: 1 to [`MAX_NAME_CHARS`] characters of visible text.
pub fn check_name(name: &str) -> Result<String, crate::CoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(crate::CoreError::InvalidRequest(format!(
            "a passkey needs a name of 1 to {MAX_NAME_CHARS} characters (e.g. \"laptop\", \"security key\")"
        )));
    }
    crate::governance::check_free_text("name", name, false)?;
    Ok(name.to_string())
}

/// May `identity` (a person, not a workload) enrol another passkey, having `enrolled` now?
pub fn may_enrol(kind: crate::IdentityKind, enrolled: usize) -> Result<(), crate::CoreError> {
    if kind == crate::IdentityKind::Workload {
        return Err(crate::CoreError::Forbidden(
            "workloads do not approve and enrol no passkeys; passkeys are for people".into(),
        ));
    }
    if enrolled >= MAX_PER_IDENTITY {
        return Err(crate::CoreError::InvalidRequest(format!(
            "{enrolled} passkeys are enrolled already (at most {MAX_PER_IDENTITY}); remove one first"
        )));
    }
    Ok(())
}

/// May a passkey be removed now? Either the session is fresh (signed in less than
/// [`FRESH_SIGN_IN_SECS`] ago) or a TOTP code was verified with the removal.
pub fn may_remove(
    signed_in_at: Option<Timestamp>,
    totp_verified: bool,
    now: Timestamp,
) -> Result<FreshAuth, crate::CoreError> {
    if totp_verified {
        return Ok(FreshAuth::Totp);
    }
    match signed_in_at {
        Some(t) if now - t <= chrono::Duration::seconds(FRESH_SIGN_IN_SECS) && t <= now => {
            Ok(FreshAuth::RecentSignIn)
        }
        _ => Err(crate::CoreError::FreshAuthRequired),
    }
}

#[cfg(test)]
#[path = "passkey_tests.rs"]
mod tests;
