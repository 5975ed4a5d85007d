//! The server's error: errors of every crate, each mapped to its code in the one table
//! (`jitgate_core::codes`, documented in docs/api.md) and a message that says what to do.
//! No HTTP here: [`crate::api::response`] turns it into a status and a JSON body.

use jitgate_core::{Code, CoreError};
use jitgate_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what} {id} does not exist; {hint}")]
    NotFound {
        what: &'static str,
        id: String,
        hint: &'static str,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error(
        "send the TOTP code your authenticator shows (`--totp`); at sign-in an identity \
         without TOTP is never asked for one, so there this answer means the identity or \
         password is wrong"
    )]
    TotpRequired,
    #[error("{0}")]
    BadTotp(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("policy set not loaded: {0}")]
    Policy(String),
    /// The evidence log fails verification: nothing is signed or exported over it.
    #[error("{0}")]
    EvidenceBroken(String),
    /// A gateway sent something outside what a gateway may say (see `api::gateway`).
    #[error("{message}")]
    GatewayTrust {
        code: GatewayTrustCode,
        message: String,
    },
    /// A limit of the HTTP layer (method, body size, streams, connections): the code says
    /// which (`[limits]` in docs/configuration.md).
    #[error("{message}")]
    Limit { code: Code, message: String },
    /// Refused without checking: backoff or lockout after failed sign-ins or step-up codes
    /// (`jitgate_core::lockout`), or the password-hashing pool is full.
    #[error("{message}")]
    Throttled {
        code: Code,
        message: String,
        retry_after_secs: i64,
    },
    /// A gateway's client certificate (or its absence) refused
    /// (`jitgate_core::gateway_enrolment`).
    #[error(transparent)]
    ClientCert(#[from] jitgate_core::gateway_enrolment::CertRefusal),
    /// A recording chunk's bytes refused (`api::recordings`): the code says why.
    #[error("{message}")]
    Recording { code: Code, message: String },
    /// A client's SSH public key is unusable (`crate::ssh_ca::parse_public_key` says why).
    #[error("{0}")]
    InvalidSshPublicKey(String),
    /// A federated token refused (`jitgate_core::federation`): the reason says which code.
    #[error("{refusal}")]
    Federation {
        refusal: jitgate_core::federation::Refusal,
        /// For `federation_unavailable`: when the issuer's keys may be fetched again.
        retry_after_secs: Option<i64>,
    },
    /// An SSO sign-in refused (`jitgate_core::sso`): the reason says which code.
    #[error("{refusal}")]
    Sso {
        refusal: jitgate_core::sso::SsoRefusal,
        /// For `sso_unavailable`: when the provider may be tried again.
        retry_after_secs: Option<i64>,
    },
    /// A password sign-in of an identity that signs in through SSO only.
    #[error("{0}")]
    SsoOnly(String),
    /// A witness's request refused (`crate::evidence::witness`): the code says why.
    #[error("{message}")]
    Witness { code: Code, message: String },
    /// A passkey step-up was asked for by someone with no passkey enrolled.
    #[error("you have no passkey enrolled: enrol one in the console (Passkeys), or approve with your TOTP code")]
    PasskeyNotEnrolled,
    #[error("{0}")]
    Internal(String),
}

/// Why a gateway's events were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayTrustCode {
    /// The batch skips gateway sequence numbers.
    SequenceGap,
    /// An event is dated too far ahead of the server or before its grant existed.
    TimeOutOfBounds,
    /// An event names a grant on assets the gateway does not front.
    GrantNotFronted,
    /// A `recording.chunk` event does not continue its session's recording.
    RecordingChain,
}

impl ServerError {
    /// This error's code in the one table (`jitgate_core::codes`).
    pub fn code(&self) -> Code {
        match self {
            ServerError::Core(e) => e.code(),
            ServerError::Store(StoreError::NotFound { .. }) | ServerError::NotFound { .. } => {
                Code::NotFound
            }
            ServerError::Store(StoreError::Conflict(_)) => Code::Conflict,
            ServerError::Store(StoreError::UnknownCursor { .. }) => Code::InvalidCursor,
            ServerError::Store(_) => Code::StorageError,
            ServerError::BadRequest(_) => Code::BadRequest,
            ServerError::MalformedJson(_) => Code::MalformedJson,
            ServerError::InvalidBody(_) => Code::InvalidBody,
            ServerError::Unauthenticated(_) => Code::Unauthenticated,
            ServerError::TotpRequired => Code::TotpRequired,
            ServerError::BadTotp(_) => Code::BadTotp,
            ServerError::Forbidden(_) => Code::Forbidden,
            ServerError::Policy(_) => Code::InvalidPolicy,
            ServerError::EvidenceBroken(_) => Code::EvidenceBroken,
            ServerError::GatewayTrust { code, .. } => match code {
                GatewayTrustCode::SequenceGap => Code::GseqGap,
                GatewayTrustCode::TimeOutOfBounds => Code::EventTimeOutOfBounds,
                GatewayTrustCode::GrantNotFronted => Code::GrantNotFronted,
                GatewayTrustCode::RecordingChain => Code::RecordingChainBroken,
            },
            ServerError::Limit { code, .. } => *code,
            ServerError::Recording { code, .. } => *code,
            ServerError::Witness { code, .. } => *code,
            ServerError::Throttled { code, .. } => *code,
            ServerError::ClientCert(r) => r.code(),
            ServerError::InvalidSshPublicKey(_) => Code::InvalidSshPublicKey,
            ServerError::Federation { refusal, .. } => refusal.reason.code(),
            ServerError::PasskeyNotEnrolled => Code::PasskeyNotEnrolled,
            ServerError::Sso { refusal, .. } => refusal.reason.code(),
            ServerError::SsoOnly(_) => Code::SsoOnly,
            ServerError::Internal(_) => Code::InternalError,
        }
    }

    /// Seconds a refused client should wait (`Retry-After`), for throttled answers.
    pub fn retry_after_secs(&self) -> Option<i64> {
        match self {
            ServerError::Throttled {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ServerError::Federation {
                retry_after_secs, ..
            } => *retry_after_secs,
            ServerError::Sso {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        }
    }

    pub fn not_found(what: &'static str, id: &str) -> Self {
        let hint = match what {
            "asset" => "`jitgate assets` lists the inventory",
            "identity" => "`jitgate identities` lists them",
            "request" => "`jitgate requests` lists the requests you can see",
            "grant" => "`jitgate grants` lists the grants you can see",
            _ => "check the id",
        };
        ServerError::NotFound {
            what,
            id: id.to_string(),
            hint,
        }
    }
}

pub type ApiResult<T> = Result<T, ServerError>;
