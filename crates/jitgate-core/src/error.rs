//! Every rule of the lifecycle a caller can break has its own variant, so the server can map
//! it to a stable error code and HTTP status and the user is told what to do next.

use crate::codes::Code;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    #[error("scope is invalid: {0}")]
    InvalidScope(String),
    #[error("asset {asset} does not expose {what}; check the asset's endpoints with `jitgate assets show {asset}`")]
    ScopeNotExposed { asset: String, what: String },
    #[error("inventory is invalid: {0}")]
    InvalidInventory(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("requested duration {requested_secs}s exceeds the policy maximum of {max_secs}s; ask for at most {max_secs}s")]
    DurationAboveMaximum { requested_secs: i64, max_secs: i64 },
    #[error("{what} is {state}; this action needs it to be {needed}")]
    WrongState {
        what: String,
        state: String,
        needed: String,
    },
    #[error("request {0} lapsed: its window closed before it could be used; file a new request")]
    Lapsed(String),
    #[error("separation of duties: {0}")]
    SeparationOfDuties(String),
    #[error("not an eligible approver: {0}")]
    NotEligible(String),
    #[error("{approver} has already recorded a decision on request {request}; each approver counts once")]
    AlreadyApproved { approver: String, request: String },
    #[error("approval is for scope digest {given} but the request's scope digest is {actual}; reload the request and approve what it asks for")]
    ScopeDigestMismatch { given: String, actual: String },
    #[error("this approval needs step-up: enter a current TOTP code (--totp), or use a passkey in the console")]
    StepUpRequired,
    #[error("the policy requires a passkey for this approval (@step_up(\"passkey\")); a TOTP code does not do: approve in the console with \"Use passkey\"")]
    PasskeyRequired,
    #[error("{}", .0.message())]
    Passkey(crate::passkey::PasskeyRefusal),
    #[error("removing a passkey needs a fresh sign-in (less than 5 minutes old) or a current TOTP code (`totp`): sign in again or send the code")]
    FreshAuthRequired,
    #[error("identity {0} is disabled")]
    IdentityDisabled(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{field} contains the control character {code_point}; free text may not carry terminal escapes, carriage returns or bidirectional overrides — remove it and send again")]
    ControlCharacter { field: String, code_point: String },
    #[error("request {request} no longer stands: {why}; it was {outcome} and recorded. File a new request if the work is still needed")]
    NoLongerAllowed {
        request: String,
        why: String,
        outcome: String,
    },
    #[error("{field} is {len} bytes; free text is limited to {max} bytes")]
    TextTooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("{0}")]
    TooManyScopeItems(String),
    #[error("{0}")]
    WeakPassword(String),
    #[error("{requester} already has {open} open requests (the limit is {max}); withdraw one or wait until one ends")]
    TooManyOpenRequests {
        requester: String,
        open: usize,
        max: usize,
    },
    #[error("this change would leave no active administrator (a human with the `admin` role); make another identity an administrator first")]
    LastAdministrator,
    #[error("grant {grant} names no {what} on asset {asset}; {hint}")]
    AssetNotGranted {
        grant: String,
        asset: String,
        what: String,
        hint: String,
    },
    #[error("this public key is already certified for another grant or identity; a key is certified for one grant only: make a fresh key pair (`jitgate ssh` makes one each time)")]
    PublicKeyReused,
    #[error("exception is invalid: {0}")]
    InvalidException(String),
    #[error("exception {exception} was due for re-validation at {due}; an overdue exception ends and cannot be re-validated: request a new one")]
    RevalidationOverdue { exception: String, due: String },
    #[error("grant {grant} has been attested already; an attestation is given once and never changed (add to it through the review)")]
    AlreadyAttested { grant: String },
    #[error("campaign item {item} was decided already ({decision}); decisions are evidence and are not changed")]
    AlreadyDecided { item: String, decision: String },
    #[error("campaign {campaign} still has {undecided} undecided item(s); decide every item (keep, narrow or end) before closing it")]
    CampaignIncomplete { campaign: String, undecided: usize },
    #[error("separation of duties: {who} {conflict} (request {request}); someone else must decide on it")]
    ConflictOfInterest {
        who: String,
        request: String,
        conflict: String,
    },
}

impl CoreError {
    /// The stable, documented error code of this error (the table: [`crate::codes`]).
    pub fn code(&self) -> Code {
        match self {
            CoreError::InvalidScope(_) => Code::InvalidScope,
            CoreError::ScopeNotExposed { .. } => Code::ScopeNotExposed,
            CoreError::InvalidInventory(_) => Code::InvalidInventory,
            CoreError::InvalidRequest(_) => Code::InvalidRequest,
            CoreError::DurationAboveMaximum { .. } => Code::DurationAboveMaximum,
            CoreError::WrongState { .. } => Code::WrongState,
            CoreError::Lapsed(_) => Code::RequestLapsed,
            CoreError::SeparationOfDuties(_) | CoreError::ConflictOfInterest { .. } => {
                Code::SeparationOfDuties
            }
            CoreError::NotEligible(_) => Code::NotEligibleApprover,
            CoreError::AlreadyApproved { .. } => Code::AlreadyApproved,
            CoreError::ScopeDigestMismatch { .. } => Code::ScopeDigestMismatch,
            CoreError::StepUpRequired => Code::StepUpRequired,
            CoreError::PasskeyRequired => Code::PasskeyRequired,
            CoreError::Passkey(r) => r.code(),
            CoreError::FreshAuthRequired => Code::FreshAuthRequired,
            CoreError::IdentityDisabled(_) => Code::IdentityDisabled,
            CoreError::Forbidden(_) => Code::Forbidden,
            CoreError::ControlCharacter { .. } => Code::ControlCharacter,
            CoreError::TextTooLong { .. } => Code::TextTooLong,
            CoreError::TooManyScopeItems(_) => Code::TooManyScopeItems,
            CoreError::WeakPassword(_) => Code::WeakPassword,
            CoreError::TooManyOpenRequests { .. } => Code::TooManyOpenRequests,
            CoreError::NoLongerAllowed { .. } => Code::NoLongerAllowed,
            CoreError::LastAdministrator => Code::LastAdministrator,
            CoreError::AssetNotGranted { .. } => Code::AssetNotGranted,
            CoreError::PublicKeyReused => Code::PublicKeyReused,
            CoreError::InvalidException(_) => Code::InvalidException,
            CoreError::RevalidationOverdue { .. } => Code::RevalidationOverdue,
            CoreError::AlreadyAttested { .. } => Code::AlreadyAttested,
            CoreError::AlreadyDecided { .. } => Code::AlreadyDecided,
            CoreError::CampaignIncomplete { .. } => Code::CampaignIncomplete,
        }
    }
}
